"""Corrupted data is detected and never returned."""

import os
import re

import pytest

import plakar
from conftest import KDF, PASSPHRASE

PACK_NAME = re.compile(r"[0-9a-f]{64}")


def _largest_pack(repo_path):
    packs = [p for p in (repo_path / "packs").glob("*/*") if PACK_NAME.fullmatch(p.name)]
    assert packs, "no pack under REPO/packs/XX/"
    return max(packs, key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("encryption", [True, False], ids=["encrypted", "plaintext"])
def test_flipped_byte_in_pack(repo_path, tmp_path, encryption):
    data = os.urandom(1 << 20)
    src = tmp_path / "victim.bin"
    src.write_bytes(data)
    passphrase = PASSPHRASE if encryption else None
    with plakar.create(repo_path, passphrase, encryption=encryption, kdf_log2_n=KDF) as repo:
        snap_id = repo.push(src).id

    pack = _largest_pack(repo_path)
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    pack.write_bytes(raw)

    with plakar.open(repo_path, passphrase) as repo:
        snap = repo.snapshot(snap_id)
        with pytest.raises(plakar.CorruptError) as ei:
            snap.cat(src)
        assert ei.value.code == plakar.CorruptError.code
        with pytest.raises(plakar.CorruptError):
            with snap.open(src) as f:
                f.read()
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(plakar.CorruptError):
            snap.pull(src, out, rebase=True)
        # Never written with wrong bytes: at most a correct prefix.
        restored = out / "victim.bin"
        if restored.exists():
            got = restored.read_bytes()
            assert got == data[: len(got)]
