// A 32-byte identifier: blob ids (keyed MACs of content), pack names, key material digests.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/bytes.h"

namespace plakar {

struct Id {
	std::array<uint8_t, 32> b{};

	static constexpr size_t size = 32;
	auto operator<=>(const Id &) const = default;
	// Four word compares, inlined: ids are compared in every hash table and binary search.
	bool operator==(const Id &o) const noexcept
	{
		uint64_t x[4], y[4];
		std::memcpy(x, b.data(), 32);
		std::memcpy(y, o.b.data(), 32);
		return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
	}
	std::string hex() const { return hex_encode(ByteView(b.data(), b.size())); }
	ByteView view() const { return {b.data(), b.size()}; }
	// Throws Code::Invalid on a malformed string.
	static Id from_hex(std::string_view s);
	static Id from(ByteView v);
	bool is_zero() const
	{
		for (auto c : b)
			if (c)
				return false;
		return true;
	}
};

struct IdHash {
	size_t operator()(const Id &id) const noexcept
	{
		// Ids are MAC outputs: any 8 bytes are uniformly distributed.
		size_t h;
		std::memcpy(&h, id.b.data(), sizeof h);
		return h;
	}
};

} // namespace plakar
