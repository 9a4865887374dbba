#!/bin/sh
# Installs the build into a scratch prefix and checks that a C program builds with nothing
# but `pkg-config --cflags --libs plakar`, then runs it against the installed library.
set -eu
BUILD=$1
WORK=$2
rm -rf "$WORK"
mkdir -p "$WORK"
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
PC=$(find "$WORK/prefix" -name plakar.pc | head -1)
test -n "$PC"
export PKG_CONFIG_PATH=$(dirname "$PC")
cat > "$WORK/hello.c" <<'C'
#include <plakar/plakar.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	plakar_repository *r = NULL;
	if (plakar_repository_open(&r, "/nonexistent/plakar/repo", NULL) != PLAKAR_ENOTFOUND)
		return 1;
	printf("plakar %s: %s\n", plakar_version_string(), plakar_error_last());
	return strcmp(plakar_version_string(), PLAKAR_VERSION_STRING) != 0;
}
C
# A sanitized build (the asan and tsan presets) needs its runtime in the program too.
cc ${PLAKAR_SANITIZE_FLAGS:-} -o "$WORK/hello" "$WORK/hello.c" $(pkg-config --cflags --libs plakar)
LIBDIR=$(pkg-config --variable=libdir plakar)
LD_LIBRARY_PATH=$LIBDIR "$WORK/hello"
# The installed CLI runs against the installed library.
test -x "$WORK/prefix/bin/plakar"
"$WORK/prefix/bin/plakar" version
# The installed Python package imports and finds the installed library.
PYPKG=$(find "$WORK/prefix" -name __init__.py -path '*/plakar/*' | head -1)
test -n "$PYPKG"
PYTHONPATH=$(dirname "$(dirname "$PYPKG")") LD_PRELOAD=${PLAKAR_SANITIZER_PRELOAD:-} ASAN_OPTIONS=detect_leaks=0 /usr/bin/python3 -c 'import plakar; print("python", plakar.__version__)'
echo "pkgconfig: ok"
