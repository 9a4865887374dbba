#include "net/request_store.h"

namespace plakar::net {

namespace {
const std::string &checked(const std::string &name)
{
	if (!valid_object_name(name))
		fail(Code::Invalid, "invalid object name: " + name);
	return name;
}
} // namespace

void RequestStore::create(ByteView config, const std::string &key_name, ByteView key)
{
	call(Type::Create, encode_create(config, key_name, key));
}

Bytes RequestStore::open() { return call(Type::Open, {}); }

void RequestStore::put(Kind kind, const std::string &name, ByteView data)
{
	call(Type::Put, encode_named(kind, checked(name)), data);
}

Bytes RequestStore::get(Kind kind, const std::string &name)
{
	return call(Type::Get, encode_named(kind, checked(name)));
}

Bytes RequestStore::get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length)
{
	Bytes b = call(Type::GetRange, encode_range(kind, checked(name), offset, length));
	if (b.size() != length)
		fail(Code::Corrupt, std::string(kind_name(kind)) + " " + name + ": " + std::to_string(b.size()) +
		                        " bytes came of " + std::to_string(length));
	return b;
}

uint64_t RequestStore::size(Kind kind, const std::string &name)
{
	Bytes b = call(Type::Size, encode_named(kind, checked(name)));
	Reader r(b, "size");
	uint64_t n = r.u64();
	r.expect_done();
	return n;
}

std::vector<std::string> RequestStore::list(Kind kind) { return decode_names(call(Type::List, encode_kind(kind))); }

void RequestStore::remove(Kind kind, const std::string &name)
{
	call(Type::Remove, encode_named(kind, checked(name)));
}

Bytes run_request(Store &st, const Request &q)
{
	switch (q.type) {
	case Type::Create: st.create(q.config, q.name, q.key); return {};
	case Type::Open: return st.open();
	case Type::Put: st.put(q.kind, q.name, q.data); return {};
	case Type::Get: return st.get(q.kind, q.name);
	case Type::GetRange: return st.get_range(q.kind, q.name, q.offset, q.length);
	case Type::Size: {
		Writer w;
		w.u64(st.size(q.kind, q.name));
		return w.take();
	}
	case Type::List: return encode_names(st.list(q.kind));
	case Type::Remove: st.remove(q.kind, q.name); return {};
	case Type::Ping: return {};
	default: fail(Code::Corrupt, "protocol: not a request");
	}
}

} // namespace plakar::net
