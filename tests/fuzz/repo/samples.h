// Sample snapshot objects for the seeds of the snapshot decoders' fuzz targets: entries of
// every type and content kind (inline chunks, a chunk list, a tree), with xattrs and errors.
#pragma once

#include <sys/stat.h>

#include "snapshot/codec.h"

namespace plakar::fuzz {

inline std::vector<Entry> sample_entries()
{
	std::vector<Entry> v;
	Entry f;
	f.name = "a-file";
	f.mode = S_IFREG | 0644;
	f.size = 5;
	f.mtime_ns = -5;
	f.chunks = {{Id::from(Bytes(32, 1)), 5}};
	f.xattrs = {{"user.k", "v"}};
	v.push_back(f);
	Entry l = f;
	l.name = "b-list";
	l.chunks.clear();
	l.has_list = true;
	l.list = Id::from(Bytes(32, 2));
	l.error = "vanished";
	v.push_back(l);
	Entry d;
	d.name = "c-dir";
	d.type = EntryType::Directory;
	d.mode = S_IFDIR | 0755;
	d.has_tree = true;
	d.tree = Id::from(Bytes(32, 3));
	v.push_back(d);
	Entry s;
	s.name = "d-link";
	s.type = EntryType::Symlink;
	s.target = "../x";
	v.push_back(s);
	return v;
}

} // namespace plakar::fuzz
