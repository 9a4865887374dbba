// The plakar_*_init functions: what the _INIT macros give, for bindings that cannot use C
// macros (ctypes, cffi, other languages' FFIs). Each fills the whole struct.
#include "plakar/plakar.h"

namespace {
template <class T> void fill(T *p, const T &v)
{
	if (p)
		*p = v;
}
// A result struct: all zero but its version.
template <class T> void zero(T *p, unsigned version)
{
	if (p) {
		*p = T{};
		p->version = version;
	}
}
} // namespace

extern "C" {

void plakar_create_options_init(plakar_create_options *o) { fill(o, plakar_create_options PLAKAR_CREATE_OPTIONS_INIT); }
void plakar_open_options_init(plakar_open_options *o) { fill(o, plakar_open_options PLAKAR_OPEN_OPTIONS_INIT); }
void plakar_push_options_init(plakar_push_options *o) { fill(o, plakar_push_options PLAKAR_PUSH_OPTIONS_INIT); }
void plakar_pull_options_init(plakar_pull_options *o) { fill(o, plakar_pull_options PLAKAR_PULL_OPTIONS_INIT); }
void plakar_diff_options_init(plakar_diff_options *o) { fill(o, plakar_diff_options PLAKAR_DIFF_OPTIONS_INIT); }
void plakar_locate_options_init(plakar_locate_options *o) { fill(o, plakar_locate_options PLAKAR_LOCATE_OPTIONS_INIT); }
void plakar_keep_options_init(plakar_keep_options *o) { fill(o, plakar_keep_options PLAKAR_KEEP_OPTIONS_INIT); }
void plakar_gc_options_init(plakar_gc_options *o) { fill(o, plakar_gc_options PLAKAR_GC_OPTIONS_INIT); }
void plakar_repair_options_init(plakar_repair_options *o) { fill(o, plakar_repair_options PLAKAR_REPAIR_OPTIONS_INIT); }
void plakar_check_options_init(plakar_check_options *o) { fill(o, plakar_check_options PLAKAR_CHECK_OPTIONS_INIT); }
void plakar_archive_options_init(plakar_archive_options *o)
{
	fill(o, plakar_archive_options PLAKAR_ARCHIVE_OPTIONS_INIT);
}
void plakar_server_options_init(plakar_server_options *o) { fill(o, plakar_server_options PLAKAR_SERVER_OPTIONS_INIT); }

void plakar_repository_info_init(plakar_repository_info *i) { zero(i, PLAKAR_REPOSITORY_INFO_VERSION); }
void plakar_gc_report_init(plakar_gc_report *r) { zero(r, PLAKAR_GC_REPORT_VERSION); }
void plakar_repair_report_init(plakar_repair_report *r) { zero(r, PLAKAR_REPAIR_REPORT_VERSION); }
void plakar_check_stats_init(plakar_check_stats *s) { zero(s, PLAKAR_CHECK_STATS_VERSION); }

} // extern "C"
