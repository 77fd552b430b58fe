"""Sweep a grid of model x accelerator x knob settings into one tidy DataFrame.

    grid = [{"model": "EASE", "params": {"reg": [100.0, 500.0]},
             "accelerators": [None, {"name": "Quantized", "params": {"dtype": ["fp16", "int8"]}}]},
            {"model": "BPRMF", "params": {"embedding_size": 32, "epochs": 5}}]
    df = run_sweep(grid, data="online-retail", split={"method": "random", "seed": 2020},
                   cache_dir=".sweep-cache", backend="process", n_jobs=2)

Four modules, one job each:

- :mod:`.grid`: the grid language (blocks, axes, accelerator chains), checked against the
  registry of models and accelerators before any fit;
- :mod:`.cache`: hashes of configurations and data, verified JSON results, cached base models;
- :mod:`.executors`: one data-only task per base model (fitted once, shared by its accelerator
  chains, each measured by :func:`~recsys_lab.eval.compare`), run serially, on a local spawn
  pool or on a Ray cluster (``ray_address``);
- :mod:`.runner`: ``run_sweep`` / ``run_spec`` and the presets: one row per configuration and
  batch size, accuracy and latency together, with the Pareto front of ``pareto_x`` vs ``ndcg@K``.
"""
from .cache import CACHE_VERSION, SweepCache, SweepCacheWarning, data_hash
from .executors import BACKENDS, run_task
from .grid import COMPONENT_MODULES, expand_grid, label, registry, wrapped_field
from .runner import DEFAULT_EVAL, PRESETS, check_spec, default_cache_dir, run_spec, run_sweep

__all__ = ["run_sweep", "run_spec", "check_spec", "expand_grid", "label", "registry", "wrapped_field",
           "data_hash", "default_cache_dir", "run_task", "SweepCache", "SweepCacheWarning",
           "PRESETS", "DEFAULT_EVAL", "BACKENDS", "CACHE_VERSION", "COMPONENT_MODULES"]
