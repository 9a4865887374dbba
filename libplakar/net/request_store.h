// The two ends of a Store call carried as a request (docs/protocol.md, "Types"):
// RequestStore turns each Store method into one request and its answer, for a subclass that
// only knows how to send a request (the plakar:// client); run_request() runs a decoded
// request on a real Store (the gate, net/gate.h).
#pragma once

#include "net/protocol.h"
#include "storage/store.h"

namespace plakar::net {

class RequestStore : public Store {
public:
	void create(ByteView config, const std::string &key_name, ByteView key) override;
	Bytes open() override;
	void put(Kind kind, const std::string &name, ByteView data) override;
	Bytes get(Kind kind, const std::string &name) override;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override;
	uint64_t size(Kind kind, const std::string &name) override;
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;

protected:
	// Sends one request, its body prefix followed by data, and returns the body of its Ok
	// answer; a failure is thrown as the Error it carries.
	virtual Bytes call(Type type, ByteView prefix, ByteView data = {}) = 0;
};

// Runs a request on st and returns the body of its Ok answer (throws what st throws).
Bytes run_request(Store &st, const Request &q);

} // namespace plakar::net
