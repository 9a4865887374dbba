#!/usr/bin/env python3
"""Checks include/plakar/plakar.h against the conventions of docs/capi.md, and the library's
sources against its rule of no environment reads. Prints one line per breach and exits 1.

    conventions.py HEADER SOURCE_DIR...
"""
import re
import sys
from pathlib import Path

# The modules a function may be named after (docs/capi.md, convention 1).
MODULES = {
    "version", "cpu", "error", "string", "repository", "snapshot", "snapshot_list", "entry",
    "entry_list", "file", "dir", "archive", "check_report", "server", "token", "tls", "agent",
}
# Callbacks that cannot cancel, with the reason docs/capi.md gives.
VOID_CALLBACKS = {"plakar_log_cb"}  # a server's log line: plakar_server_stop stops a server
# Caller-allocated result structs (convention 4): each has a _VERSION and an _init function.
RESULT_STRUCTS = {"plakar_repository_info", "plakar_gc_report", "plakar_repair_report", "plakar_check_stats"}
# Scalar types a non-const pointer to which is an out-parameter.
SCALARS = {"int", "size_t", "uint32_t", "uint64_t", "int64_t", "unsigned int"}

problems = []


def problem(msg):
    problems.append(msg)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def split_params(params):
    params = params.strip()
    if params in ("", "void"):
        return []
    return [p.strip() for p in params.split(",")]


def is_out(param):
    """Whether a parameter is an out-parameter: written through by the function."""
    p = re.sub(r"\s+", " ", param)
    if "**" in p:
        return True
    if re.search(r"\w+\s*\[\d+\]$", p):  # char id_hex[65]
        return True
    if p.startswith("const "):
        return False
    m = re.match(r"^([\w ]+?)\s*\*\s*\w+$", p)
    if not m:
        return False
    base = m.group(1).strip()
    return base in SCALARS or base in RESULT_STRUCTS


def check_header(path):
    text = strip_comments(Path(path).read_text())
    flat = re.sub(r"\s+", " ", text)

    typedef_structs = set(re.findall(r"typedef struct (plakar_\w+) \{", flat))
    callbacks = {}
    for ret, name in re.findall(r"typedef (\w[\w ]*?) ?\(\*(plakar_\w+)\)", flat):
        callbacks[name] = ret.strip()
    for name, ret in callbacks.items():
        if not name.endswith("_cb"):
            problem(f"callback type {name}: callback types end in _cb")
        if ret != "int" and name not in VOID_CALLBACKS:
            problem(f"callback type {name} returns {ret}: a callback returns int, non-zero cancels")

    functions = re.findall(r"PLAKAR_EXTERN (?:PLAKAR_NODISCARD )?([\w ]+?\**) ?(plakar_\w+)\(([^)]*)\);", flat)
    if len(functions) < 100:
        problem(f"only {len(functions)} functions found in {path}: the parser no longer reads the header")
    names = {f[1] for f in functions}
    for ret, name, params in functions:
        ps = split_params(params)
        # 1. Names.
        if name.endswith("_init"):
            struct = name[: -len("_init")]
            if struct not in typedef_structs:
                problem(f"{name}: no struct {struct} to initialize")
            elif len(ps) != 1 or not re.fullmatch(struct + r" \*\w+", ps[0]):
                problem(f"{name}: takes only a {struct} *")
            continue
        rest = name[len("plakar_"):]
        if not any(rest == m or rest.startswith(m + "_") for m in MODULES):
            problem(f"{name}: not plakar_<module>_<verb> for a known module")
        # 2. Out-parameters first.
        seen_input = False
        for p in ps:
            if is_out(p):
                if seen_input:
                    problem(f"{name}: out-parameter '{p}' after an input")
            else:
                seen_input = True
        # 6. Callbacks live in options structs.
        for p in ps:
            t = p.split()[0] if p.split() else ""
            if t in callbacks or re.search(r"\bvoid \*payload\b", p):
                problem(f"{name}: callback or payload '{p}' outside an options struct")

    # 5. Options structs: version first, macros, _init.
    for struct in sorted(typedef_structs):
        body = re.search(r"typedef struct " + struct + r" \{(.*?)\} " + struct + ";", flat)
        fields = [f.strip() for f in body.group(1).split(";") if f.strip()] if body else []
        is_options = struct.endswith("_options")
        if is_options or struct in RESULT_STRUCTS:
            if not fields or fields[0] != "unsigned int version":
                problem(f"{struct}: the first field is not 'unsigned int version'")
            upper = struct.upper()
            if f"#define {upper}_VERSION" not in text:
                problem(f"{struct}: no {upper}_VERSION")
            if is_options and f"#define {upper}_INIT" not in text:
                problem(f"{struct}: no {upper}_INIT")
            if f"{struct}_init" not in names:
                problem(f"{struct}: no {struct}_init function")
        cb_fields = [f for f in fields if f.split()[0] in callbacks]
        payloads = [f for f in fields if re.fullmatch(r"void \*payload", f)]
        if cb_fields and len(payloads) != 1:
            problem(f"{struct}: callbacks with {len(payloads)} payload fields (one is the rule)")
        if cb_fields and not is_options and struct not in ("plakar_server_options",):
            problem(f"{struct}: callbacks outside an options struct")


def check_sources(dirs):
    # 7. No environment reads in the library.
    pattern = re.compile(r"\b(getenv|secure_getenv|environ|setenv|unsetenv|putenv)\b")
    for d in dirs:
        for f in sorted(Path(d).rglob("*")):
            if f.suffix not in (".cc", ".h", ".c"):
                continue
            for no, line in enumerate(strip_comments(f.read_text()).splitlines(), 1):
                if pattern.search(line):
                    problem(f"{f}:{no}: the library reads no environment ({line.strip()})")


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    check_header(sys.argv[1])
    check_sources(sys.argv[2:])
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} breach(es) of docs/capi.md's conventions")
        return 1
    print("the header and the library keep docs/capi.md's conventions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
