// `plakar info [SNAPSHOT]`: the repository (format, encryption, parameters, counts, sizes),
// or one snapshot (header, statistics, the errors recorded while it was pushed).
#include <plakar/plakar.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
#include "report.h"

namespace plakar::cli {

namespace {

std::string bytes(uint64_t n) { return humanize_bytes(n) + " (" + std::to_string(n) + " bytes)"; }

void repository_info(Session &session, bool json)
{
	plakar_repository_info info{};
	plakar_repository_info_init(&info);
	int rc = plakar_repository_describe(&info, session.repository());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	const char *id = plakar_repository_id(session.repository());
	if (json) {
		JsonObject o;
		o.str("location", session.repository_uri()).str("id", id).num("format_version", info.format_version);
		o.boolean("encrypted", info.encrypted).str("created", format_time(info.created));
		o.unum("chunk_min", info.chunk_min).unum("chunk_avg", info.chunk_avg).unum("chunk_max", info.chunk_max);
		o.num("compression_level", info.compression_level).unum("pack_size", info.pack_size);
		o.unum("snapshots", info.snapshots).unum("packs", info.packs).unum("data_blobs", info.data_blobs);
		o.unum("meta_blobs", info.meta_blobs).unum("stored_bytes", info.stored_bytes);
		o.unum("data_bytes", info.data_bytes).unum("logical_bytes", info.logical_bytes);
		std::printf("%s\n", o.done().c_str());
		return;
	}
	std::printf("Repository:      %s\n", escape_name(session.repository_uri()).c_str());
	std::printf("ID:              %s\n", id);
	std::printf("Format version:  %d\n", info.format_version);
	std::printf("Encryption:      %s\n", info.encrypted ? "AES-256-GCM (scrypt-wrapped key)"
	                                                   : "NONE: data is stored in clear, only checked for integrity");
	std::printf("Created:         %s\n", format_time(info.created).c_str());
	std::printf("Chunking:        FastCDC, min %s, avg %s, max %s\n", humanize_bytes(info.chunk_min).c_str(),
	            humanize_bytes(info.chunk_avg).c_str(), humanize_bytes(info.chunk_max).c_str());
	std::printf("Compression:     zstd level %d\n", info.compression_level);
	std::printf("Pack size:       %s\n", humanize_bytes(info.pack_size).c_str());
	std::printf("Snapshots:       %" PRIu64 "\n", info.snapshots);
	std::printf("Packs:           %" PRIu64 "\n", info.packs);
	std::printf("Blobs:           %" PRIu64 " data, %" PRIu64 " metadata\n", info.data_blobs, info.meta_blobs);
	std::printf("Logical size:    %s\n", bytes(info.logical_bytes).c_str());
	std::printf("Unique data:     %s\n", bytes(info.data_bytes).c_str());
	std::printf("Stored size:     %s\n", bytes(info.stored_bytes).c_str());
}

void snapshot_info(Session &session, const std::string &prefix, bool json)
{
	plakar_snapshot *s = session.snapshot(prefix);
	size_t nerr = plakar_snapshot_error_count(s);
	if (json) {
		std::string paths = "[", tags = "[", errors = "[";
		for (size_t i = 0; i < plakar_snapshot_path_count(s); i++)
			paths += (i ? "," : "") + json_quote(plakar_snapshot_path(s, i));
		for (size_t i = 0; i < plakar_snapshot_tag_count(s); i++)
			tags += (i ? "," : "") + json_quote(plakar_snapshot_tag(s, i));
		for (size_t i = 0; i < nerr; i++) {
			const char *p = "", *m = "";
			if (plakar_snapshot_error(&p, &m, s, i) != PLAKAR_OK)
				continue;
			errors += (i ? "," : "") + JsonObject().str("path", p).str("message", m).done();
		}
		JsonObject o;
		o.str("id", plakar_snapshot_id(s)).str("time", format_time(plakar_snapshot_time(s)));
		o.num("time_ns", plakar_snapshot_time(s)).str("hostname", plakar_snapshot_hostname(s));
		o.str("username", plakar_snapshot_username(s)).str("command_line", plakar_snapshot_command_line(s));
		o.raw("paths", paths + "]").raw("tags", tags + "]").unum("files", plakar_snapshot_files(s));
		o.unum("directories", plakar_snapshot_directories(s)).unum("size", plakar_snapshot_size(s));
		o.raw("errors", errors + "]");
		std::printf("%s\n", o.done().c_str());
		return;
	}
	std::printf("Snapshot:     %s\n", plakar_snapshot_id(s));
	std::printf("Time:         %s\n", format_time(plakar_snapshot_time(s)).c_str());
	std::printf("Host:         %s\n", escape_name(plakar_snapshot_hostname(s)).c_str());
	std::printf("User:         %s\n", escape_name(plakar_snapshot_username(s)).c_str());
	std::printf("Command:      %s\n", escape_name(plakar_snapshot_command_line(s)).c_str());
	for (size_t i = 0; i < plakar_snapshot_path_count(s); i++)
		std::printf("Path:         %s\n", escape_name(plakar_snapshot_path(s, i)).c_str());
	for (size_t i = 0; i < plakar_snapshot_tag_count(s); i++)
		std::printf("Tag:          %s\n", escape_name(plakar_snapshot_tag(s, i)).c_str());
	std::printf("Files:        %" PRIu64 "\n", plakar_snapshot_files(s));
	std::printf("Directories:  %" PRIu64 "\n", plakar_snapshot_directories(s));
	std::printf("Size:         %s\n", bytes(plakar_snapshot_size(s)).c_str());
	std::printf("Errors:       %zu\n", nerr);
	for (size_t i = 0; i < nerr; i++) {
		const char *p = "", *m = "";
		if (plakar_snapshot_error(&p, &m, s, i) != PLAKAR_OK)
			continue;
		std::printf("  %s: %s\n", escape_name(p).c_str(), escape_message(m).c_str());
	}
}

} // namespace

int cmd_info(Session &session)
{
	FlagSet flags("info");
	bool json = false;
	flags.add_bool("json", &json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (args.size() - pos > 1)
		throw UsageError("at most one snapshot");
	if (pos == args.size())
		repository_info(session, json);
	else
		snapshot_info(session, args[pos], json);
	session.finish_output();
	return kExitOk;
}

} // namespace plakar::cli
