// Fuzz target for the sealed envelope of index segments, snapshot headers, locks and gc plans
// (repository/sealed.h): open_object refuses anything that is not authenticated, of another
// kind, version or mode, with Code::Corrupt or Code::Version; a body it opens decompresses
// within its kind's bound. The first byte chooses the kind and the mode.
#include <cstdlib>

#include "common.h"
#include "repository/sealed.h"

using namespace plakar;

namespace {
const std::string kName = std::string(64, 'a');
}

std::vector<Bytes> fuzz_seeds()
{
	std::vector<Bytes> out;
	for (uint8_t kind = 1; kind <= 6; kind++)
		for (uint8_t enc = 0; enc < 2; enc++) {
			Bytes body(kind == 1 ? 5000 : 40, 'x');
			Bytes s{uint8_t((kind - 1) * 2 + enc)};
			Bytes sealed = seal_object(fuzz::keys(enc), enc, ObjectKind(kind), kName, body, 3);
			s.insert(s.end(), sealed.begin(), sealed.end());
			out.push_back(std::move(s));
		}
	return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool enc = data[0] & 1;
	auto kind = ObjectKind(1 + (data[0] >> 1) % 6);
	fuzz::refused_cleanly([&] {
		Bytes b = open_object(fuzz::keys(enc), enc, kind, kName, ByteView(data + 1, size - 1));
		if (b.size() > max_plaintext(kind))
			std::abort();
	});
	return 0;
}
