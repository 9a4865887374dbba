"""Progress callbacks: events, cancellation by exception, items that vanish mid-push."""

import os

import pytest

import plakar
from conftest import SAMPLE


def test_events_have_growing_counters(repo, tree):
    events = []
    snap = repo.push(tree, progress=events.append)
    assert events
    assert all(isinstance(e, plakar.Event) for e in events)
    assert all(isinstance(e.kind, plakar.EventKind) for e in events)
    file_events = [e for e in events if e.kind == plakar.EventKind.FILE]
    expected = {str(tree / k) for k, v in SAMPLE.items() if v is not None}
    assert {e.path for e in file_events} == expected
    assert any(e.kind == "directory" for e in events)
    for name in ("files", "directories", "bytes", "errors", "stored_bytes"):
        values = [getattr(e, name) for e in events]
        assert values == sorted(values), name
    assert events[-1].files == snap.files
    assert events[-1].bytes == snap.size
    assert events[-1].files > events[0].files or len(events) == 1
    assert [e.files for e in file_events] == list(range(1, len(file_events) + 1))
    assert events[-1].errors == 0


class Stop(Exception):
    pass


def test_exception_in_callback_cancels_push(repo, tree):
    raised = Stop("enough")
    calls = []

    def progress(event):
        calls.append(event)
        if event.kind == plakar.EventKind.FILE:
            raise raised

    with pytest.raises(Stop) as ei:
        repo.push(tree, progress=progress)
    assert ei.value is raised
    # The callback is not called again once it has raised.
    assert calls[-1].kind == plakar.EventKind.FILE
    assert sum(1 for e in calls if e.kind == plakar.EventKind.FILE) == 1
    assert repo.snapshots() == []
    # The repository is still usable.
    snap = repo.push(tree)
    assert repo.snapshots() == [snap]


def test_base_exception_in_callback(repo, tree):
    class Interrupt(BaseException):
        pass

    def progress(event):
        raise Interrupt()

    with pytest.raises(Interrupt):
        repo.push(tree, progress=progress)
    assert repo.snapshots() == []


def test_exception_in_pull_callback(repo, tree, tmp_path):
    snap = repo.push(tree)

    def progress(event):
        raise Stop()

    with pytest.raises(Stop):
        snap.pull(tree, tmp_path / "out", progress=progress)


def test_progress_must_be_callable(repo, tree):
    with pytest.raises(TypeError):
        repo.push(tree, progress=42)


def test_vanished_file(repo, tmp_path):
    src = tmp_path / "v"
    src.mkdir()
    (src / "a").write_bytes(b"A" * 5000)
    (src / "b").write_bytes(b"B" * 5000)
    errors = []

    def progress(event):
        # Entries are processed in name order: when "a" is done, "b" is still to come.
        if event.kind == plakar.EventKind.FILE and event.path == str(src / "a"):
            os.unlink(src / "b")
        if event.kind == plakar.EventKind.ERROR:
            errors.append(event)

    with pytest.raises(plakar.PartialError) as ei:
        repo.push(src, progress=progress)
    snap = ei.value.snapshot
    assert isinstance(snap, plakar.Snapshot)
    assert [p for p, _ in snap.errors] == [str(src / "b")]
    assert all(msg for _, msg in snap.errors)
    assert [e.path for e in errors] == [str(src / "b")]
    assert errors[0].message and errors[0].errors == 1
    assert snap.cat(src / "a") == b"A" * 5000
    # The snapshot was committed.
    assert repo.snapshots() == [snap]
    assert repo.snapshot(snap.id).errors == snap.errors
