// plakar._plakar: the archive (tarball) part of the extension module, over the archive
// functions of include/plakar/plakar.h. module.cc, which owns the handle types, calls
// bind_archive() from the module definition.
#pragma once

#include <plakar/plakar.h>

#include <pybind11/pybind11.h>

#include <memory>

// Returns the C handle of a plakar._plakar.SnapshotHandle, opening it if needed. Called with
// the GIL held (it releases it while it blocks); stores in *keep what keeps the handle alive
// for the duration of the call; raises the Python exception on failure.
using SnapshotOpener = plakar_snapshot *(*)(pybind11::handle snapshot, std::shared_ptr<void> *keep);

// Adds snapshot_tarball() to the module.
void bind_archive(pybind11::module_ &m, SnapshotOpener open_snapshot);
