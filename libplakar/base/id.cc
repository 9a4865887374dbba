#include "base/id.h"

#include "base/error.h"

namespace plakar {

Id Id::from_hex(std::string_view s)
{
	Bytes raw;
	if (s.size() != 64 || !hex_decode(s, raw))
		fail(Code::Invalid, "malformed id: " + std::string(s));
	return from(raw);
}

Id Id::from(ByteView v)
{
	if (v.size() != size)
		fail(Code::Corrupt, "malformed id");
	Id id;
	std::memcpy(id.b.data(), v.data(), size);
	return id;
}

} // namespace plakar
