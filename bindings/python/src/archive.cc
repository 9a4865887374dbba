// plakar._plakar.snapshot_tarball: an archive of a snapshot into a file (by path) or into a
// Python binary file object.
//
// The C call runs with the GIL released. Archive bytes are gathered into 1 MiB pieces and
// handed to the file object's write() with the GIL re-acquired; progress events likewise.
// The first exception a callback raises (write() or progress) cancels the call and is
// re-raised unchanged once the call has returned.

#include "archive.h"
#include "common.h"

namespace {

using namespace plakar_py;

constexpr size_t kPiece = 1 << 20;

// Raises the exception plakar._errors maps the code to.
[[noreturn]] void raise_code(int code, std::string message)
{
	Status s;
	s.code = code;
	s.message = message.empty() ? plakar_error_string(code) : std::move(message);
	raise_status(s);
}

std::string last_message(int code) { return code == PLAKAR_OK ? std::string() : plakar_error_last(); }

// The state of one call, shared by the write and progress trampolines (its payload).
struct TarballCall : CallbackErrors {
	py::object file;     // the destination file object, or None
	py::object progress; // the progress callback, or None
	std::string pending; // archive bytes not yet handed to file.write

	TarballCall(py::object f, py::object p) : file(std::move(f)), progress(std::move(p)) {}

	// Hands pending to file.write, looping over short writes. GIL held.
	void flush()
	{
		size_t done = 0;
		while (done < pending.size()) {
			py::object n = file.attr("write")(py::bytes(pending.data() + done, pending.size() - done));
			if (n.is_none())
				break; // a file object that does not count: everything was taken
			size_t k = n.cast<size_t>();
			if (k == 0 || k > pending.size() - done)
				throw py::value_error("write() of the archive's file object returned a bad count");
			done += k;
		}
		pending.clear();
	}

	static int on_write(const void *buf, size_t len, void *payload)
	{
		auto *c = static_cast<TarballCall *>(payload);
		// Without the GIL: pending belongs to this call and only this thread touches it.
		c->pending.append(static_cast<const char *>(buf), len);
		if (c->pending.size() < kPiece)
			return 0;
		py::gil_scoped_acquire gil;
		if (c->failed())
			return 1;
		try {
			c->flush();
			return 0;
		} catch (...) {
			c->fail_with_current();
		}
		return 1;
	}

	static int on_event(const plakar_event *ev, void *payload)
	{
		auto *c = static_cast<TarballCall *>(payload);
		py::gil_scoped_acquire gil;
		if (c->failed())
			return 1;
		try {
			call_progress(c->progress, ev);
			return 0;
		} catch (...) {
			c->fail_with_current();
		}
		return 1;
	}
};

int choose_format(const std::optional<std::string> &name, const std::optional<std::string> &dest)
{
	int format = PLAKAR_ARCHIVE_TAR;
	if (name.has_value()) {
		int rc = plakar_archive_format_from_name(&format, name->c_str());
		if (rc != PLAKAR_OK)
			raise_code(rc, last_message(rc));
	} else if (dest.has_value()) {
		// PLAKAR_ENOTFOUND (no known extension) leaves the default, tar.
		int rc = plakar_archive_format_from_filename(&format, dest->c_str());
		(void)rc;
	}
	return format;
}

} // namespace

void bind_archive(py::module_ &m, SnapshotOpener open_snapshot)
{
	m.def(
	    "snapshot_tarball",
	    [open_snapshot](py::handle snapshot, const std::optional<py::bytes> &dest_b, const py::object &file,
	                    const py::bytes &path_b, const std::optional<std::string> &format_name,
	                    const py::object &progress) {
		    std::string path = c_string(path_b, "path");
		    std::optional<std::string> dest;
		    if (dest_b.has_value())
			    dest = c_string(*dest_b, "destination file");
		    else if (file.is_none())
			    raise_code(PLAKAR_EINVALID, "no destination: a file name or a file object is needed");
		    if (format_name.has_value() && std::memchr(format_name->data(), '\0', format_name->size()))
			    raise_code(PLAKAR_EINVALID, "format contains a NUL byte");
		    int format = choose_format(format_name, dest);

		    std::shared_ptr<void> keep;
		    plakar_snapshot *snap = open_snapshot(snapshot, &keep);
		    TarballCall call(file, progress);
		    plakar_archive_options opts = PLAKAR_ARCHIVE_OPTIONS_INIT;
		    opts.progress = progress.is_none() ? nullptr : &TarballCall::on_event;
		    opts.payload = &call;
		    int rc;
		    std::string message;
		    {
			    py::gil_scoped_release nogil;
			    if (dest.has_value()) {
				    rc = plakar_snapshot_archive_file(snap, path.c_str(), format, dest->c_str(), &opts);
			    } else {
				    opts.write = &TarballCall::on_write;
				    rc = plakar_snapshot_archive(snap, path.c_str(), format, &opts);
			    }
			    message = last_message(rc);
		    }
		    if (call.failed())
			    call.rethrow();
		    // The end of the archive: also after PLAKAR_EPARTIAL, which completes it.
		    if (!dest.has_value() && (rc == PLAKAR_OK || rc == PLAKAR_EPARTIAL))
			    call.flush();
		    if (rc != PLAKAR_OK)
			    raise_code(rc, message);
	    },
	    py::arg("snapshot"), py::arg("dest"), py::arg("file"), py::arg("path"), py::arg("format"),
	    py::arg("progress"));
}
