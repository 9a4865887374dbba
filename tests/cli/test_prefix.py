"""Snapshots are selected by id or by any unique prefix of it."""
from cliutil import snap_path


def test_prefixes(repo, tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "f").write_bytes(b"tiny\n")

    # Push until two ids share their first hex digit: 17 ids always do (16 digits).
    ids = []
    while True:
        ids.append(repo.push(d))
        firsts = [i[0] for i in ids]
        shared = [c for c in set(firsts) if firsts.count(c) > 1]
        if shared:
            break
        assert len(ids) <= 16
    assert repo.snapshot_ids() == ids  # oldest first: push order
    path = str(d / "f")

    # The full id, a unique prefix, and the id without its dashes select one snapshot.
    target = ids[0]
    args = [target, target.replace("-", "")]
    if sum(1 for i in ids if i.startswith(target[:8])) == 1:
        args.append(target[:8])
    for arg in args:
        assert repo.ok("cat", snap_path(arg, path)).stdout == b"tiny\n"
    # the shortest unique prefix of some id
    unique = next(i[:n] for n in range(1, 37) for i in ids
                  if sum(1 for j in ids if j.startswith(i[:n])) == 1)
    assert repo.ok("ls", unique + ":" + path).out.endswith(" f\n")

    # Unknown prefix: one line, exit 1.
    unknown = next(p for p in ("0" * 12, "f" * 12, "1" * 12)
                   if not any(i.replace("-", "").startswith(p) for i in ids))
    r = repo.fails("ls", unknown + ":/", code=1)
    assert unknown in r.stderr or "not found" in r.stderr.lower()
    repo.fails("cat", unknown + ":" + path, code=1)
    repo.fails("pull", "-to", tmp_path / "nowhere", unknown, code=1)
    assert not (tmp_path / "nowhere").exists()

    # Ambiguous prefix: one line, exit 1, names the ambiguity.
    r = repo.fails("ls", shared[0] + ":/", code=1)
    assert "ambiguous" in r.stderr.lower()
    repo.fails("cat", shared[0] + ":" + path, code=1)
    repo.fails("pull", "-to", tmp_path / "nowhere", shared[0], code=1)
    assert not (tmp_path / "nowhere").exists()
