// Fuzz target for CONFIG (repository/keys.h): parse_config refuses what is not a CONFIG with
// Code::Corrupt or Code::Version; a plaintext one is then authenticated with the keys it
// carries. Run by ctest through driver.cc under ASan and UBSan (tests/fuzz/CMakeLists.txt).
#include "common.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	std::vector<Bytes> out;
	for (bool enc : {true, false}) {
		Config c;
		c.encrypted = enc;
		c.repo_id.fill(3);
		if (!enc)
			c.plain_master = crypto::SecureBytes(Bytes(32, 7));
		out.push_back(encode_config(c, fuzz::keys(enc)));
	}
	return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] {
		Config c = parse_config(ByteView(data, size));
		if (!c.encrypted)
			verify_config(ByteView(data, size), KeyRing::derive(c.plain_master, c));
	});
	return 0;
}
