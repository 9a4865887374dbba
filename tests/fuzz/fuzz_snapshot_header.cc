// Fuzz target for snapshot headers (snapshot/codec.h): SnapshotHeader::decode refuses what is
// malformed, replayed under another name or rooted elsewhere than a directory, with
// Code::Corrupt or Code::Version. The name given is the one the body claims, so mutations
// reach past that check.
#include "common.h"
#include "samples.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	SnapshotHeader h;
	h.id.fill(0x42);
	h.time_ns = 1700000000000000000;
	h.hostname = "host";
	h.username = "user";
	h.command_line = "plakar push /";
	h.paths = {"/"};
	h.tags = {"t"};
	h.files = 3;
	h.root.name = "/";
	h.root.type = EntryType::Directory;
	h.root.has_tree = true;
	h.root.tree = Id::from(Bytes(32, 5));
	h.errors = {{"/x", "unreadable"}};
	return {h.encode()};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SnapshotHeader probe;
	if (size >= 17)
		std::copy(data + 1, data + 17, probe.id.begin());
	fuzz::refused_cleanly([&] { SnapshotHeader::decode(ByteView(data, size), probe.id_string()); });
	return 0;
}
