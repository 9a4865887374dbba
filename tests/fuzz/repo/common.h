// Shared by the fuzz targets of the repository format's decoders (tests/fuzz/fuzz_*.cc built on
// plakar_fuzz_core): fixed keys, so seeds are real objects and mutations of them reach past
// the first checks, and the rule every decoder must keep.
#pragma once

#include <cstdlib>
#include <initializer_list>

#include "base/error.h"
#include "repository/keys.h"

namespace plakar::fuzz {

// A repository's keys from a fixed master key (tests only).
inline const KeyRing &keys(bool encrypted = true)
{
	static const KeyRing k[2] = {[] {
		                             Config c;
		                             c.encrypted = false;
		                             return KeyRing::derive(crypto::SecureBytes(Bytes(32, 7)), c);
	                             }(),
	                             [] {
		                             Config c;
		                             return KeyRing::derive(crypto::SecureBytes(Bytes(32, 7)), c);
	                             }()};
	return k[encrypted ? 1 : 0];
}

// Runs f; a decoder may refuse its input only with one of the codes given (Corrupt and
// Version by default). Anything else (another code, another exception, a crash, a sanitizer
// report) aborts: it is a bug.
template <class F> void refused_cleanly(F f, std::initializer_list<Code> allowed = {Code::Corrupt, Code::Version})
{
	try {
		f();
	} catch (const Error &e) {
		for (Code c : allowed)
			if (e.code() == c)
				return;
		std::abort();
	}
}

} // namespace plakar::fuzz
