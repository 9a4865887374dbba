// Known-answer tests for the primitives (RFC 4231, RFC 5869, RFC 7914, the GCM specification's
// test vectors) and the properties the format relies on.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include "base/error.h"
#include "crypto/crypto.h"
#include "helpers.h"

using namespace plakar;
using plakar::test::hex;

TEST_CASE("SHA-256 known answer", "[crypto]")
{
	CHECK(crypto::sha256(as_bytes("abc")).hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("HMAC-SHA-256 known answers (RFC 4231)", "[crypto]")
{
	Bytes key1(20, 0x0b);
	CHECK(crypto::hmac_sha256(key1, as_bytes("Hi There")).hex() ==
	      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	CHECK(crypto::hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?")).hex() ==
	      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	// The reusable keyed context gives the same answers, also over two parts.
	crypto::Mac m(key1);
	CHECK(m.mac(as_bytes("Hi There")).hex() == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	CHECK(m.mac(as_bytes("Hi "), as_bytes("There")).hex() ==
	      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	crypto::Mac copy(m);
	CHECK(copy.mac(as_bytes("Hi There")) == m.mac(as_bytes("Hi There")));
}

TEST_CASE("HKDF-SHA-256 known answer (RFC 5869 case 1)", "[crypto]")
{
	Bytes ikm(22, 0x0b);
	Bytes salt = hex("000102030405060708090a0b0c");
	Bytes info = hex("f0f1f2f3f4f5f6f7f8f9");
	auto okm = crypto::hkdf(ikm, salt, as_string(info), 42);
	CHECK(hex_encode(okm.view()) ==
	      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("scrypt known answer (RFC 7914)", "[crypto]")
{
	auto dk = crypto::scrypt(as_bytes("password"), as_bytes("NaCl"), 10, 8, 16, 64);
	CHECK(hex_encode(dk.view()) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
	                               "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
	// An empty passphrase is a valid input, distinct from any other.
	auto e = crypto::scrypt({}, as_bytes("salt"), 10, 8, 1, 32);
	CHECK(e.size() == 32);
	CHECK(hex_encode(crypto::scrypt({}, {}, 4, 1, 1, 64).view()) ==
	      "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
	      "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
	CHECK(hex_encode(crypto::scrypt(as_bytes("pleaseletmein"), as_bytes("SodiumChloride"), 14, 8, 1, 64).view()) ==
	      "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
	      "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");
}

TEST_CASE("scrypt: the same as OpenSSL's, its lanes side by side or not", "[crypto]")
{
	struct Case {
		int log2_n;
		uint32_t r, p;
		size_t len;
	};
	for (Case c : {Case{10, 8, 2, 32}, Case{12, 1, 3, 48}, Case{8, 4, 1, 16}, Case{16, 8, 2, 32}}) {
		Bytes pass = test::random_data(11, c.log2_n), salt = test::random_data(32, c.r);
		Bytes want(c.len);
		REQUIRE(EVP_PBE_scrypt(reinterpret_cast<const char *>(pass.data()), pass.size(), salt.data(), salt.size(),
		                       uint64_t(1) << c.log2_n, c.r, c.p, 1ull << 30, want.data(), want.size()) == 1);
		for (unsigned threads : {1u, 2u, 4u}) {
			INFO("N=2^" << c.log2_n << " r=" << c.r << " p=" << c.p << " threads=" << threads);
			CHECK(hex_encode(crypto::scrypt(pass, salt, c.log2_n, c.r, c.p, c.len, threads).view()) == hex_encode(want));
		}
	}
	CHECK(test::code_of([] { crypto::scrypt(as_bytes("x"), as_bytes("y"), 0, 8, 1, 32); }) == Code::Invalid);
	CHECK(test::code_of([] { crypto::scrypt(as_bytes("x"), as_bytes("y"), 10, 0, 1, 32); }) == Code::Invalid);
}

TEST_CASE("AES-256-GCM known answers (GCM spec cases 13, 14, 16)", "[crypto]")
{
	Bytes zero_key(32, 0), zero_iv(12, 0);
	CHECK(hex_encode(crypto::gcm_seal(zero_key, zero_iv, {}, {})) == "530f8afbc74536b9a963b4f1c4cb738b");
	CHECK(hex_encode(crypto::gcm_seal(zero_key, zero_iv, {}, Bytes(16, 0))) ==
	      "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");

	Bytes key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
	Bytes iv = hex("cafebabefacedbaddecaf888");
	Bytes pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	               "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
	Bytes aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
	Bytes sealed = crypto::gcm_seal(key, iv, aad, pt);
	CHECK(hex_encode(sealed) == "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	                            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
	                            "76fc6ece0f4e1768cddf8853bb2d551b");
	CHECK(crypto::gcm_open(key, iv, aad, sealed) == pt);
}

TEST_CASE("AES-256-GCM refuses any change", "[crypto]")
{
	Bytes key = crypto::random_bytes(32), iv = crypto::random_bytes(12);
	Bytes pt = plakar::test::random_data(1000, 1);
	ByteView av = as_bytes("context");
	Bytes aad(av.begin(), av.end());
	Bytes sealed = crypto::gcm_seal(key, iv, aad, pt);
	for (size_t pos : {size_t(0), size_t(500), sealed.size() - 1}) {
		Bytes bad = sealed;
		bad[pos] ^= 1;
		try {
			(void)crypto::gcm_open(key, iv, aad, bad);
			FAIL("tampered ciphertext accepted");
		} catch (const Error &e) {
			CHECK(e.code() == Code::Corrupt);
		}
	}
	ByteView ov = as_bytes("Context");
	Bytes other_aad(ov.begin(), ov.end());
	CHECK_THROWS_AS(crypto::gcm_open(key, iv, other_aad, sealed), Error);
	CHECK_THROWS_AS(crypto::gcm_open(key, iv, aad, ByteView(sealed).first(sealed.size() - 1)), Error);
	CHECK_THROWS_AS(crypto::gcm_open(key, iv, aad, ByteView(sealed).first(10)), Error);
}

TEST_CASE("constant-time equality and secure bytes", "[crypto]")
{
	Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4};
	CHECK(crypto::equal(a, b));
	CHECK_FALSE(crypto::equal(a, c));
	CHECK_FALSE(crypto::equal(a, ByteView(b).first(2)));
	crypto::SecureBytes s(a);
	crypto::SecureBytes t = s;
	CHECK(crypto::equal(s.view(), t.view()));
	CHECK(crypto::random_bytes(32) != crypto::random_bytes(32));
}
