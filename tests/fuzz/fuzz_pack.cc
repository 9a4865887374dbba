// Fuzz target for packs (repository/pack.h): the header (PackKey), the trailer (toc_location,
// which must never accept an offset and length that wrap), the sealed table of contents
// (read_toc, authenticated) and its plaintext (parse_toc, every record inside the pack).
// The first input byte chooses the part and the mode; the rest is the part.
#include <cstdlib>

#include "common.h"
#include "repository/pack.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	std::vector<Bytes> out;
	for (uint8_t mode = 0; mode < 2; mode++) {
		PackWriter w(fuzz::keys(mode == 1), mode == 1, PackType::Data, 3);
		w.add(Id::from(Bytes(32, 1)), BlobType::Chunk, Bytes(1000, 'a'));
		w.add(Id::from(Bytes(32, 2)), BlobType::Tree, Bytes(10, 'b'));
		Bytes pack = w.finish();
		// The pack's name is in its keys' derivation: seeds keep the writer's.
		for (uint8_t part = 0; part < 3; part++) {
			Bytes s{uint8_t(part * 2 + mode)};
			s.insert(s.end(), w.name().view().begin(), w.name().view().end());
			s.insert(s.end(), pack.begin(), pack.end());
			out.push_back(std::move(s));
		}
	}
	return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 33)
		return 0;
	bool enc = data[0] & 1;
	int part = (data[0] >> 1) % 3;
	Id name = Id::from(ByteView(data + 1, 32));
	ByteView pack(data + 33, size - 33);
	fuzz::refused_cleanly([&] {
		if (pack.size() < kPackHeader)
			fail(Code::Corrupt, "short");
		PackKey key(fuzz::keys(enc), enc, name, pack.first(kPackHeader));
		switch (part) {
		case 0: {
			auto [off, len] = key.toc_location(pack.size() >= kPackTrailer ? pack.last(kPackTrailer) : pack, pack.size());
			if (off < kPackHeader || off + len + kPackTrailer != pack.size())
				std::abort();
			break;
		}
		case 1:
			for (const auto &r : key.read_toc(pack))
				if (uint64_t(r.offset) + r.length > pack.size())
					std::abort();
			break;
		default:
			for (const auto &r : parse_toc(pack, pack.size()))
				if (r.offset < kPackHeader || uint64_t(r.offset) + r.length > pack.size())
					std::abort();
		}
	});
	return 0;
}
