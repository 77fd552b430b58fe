"""recsys_lab.fileio: the one atomic write (model saves, sweep cache, reports, nbcheck)."""
from __future__ import annotations

import os

import pytest

from recsys_lab.fileio import atomic_path, atomic_write


def test_atomic_write_replaces_or_leaves_original(tmp_path, monkeypatch):
    target = tmp_path / "a.html"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_text() == "new"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "newer")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]


def test_atomic_path_keeps_suffix_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "model.npz"
    with atomic_path(target, suffix=".npz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".npz") and tmp != target
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x" and oct(target.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("half-way")
    assert target.read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
