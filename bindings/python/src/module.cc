// plakar._plakar — the low-level extension module: a thin pybind11 layer over the C ABI of
// include/plakar/plakar.h and nothing else. The public, pythonic API lives in the pure-Python
// package (plakar/*.py), which is the only caller of this module.
//
// What this layer is responsible for:
//  - Ownership. Each C handle lives in a C++ object held by std::shared_ptr; a child holds a
//    shared_ptr to its parent (file -> snapshot -> repository), so whatever order Python frees
//    objects in, the C ABI's rule "free children before the repository" holds. The Python-side
//    objects (RepositoryHandle, SnapshotHandle, FileHandle) hold one reference each and drop it
//    in close(); a C handle is freed when its last holder goes.
//  - The GIL. Every call that may block (I/O, crypto, locks) runs with the GIL released; the
//    progress trampoline re-acquires it to call into Python. Calls in flight hold their own
//    shared_ptr copy, so close() from another thread never frees a handle under a running call.
//  - Errors. A failed call is turned into an exception by plakar._errors._from_code (the one
//    code -> exception table). An exception raised by a progress callback cancels the call and
//    is re-raised unchanged once the call has returned.
//  - Bytes. Paths, names and strings cross this module as bytes; decoding (os.fsdecode,
//    surrogateescape) is the Python layer's job.
#include "archive.h"
#include "common.h"

using namespace plakar_py;

PYBIND11_MODULE(_plakar, m)
{
	m.doc() = "Low-level bindings of the libplakar C ABI; use the `plakar` package instead.";
	m.attr("__version__") = PLAKAR_VERSION_STRING;
	m.attr("FORMAT_VERSION") = PLAKAR_FORMAT_VERSION;

	m.def("version", [] {
		int major = 0, minor = 0, patch = 0;
		plakar_version(&major, &minor, &patch);
		return py::make_tuple(major, minor, patch);
	});
	m.def("version_string", [] { return std::string(plakar_version_string()); });
	m.def("error_string", [](int code) { return std::string(plakar_error_string(code)); });

	// The codes of the C ABI, by name: plakar._errors maps them to exceptions.
	py::dict codes;
	codes["OK"] = int(PLAKAR_OK);
	codes["ERROR"] = int(PLAKAR_ERROR);
	codes["ENOTFOUND"] = int(PLAKAR_ENOTFOUND);
	codes["EAUTH"] = int(PLAKAR_EAUTH);
	codes["ECORRUPT"] = int(PLAKAR_ECORRUPT);
	codes["ELOCKED"] = int(PLAKAR_ELOCKED);
	codes["EEXISTS"] = int(PLAKAR_EEXISTS);
	codes["EINVALID"] = int(PLAKAR_EINVALID);
	codes["EAMBIGUOUS"] = int(PLAKAR_EAMBIGUOUS);
	codes["ECANCELED"] = int(PLAKAR_ECANCELED);
	codes["EPARTIAL"] = int(PLAKAR_EPARTIAL);
	codes["EVERSION"] = int(PLAKAR_EVERSION);
	codes["EUNSUPPORTED"] = int(PLAKAR_EUNSUPPORTED);
	m.attr("CODES") = codes;

	py::dict types;
	types["file"] = int(PLAKAR_TYPE_FILE);
	types["directory"] = int(PLAKAR_TYPE_DIRECTORY);
	types["symlink"] = int(PLAKAR_TYPE_SYMLINK);
	types["fifo"] = int(PLAKAR_TYPE_FIFO);
	types["chardev"] = int(PLAKAR_TYPE_CHARDEV);
	types["blockdev"] = int(PLAKAR_TYPE_BLOCKDEV);
	types["socket"] = int(PLAKAR_TYPE_SOCKET);
	m.attr("ENTRY_TYPES") = types;

	py::dict kinds;
	kinds["file"] = int(PLAKAR_EVENT_FILE);
	kinds["directory"] = int(PLAKAR_EVENT_DIRECTORY);
	kinds["error"] = int(PLAKAR_EVENT_ERROR);
	kinds["bytes"] = int(PLAKAR_EVENT_BYTES);
	kinds["create"] = int(PLAKAR_EVENT_CREATE);
	kinds["replace"] = int(PLAKAR_EVENT_REPLACE);
	kinds["remove"] = int(PLAKAR_EVENT_REMOVE);
	kinds["skip"] = int(PLAKAR_EVENT_SKIP);
	kinds["warning"] = int(PLAKAR_EVENT_WARNING);
	m.attr("EVENT_KINDS") = kinds;

	py::dict overwrite;
	overwrite["always"] = int(PLAKAR_OVERWRITE_ALWAYS);
	overwrite["if-changed"] = int(PLAKAR_OVERWRITE_IF_CHANGED);
	overwrite["if-newer"] = int(PLAKAR_OVERWRITE_IF_NEWER);
	overwrite["never"] = int(PLAKAR_OVERWRITE_NEVER);
	m.attr("OVERWRITE_POLICIES") = overwrite;

	m.def("create", &repository_create, py::arg("uri"), py::arg("passphrase"), py::arg("encryption"),
	      py::arg("kdf_log2_n"), py::arg("compression_level"), py::arg("chunk_min"), py::arg("chunk_avg"),
	      py::arg("chunk_max"), py::arg("pack_size"), py::arg("token"), py::arg("token_file"), py::arg("tls_ca"));
	m.def("open", &repository_open, py::arg("uri"), py::arg("passphrase"), py::arg("cpu"), py::arg("cache"),
	      py::arg("cache_dir"), py::arg("agent"), py::arg("token"), py::arg("token_file"), py::arg("tls_ca"));
	m.def("run_agent", &run_agent, py::arg("socket"), py::arg("idle_timeout"));
	m.def("stop_agent", &stop_agent, py::arg("socket"));
	m.def("server_new", &server_new, py::arg("uri"), py::arg("tokens_file"), py::arg("listen"), py::arg("workers"),
	      py::arg("max_connections"), py::arg("tls_cert"), py::arg("tls_key"));
	m.def("token_new", &token_new, py::arg("name"), py::arg("rights"));
	m.def("token_add", &token_add, py::arg("tokens_file"), py::arg("name"), py::arg("rights"));
	m.def("tls_cert_new", &tls_cert_new, py::arg("cert_file"), py::arg("key_file"), py::arg("name"), py::arg("days"));
	py::class_<ServerHandle>(m, "ServerHandle")
	    .def_property_readonly("address", &ServerHandle::address)
	    .def_property_readonly("tls_pin", &ServerHandle::tls_pin)
	    .def("run", &ServerHandle::run)
	    .def("stop", &ServerHandle::stop);

	py::class_<RepositoryHandle>(m, "RepositoryHandle")
	    .def_property_readonly("id", [](const RepositoryHandle &self) { return self.get()->id; })
	    .def_property_readonly("encrypted", [](const RepositoryHandle &self) { return self.get()->encrypted; })
	    .def_property_readonly("closed", [](const RepositoryHandle &self) { return !self.p; })
	    .def("close", [](RepositoryHandle &self) { release(self.p); })
	    .def("push", &repository_push, py::arg("paths"), py::arg("tags"), py::arg("progress"),
	         py::arg("command_line"), py::arg("excludes"), py::arg("parent"))
	    .def("snapshots", &repository_snapshots)
	    .def("unreadable_snapshots", &repository_unreadable_snapshots)
	    .def("snapshot", &repository_snapshot, py::arg("prefix"))
	    .def("locate", &repository_locate, py::arg("pattern"), py::arg("full_path"), py::arg("snapshots"))
	    .def("info", &repository_info)
	    .def("rm", &repository_rm, py::arg("snapshots"))
	    .def("repair", &repository_repair, py::arg("apply"), py::arg("read_data"))
	    .def("keep", &repository_keep, py::arg("last"), py::arg("hourly"), py::arg("daily"), py::arg("weekly"),
	         py::arg("monthly"), py::arg("yearly"), py::arg("dry_run"))
	    .def("gc", &repository_gc, py::arg("dry_run"), py::arg("repack_percent"))
	    .def("check", &repository_check, py::arg("snapshots"), py::arg("fast"), py::arg("read_data"),
	         py::arg("refcounts"));

	py::class_<DirHandle>(m, "DirHandle").def("next", &dir_next);

	py::class_<SnapshotHandle>(m, "SnapshotHandle")
	    .def("info", [](const SnapshotHandle &self) { return info_tuple(self.get()->info); })
	    .def_property_readonly("closed", [](const SnapshotHandle &self) { return !self.p; })
	    .def("close", [](SnapshotHandle &self) { release(self.p); })
	    .def("stat", &snapshot_stat, py::arg("path"))
	    .def("ls", &snapshot_ls, py::arg("path"))
	    .def("iterdir", &snapshot_iterdir, py::arg("path"))
	    .def("diff", &snapshot_diff, py::arg("path"), py::arg("other"), py::arg("other_path"))
	    .def("open", &snapshot_open, py::arg("path"))
	    .def("cat", &snapshot_cat, py::arg("path"))
	    .def("pull", &snapshot_pull, py::arg("path"), py::arg("to"), py::arg("rebase"), py::arg("progress"),
	         py::arg("overwrite"), py::arg("force"), py::arg("dry_run"), py::arg("verify"));

	py::class_<FileHandle>(m, "FileHandle")
	    .def_property_readonly("size", [](const FileHandle &self) { return self.get()->size; })
	    .def_property_readonly("closed", [](const FileHandle &self) { return !self.p; })
	    .def("close", [](FileHandle &self) { release(self.p); })
	    .def("readinto", &file_readinto, py::arg("buffer"))
	    .def("seek", &file_seek, py::arg("offset"));

	// Archives (archive.cc), which reach a snapshot's C handle through this function.
	bind_archive(m, [](py::handle o, std::shared_ptr<void> *keep) {
		auto snap = o.cast<const SnapshotHandle &>().get();
		*keep = snap;
		plakar_snapshot *h = nullptr;
		Status s = blocking([&] { return snap->handle(&h); });
		if (!s.ok())
			raise_status(s);
		return h;
	});
}
