// `plakar locate [-path] PATTERN [SNAPSHOT...]`: entries whose name (or, with -path, whole
// path) matches a glob, in every snapshot or the ones named; one `SNAPSHOT:/path` per line.
#include <plakar/plakar.h>

#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
#include "report.h"

namespace plakar::cli {

namespace {

struct LocateState {
	bool json = false;
	uint64_t found = 0;
};

extern "C" int on_match(const plakar_snapshot *snap, const char *path, void *payload)
{
	auto *st = static_cast<LocateState *>(payload);
	st->found++;
	if (st->json)
		std::printf("%s\n", JsonObject().str("snapshot", plakar_snapshot_id(snap)).str("path", path).done().c_str());
	else
		std::printf("%s:%s\n", plakar_snapshot_id(snap), escape_name(path).c_str());
	return 0;
}

} // namespace

int cmd_locate(Session &session)
{
	FlagSet flags("locate");
	bool full_path = false;
	LocateState st;
	flags.add_bool("path", &full_path);
	flags.add_bool("json", &st.json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos == args.size())
		throw UsageError("missing PATTERN");
	std::string pattern = args[pos];
	if (pattern.empty())
		throw UsageError("empty PATTERN");
	std::vector<const char *> snaps;
	for (std::size_t i = pos + 1; i < args.size(); ++i)
		snaps.push_back(args[i].c_str());
	plakar_locate_options o = PLAKAR_LOCATE_OPTIONS_INIT;
	o.full_path = full_path ? 1 : 0;
	o.snapshots = snaps.empty() ? nullptr : snaps.data();
	o.nsnapshots = snaps.size();
	o.match = on_match;
	o.payload = &st;
	int rc = plakar_repository_locate(session.repository(), pattern.c_str(), &o);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	session.finish_output();
	return kExitOk;
}

} // namespace plakar::cli
