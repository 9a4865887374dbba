// A standalone driver for fuzz targets written for libFuzzer (LLVMFuzzerTestOneInput), so that
// ctest runs them with GCC: each file named on the command line is run as is, then
// `-runs=N` inputs are made by mutating the seeds given by the target's seeds() (bit flips,
// byte changes, insertions, deletions, splices, interesting integers), deterministically
// (`-seed=S`). Built with AddressSanitizer and UndefinedBehaviorSanitizer: a report aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
// Valid inputs to start from (each target's own).
std::vector<std::vector<uint8_t>> fuzz_seeds();

namespace {
struct Rng {
	uint64_t s;
	uint64_t next()
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		return s;
	}
	size_t below(size_t n) { return n ? size_t(next() % n) : 0; }
};

void mutate(std::vector<uint8_t> &b, Rng &r, const std::vector<std::vector<uint8_t>> &seeds)
{
	static const uint32_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000u,
	                                       0xffffffffu, 0xffffff00u, 0xffffff01u, 4096, 4097};
	int n = 1 + int(r.below(4));
	for (int k = 0; k < n; k++) {
		switch (r.below(6)) {
		case 0: // flip a bit
			if (!b.empty())
				b[r.below(b.size())] ^= uint8_t(1u << r.below(8));
			break;
		case 1: // set a byte
			if (!b.empty())
				b[r.below(b.size())] = uint8_t(r.next());
			break;
		case 2: { // insert bytes
			size_t at = r.below(b.size() + 1), len = 1 + r.below(16);
			for (size_t i = 0; i < len; i++)
				b.insert(b.begin() + long(at), uint8_t(r.next()));
			break;
		}
		case 3: { // delete bytes
			if (b.empty())
				break;
			size_t at = r.below(b.size()), len = 1 + r.below(std::min<size_t>(16, b.size() - at));
			b.erase(b.begin() + long(at), b.begin() + long(at + len));
			break;
		}
		case 4: { // an interesting 32-bit value, little-endian
			if (b.size() < 4)
				break;
			uint32_t v = interesting[r.below(sizeof interesting / sizeof *interesting)];
			size_t at = r.below(b.size() - 3);
			for (int i = 0; i < 4; i++)
				b[at + size_t(i)] = uint8_t(v >> (8 * i));
			break;
		}
		default: { // splice in part of another seed
			const auto &o = seeds[r.below(seeds.size())];
			if (o.empty())
				break;
			size_t from = r.below(o.size()), len = 1 + r.below(o.size() - from);
			size_t at = r.below(b.size() + 1);
			b.insert(b.begin() + long(at), o.begin() + long(from), o.begin() + long(from + len));
			break;
		}
		}
	}
}
} // namespace

int main(int argc, char **argv)
{
	long runs = 100000;
	uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		if (std::strncmp(argv[i], "-runs=", 6) == 0) {
			runs = std::strtol(argv[i] + 6, nullptr, 10);
		} else if (std::strncmp(argv[i], "-seed=", 6) == 0) {
			seed = std::strtoull(argv[i] + 6, nullptr, 10);
		} else {
			std::ifstream f(argv[i], std::ios::binary);
			std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
			LLVMFuzzerTestOneInput(b.data(), b.size());
		}
	}
	auto seeds = fuzz_seeds();
	for (const auto &s : seeds)
		LLVMFuzzerTestOneInput(s.data(), s.size());
	Rng r{seed * 0x9e3779b97f4a7c15ull + 1};
	for (long i = 0; i < runs; i++) {
		std::vector<uint8_t> b = seeds[r.below(seeds.size())];
		mutate(b, r, seeds);
		LLVMFuzzerTestOneInput(b.data(), b.size());
	}
	std::printf("%ld inputs, no failure\n", runs + long(seeds.size()));
	return 0;
}
