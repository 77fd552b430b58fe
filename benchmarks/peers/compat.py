"""Run-time compatibility shims for RecBole 1.2.1 on current packages (NumPy 2, SciPy 1.17, torch 2.6+).

Applied inside the RecBole process only, by monkeypatching; no installed file is edited. Each shim
restores exactly what the old library provided and nothing more:

- NumPy 2 removed the aliases ``np.float_``, ``np.complex_``, ``np.unicode_``, ``np.float`` (and
  ``np.long`` before 2.0); RecBole's ``Config.compatibility_settings`` and metrics still use them.
- SciPy 1.17 removed ``dok_matrix._update`` (a plain dict update), used by RecBole's LightGCN to
  build its adjacency.
- torch >= 2.6 loads with ``weights_only=True``; RecBole's checkpoints pickle its config, so its
  trainer's reload of the best epoch fails. ``weights_only=False`` is granted **only** for files
  under the checkpoint folder this script created and RecBole itself wrote (never for a file
  from elsewhere: unpickling runs code).
- ray 2.6 (a RecBole dependency, used only for hyper-parameter tuning) does not import without
  ``pkg_resources`` (setuptools < 81): the runner never imports ``recbole.quick_start`` (the one
  module that imports ray), and ``make peers`` pins setuptools < 81 for anyone who does.
- One torch thread: on 2 busy cores BPR runs about 10x slower with torch's default pool.

Not patched: under pandas 3 (copy-on-write) RecBole's ``_fill_nan`` (``feat[field].fillna(...,
inplace=True)``) warns and fills nothing; the exported files have no missing values, and
``peers.py`` checks that they read back as exactly the split.
"""
from __future__ import annotations

from pathlib import Path

NUMPY_ALIASES = {"float_": "float64", "complex_": "complex128", "unicode_": "str_", "float": None,
                 "long": "int_"}


def patch_numpy() -> list[str]:
    """Put back the NumPy 1.x aliases that are missing; returns the names added."""
    import numpy as np
    added = []
    for name, target in NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, float if target is None else getattr(np, target))
            added.append(name)
    return added


def patch_scipy_dok() -> bool:
    """``dok_matrix._update(mapping)``: SciPy < 1.12's unchecked bulk insert (True if added)."""
    import scipy.sparse as sp
    if hasattr(sp.dok_matrix, "_update"):
        return False

    def _update(self, mapping):
        self._dict.update(mapping)                                     # SciPy >= 1.12 keeps a _dict

    sp.dok_matrix._update = _update
    return True


def patch_torch_load(checkpoint_dir) -> None:
    """``torch.load(path)`` of a RecBole checkpoint under ``checkpoint_dir`` -> weights_only=False.

    Only RecBole's own checkpoints, written by this process into a folder it created, are read
    with full unpickling; every other load keeps torch's default (weights_only=True).
    """
    import torch
    own = Path(checkpoint_dir).resolve()
    original = torch.load

    def load(f, *args, **kwargs):
        if isinstance(f, (str, Path)) and Path(f).resolve().is_relative_to(own):
            kwargs.setdefault("weights_only", False)
        return original(f, *args, **kwargs)

    torch.load = load


def apply(checkpoint_dir, threads: int = 1) -> dict:
    """Every shim above, before RecBole is imported; returns what was patched (for the JSON)."""
    import torch
    torch.set_num_threads(threads)
    patched = {"numpy_aliases": patch_numpy(), "scipy_dok_update": patch_scipy_dok()}
    patch_torch_load(checkpoint_dir)
    patched["torch_load_weights_only_false_for"] = "RecBole's own checkpoints in this run's folder"
    patched["torch_threads"] = torch.get_num_threads()
    return patched
