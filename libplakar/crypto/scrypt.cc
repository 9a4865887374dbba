// scrypt (RFC 7914), written here rather than taken from OpenSSL for two reasons, both about the
// time every command pays before it can do anything:
//  - its p lanes are independent: they run side by side on the threads given (OpenSSL runs them
//    one after the other), each with its own N x 128 x r bytes, as long as the lanes running at
//    once stay under kParallelBytes;
//  - each lane's table is one mapping asked to be backed by huge pages, so filling 64 MiB costs
//    a few dozen page faults instead of 16,384 (on a virtual machine each fault is a trap to the
//    hypervisor: the faults were most of the derivation's time).
// PBKDF2-HMAC-SHA256, before and after the lanes, is OpenSSL's. The output is the RFC's: the
// known answers of RFC 7914 and OpenSSL's own scrypt are checked in tests/unit/test_crypto.cc.
#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "base/error.h"

namespace plakar::crypto {

namespace {

// Lanes run side by side only while their tables together stay under this (the default
// parameters, N = 2^16 and r = 8, make 64 MiB a lane).
constexpr uint64_t kParallelBytes = 256ull << 20;
constexpr size_t kHugePage = 2u << 20;

inline uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

inline uint32_t load_le32(const uint8_t *p)
{
	return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline void store_le32(uint8_t *p, uint32_t v)
{
	p[0] = uint8_t(v);
	p[1] = uint8_t(v >> 8);
	p[2] = uint8_t(v >> 16);
	p[3] = uint8_t(v >> 24);
}

// Salsa20/8 core (RFC 7914, section 3), in place on 16 words.
void salsa20_8(uint32_t b[16])
{
	uint32_t x[16];
	std::memcpy(x, b, sizeof x);
	for (int i = 0; i < 8; i += 2) {
		x[4] ^= rotl(x[0] + x[12], 7);
		x[8] ^= rotl(x[4] + x[0], 9);
		x[12] ^= rotl(x[8] + x[4], 13);
		x[0] ^= rotl(x[12] + x[8], 18);
		x[9] ^= rotl(x[5] + x[1], 7);
		x[13] ^= rotl(x[9] + x[5], 9);
		x[1] ^= rotl(x[13] + x[9], 13);
		x[5] ^= rotl(x[1] + x[13], 18);
		x[14] ^= rotl(x[10] + x[6], 7);
		x[2] ^= rotl(x[14] + x[10], 9);
		x[6] ^= rotl(x[2] + x[14], 13);
		x[10] ^= rotl(x[6] + x[2], 18);
		x[3] ^= rotl(x[15] + x[11], 7);
		x[7] ^= rotl(x[3] + x[15], 9);
		x[11] ^= rotl(x[7] + x[3], 13);
		x[15] ^= rotl(x[11] + x[7], 18);

		x[1] ^= rotl(x[0] + x[3], 7);
		x[2] ^= rotl(x[1] + x[0], 9);
		x[3] ^= rotl(x[2] + x[1], 13);
		x[0] ^= rotl(x[3] + x[2], 18);
		x[6] ^= rotl(x[5] + x[4], 7);
		x[7] ^= rotl(x[6] + x[5], 9);
		x[4] ^= rotl(x[7] + x[6], 13);
		x[5] ^= rotl(x[4] + x[7], 18);
		x[11] ^= rotl(x[10] + x[9], 7);
		x[8] ^= rotl(x[11] + x[10], 9);
		x[9] ^= rotl(x[8] + x[11], 13);
		x[10] ^= rotl(x[9] + x[8], 18);
		x[12] ^= rotl(x[15] + x[14], 7);
		x[13] ^= rotl(x[12] + x[15], 9);
		x[14] ^= rotl(x[13] + x[12], 13);
		x[15] ^= rotl(x[14] + x[13], 18);
	}
	for (int i = 0; i < 16; i++)
		b[i] += x[i];
}

// scryptBlockMix (section 4): in is 2r blocks of 16 words, out receives the even-numbered
// results first, then the odd-numbered ones.
void block_mix(const uint32_t *in, uint32_t *out, uint32_t r)
{
	uint32_t x[16];
	std::memcpy(x, in + (2 * r - 1) * 16, sizeof x);
	for (uint32_t i = 0; i < 2 * r; i++) {
		for (int k = 0; k < 16; k++)
			x[k] ^= in[i * 16 + k];
		salsa20_8(x);
		std::memcpy(out + ((i / 2) + (i % 2) * r) * 16, x, sizeof x);
	}
}

// A lane's table (N x 32r words): one anonymous mapping, aligned to and advised onto huge pages.
class Table {
public:
	explicit Table(size_t bytes) : size_(bytes + kHugePage)
	{
		void *m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			fail(Code::Error, "scrypt: cannot map " + std::to_string(bytes >> 20) + " MiB");
		map_ = static_cast<uint8_t *>(m);
		uintptr_t p = reinterpret_cast<uintptr_t>(map_);
		uint8_t *aligned = map_ + ((kHugePage - p % kHugePage) % kHugePage);
		::madvise(aligned, bytes, MADV_HUGEPAGE); // advice: without huge pages it works the same
		words_ = reinterpret_cast<uint32_t *>(aligned);
	}
	// The pages go back to the kernel, which clears them before anyone else gets them.
	~Table() { ::munmap(map_, size_); }
	Table(const Table &) = delete;
	Table &operator=(const Table &) = delete;
	uint32_t *words() { return words_; }

private:
	size_t size_;
	uint8_t *map_ = nullptr;
	uint32_t *words_ = nullptr;
};

// scryptROMix (section 5) on one lane of 128r bytes, in place.
void ro_mix(uint8_t *lane, uint64_t n, uint32_t r, uint32_t *v)
{
	const size_t words = 32 * size_t(r);
	std::vector<uint32_t> xy(2 * words);
	uint32_t *x = xy.data(), *y = x + words;
	for (size_t k = 0; k < words; k++)
		x[k] = load_le32(lane + 4 * k);
	for (uint64_t i = 0; i < n; i++) {
		std::memcpy(v + i * words, x, words * 4);
		block_mix(x, y, r);
		std::swap(x, y);
	}
	for (uint64_t i = 0; i < n; i++) {
		// Integerify: the first word of the last block, modulo N (a power of two below 2^32).
		uint64_t j = x[(2 * r - 1) * 16] & (n - 1);
		const uint32_t *vj = v + j * words;
		for (size_t k = 0; k < words; k++)
			x[k] ^= vj[k];
		block_mix(x, y, r);
		std::swap(x, y);
	}
	for (size_t k = 0; k < words; k++)
		store_le32(lane + 4 * k, x[k]);
	wipe(xy.data(), xy.size() * 4);
}

void pbkdf2_sha256(ByteView pass, ByteView salt, uint8_t *out, size_t out_len)
{
	static const char empty = 0;
	const char *p = pass.empty() ? &empty : reinterpret_cast<const char *>(pass.data());
	if (PKCS5_PBKDF2_HMAC(p, int(pass.size()), salt.data(), int(salt.size()), 1, EVP_sha256(), int(out_len),
	                      out) != 1)
		fail(Code::Error, "scrypt: PBKDF2 failed");
}

} // namespace

SecureBytes scrypt(ByteView passphrase, ByteView salt, int log2_n, uint32_t r, uint32_t p, size_t out_len,
                   unsigned threads)
{
	if (log2_n < 1 || log2_n > 30 || r < 1 || r > 64 || p < 1 || p > 64 || out_len < 1 || out_len > 1024)
		fail(Code::Invalid, "scrypt cost out of range");
	const uint64_t n = uint64_t(1) << log2_n;
	const size_t lane_bytes = 128 * size_t(r);
	const uint64_t table_bytes = n * lane_bytes;
	SecureBytes b(lane_bytes * p);
	pbkdf2_sha256(passphrase, salt, b.data(), b.size());

	unsigned side = std::max(1u, std::min({threads, p, unsigned(std::max<uint64_t>(1, kParallelBytes / table_bytes))}));
	// Worker w takes lanes w, w + side, ... with one table.
	auto work = [&](unsigned w) {
		Table v(table_bytes);
		for (uint32_t lane = w; lane < p; lane += side)
			ro_mix(b.data() + size_t(lane) * lane_bytes, n, r, v.words());
	};
	std::vector<std::thread> others;
	std::vector<std::exception_ptr> errors(side);
	for (unsigned w = 1; w < side; w++)
		others.emplace_back([&, w] {
			try {
				work(w);
			} catch (...) {
				errors[w] = std::current_exception();
			}
		});
	try {
		work(0);
	} catch (...) {
		errors[0] = std::current_exception();
	}
	for (auto &t : others)
		t.join();
	for (auto &e : errors)
		if (e)
			std::rethrow_exception(e);

	SecureBytes out(out_len);
	pbkdf2_sha256(passphrase, b.view(), out.data(), out.size());
	return out;
}

} // namespace plakar::crypto
