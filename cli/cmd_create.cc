// `plakar create [-no-encryption] [-kdf-log2-n N]`: a new, empty repository.
#include <plakar/plakar.h>

#include <optional>

#include "commands.h"
#include "passphrase.h"
#include "report.h"

namespace plakar::cli {

int cmd_create(Session &session) {
	bool no_encryption = false;
	int kdf_log2_n = 0;
	FlagSet flags("create");
	flags.add_bool("no-encryption", &no_encryption);
	// The scrypt cost; lowering it is for tests only (docs/cli.md).
	flags.add_int("kdf-log2-n", &kdf_log2_n, 1, 62);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos < args.size())
		throw UsageError("unexpected argument \"" + args[pos] + "\"");

	std::string uri = session.repository_uri();
	plakar_create_options opts = PLAKAR_CREATE_OPTIONS_INIT;
	opts.encryption = no_encryption ? 0 : 1;
	opts.kdf_log2_n = kdf_log2_n;
	session.environment().apply(opts);
	std::optional<Secret> passphrase;
	if (!no_encryption) {
		passphrase = supplied_passphrase(session.options().passphrase_file);
		if (!passphrase)
			passphrase = prompt_passphrase(true);
		if (passphrase->empty())
			throw Failure("refusing an empty passphrase");
		opts.passphrase = passphrase->data();
		opts.passphrase_len = passphrase->size();
	}

	plakar_repository *raw = nullptr;
	int rc = plakar_repository_create(&raw, uri.c_str(), &opts);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	plakar_repository_free(raw);
	return kExitOk;
}

} // namespace plakar::cli
