// Fuzz target for a server's tokens file (net/tokens.h): parse_tokens refuses a malformed
// line, a duplicate name or an empty file with Code::Invalid, naming the line.
#include "common.h"
#include "net/tokens.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	std::string s = "# tokens\nlaptop rw " + std::string(64, 'a') + "\nphone  append  " + std::string(64, '0') +
	                "   # comment\n\nbackup ro " + std::string(64, 'f') + "\n";
	return {Bytes(s.begin(), s.end())};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] { net::parse_tokens(ByteView(data, size), "tokens"); }, {Code::Invalid});
	return 0;
}
