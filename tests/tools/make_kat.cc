// make_kat: writes the format's known-answer repositories (tests/data/kat/), once per format
// version; tests/unit/test_kat.cc then reads the checked-in copies and compares what they
// decode to with the values it holds. Not run by the tests: the output is checked in.
//
//   make_kat OUTDIR      (pushes /tmp/plakar-kat/src, which it creates)
//
// Prints what the test expects (ids, times, names). Contents and metadata come from
// kat_tree() in tests/unit/kat_tree.h, shared with the test.
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include "../unit/kat_tree.h"
#include "repository/repository.h"
#include "snapshot/builder.h"
#include "snapshot/snapshot.h"

using namespace plakar;

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::cerr << "usage: make_kat OUTDIR\n";
		return 2;
	}
	try {
		std::string out = argv[1];
		std::filesystem::remove_all(kat::kSource);
		kat::write_tree(kat::kSource);
		for (bool enc : {true, false}) {
			CreateOptions o;
			o.encryption = enc;
			if (enc)
				o.passphrase = kat::kPassphrase;
			o.kdf.log2_n = 10;
			o.chunks = {256, 1024, 4096};
			o.pack_size = 64 * 1024;
			std::string uri = out + (enc ? "/encrypted" : "/plaintext");
			auto r = Repository::create(uri, o);
			PushOptions po;
			po.command_line = "make_kat";
			po.tags = {"kat"};
			auto h = push(*r, {kat::kSource}, po);
			std::cout << (enc ? "encrypted" : "plaintext") << ": repository " << r->config().id_string()
			          << " snapshot " << h.id_string() << " time_ns " << h.time_ns << " host " << h.hostname
			          << " user " << h.username << " files " << h.files << " size " << h.size << "\n";
		}
		return 0;
	} catch (const std::exception &e) {
		std::cerr << "make_kat: " << e.what() << "\n";
		return 1;
	}
}
