"""Atomic file writes, shared by model saving, the sweep cache and the reports.

Readers see the old file or the new one, never a partial one; temp names come from ``mkstemp``
(unpredictable, in the target's folder so ``os.replace`` is atomic) and never outlive an error.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a fresh temp path beside ``path``; on success it replaces ``path``, on error it is
    removed. ``suffix`` lets writers that insist on an extension (``np.savez``: ".npz") keep it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path, data) -> Path:
    """Write ``data`` (str or bytes) to ``path`` atomically (fsync'd before the rename)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)
