// Fuzz target for key files (repository/keys.h): parse_key_file refuses malformed files and
// scrypt parameters beyond what create accepts, before any derivation, with Code::Corrupt or
// Code::Version; what it accepts is within bounds.
#include <cstdlib>

#include "common.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	Config c;
	c.repo_id.fill(3);
	KdfParams k;
	k.log2_n = 10;
	return {wrap_master_key(crypto::SecureBytes(Bytes(32, 7)), as_bytes("pw"), k, c)};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] {
		KeyFile k = parse_key_file(ByteView(data, size));
		if (k.kdf.log2_n > 24 || k.kdf.r > 8 || k.kdf.p > 2 || k.salt.size() != 32 || k.sealed.size() != 48)
			std::abort();
	});
	return 0;
}
