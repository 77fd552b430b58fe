"""Cost as the work grows: every family on the seeded synthetic shop at catalog sizes 10^3..10^6.

    cfg = ScaleConfig(sizes=(10**3, 10**4), fit_budget_s=60)
    rows = run_scale(cfg, backend="process", n_jobs=1)        # or backend="ray", ray_address=...

The shop at n items has n_users = min(2 n, 10^6) users and 20 events per user (``shop_size``),
split 8:1:1 per user. Before anything is generated or fitted, each configuration is predicted
(``estimate_cost`` of the model, :func:`~.scale_cost.wrapper_cost` of its accelerators); one
beyond the budget of memory (on top of the data) or fit time is **skipped with its estimate**,
printed and kept as a row, never run into an out-of-memory kill. The rest become data-only tasks
(:mod:`.scale_task`) run by the sweep's executors, so the same grid runs serially, on a local
process pool or on a Ray cluster with the same numbers. Rows: one per size, family, variant and
search knob, with the estimate beside what was measured.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..eval.sweep.executors import BACKENDS, execute, show_progress
from ..eval.sweep.grid import build
from .scale_cost import base_cost, default_nlist, shop_size, skip_row, wrapper_cost
from .scale_task import run_scale_task

SIZES = (10**3, 10**4, 10**5, 10**6)
FAMILIES = {
    "Popularity": {"model": "Popularity", "params": {}},
    "ItemKNN": {"model": "ItemKNN", "params": {"k": 100}},
    "EASE": {"model": "EASE", "params": {"reg": 250.0}},
    "PureSVD": {"model": "PureSVD", "params": {"embedding_size": 64, "seed": 0},
                "variants": {"exact": None,
                             "HNSW": {"name": "ANNIndex", "params": {"backend": "hnsw", "M": 32,
                                                                     "ef_construction": 80}},
                             # the 10 sqrt(n) largest-norm items scored exactly, HNSW for the rest
                             "norm-ranged HNSW": {"name": "ANNIndex", "head_per_sqrt_n": 10,
                                                  "params": {"backend": "hnsw", "M": 32,
                                                             "ef_construction": 80}},
                             "IVF-PQ": {"name": "ANNIndex", "params": {"backend": "ivfpq", "pq_m": 16}},
                             "int8": {"name": "Quantized", "params": {"dtype": "int8"}}}},
    "LightGCN": {"model": "LightGCN", "params": {"embedding_size": 64, "n_layers": 2, "epochs": 2,
                                                 "batch_size": 8192, "learning_rate": 0.01,
                                                 "reg": 1e-4, "device": "cpu", "seed": 0}},
    "TwoTower": {"model": "TwoTower", "params": {"embedding_size": 64, "n_layers": 1, "n_heads": 2,
                                                 "max_len": 20, "samples_per_user": 1, "epochs": 2,
                                                 "batch_size": 256, "learning_rate": 3e-3,
                                                 "device": "cpu", "seed": 0}},
}
# the analytic cost each curve is read against (the estimates give their slopes); variants: their build
ANALYTIC = {"Popularity": "fit linear in events",
            "ItemKNN": "fit: n_items^2 dense similarity cells + co-occurrence pairs (nnz-driven)",
            "EASE": "memory 20 n^2 bytes, fit 2 n^3 flops", "PureSVD": "fit linear in events (Lanczos steps)",
            "LightGCN": "fit: epochs x events / batch steps, each over the whole graph",
            "TwoTower": "fit: users x items x d (full-catalog softmax)",
            "HNSW": "build n log n", "norm-ranged HNSW": "build n log n; request sqrt(n) d + log n", "IVF-PQ": "build: k-means on a capped sample, then n assignments",
            "int8": "build linear in users + items"}


@dataclass
class ScaleConfig:
    """The scale grid: sizes, the shop's growth ratio, the measurement and the machine's budget.

    memory_budget_gb: predicted peak memory a fit may add on top of the data; fit_budget_s:
    predicted seconds a fit (or an index build) may take. Beyond either: skipped, with the estimate.
    """

    sizes: tuple = SIZES
    families: tuple = tuple(FAMILIES)
    users_per_item: float = 2.0
    max_users: int = 10**6
    events_per_user: int = 20
    seed: int = 0
    eval_users: int = 1000          # seeded sample of test users, full ranking
    k: int = 10
    n_requests: int = 500           # single-user requests for p50/p95/p99 (after ``warmup``)
    warmup: int = 20
    throughput_batch: int = 1024
    throughput_requests: int = 2
    memory_budget_gb: float = 12.0
    fit_budget_s: float = 5400.0
    threads: int = 1
    ef_search: tuple = (16, 32, 64, 128, 256, 512)   # HNSW search knob, swept on one index
    nprobe: tuple = (8, 32, 128)                     # IVF-PQ search knob
    overrides: dict = field(default_factory=dict)   # {family: {param: value}} on top of FAMILIES
    variants: tuple | None = None   # the accelerated variants to run (None: all); "exact" always runs

    def __post_init__(self):
        bad = sorted(set(self.families) - set(FAMILIES))
        if bad:
            raise ValueError(f"unknown famil{'y' if len(bad) == 1 else 'ies'} {bad}; known: {list(FAMILIES)}")
        known = [v for f in FAMILIES.values() for v in f.get("variants", {})]
        bad = sorted(set(self.variants or ()) - set(known))
        if bad:
            raise ValueError(f"unknown variant{'' if len(bad) == 1 else 's'} {bad}; known: {known}")
        if not (self.memory_budget_gb > 0 and self.fit_budget_s > 0):
            raise ValueError(f"budgets must be positive, got memory_budget_gb={self.memory_budget_gb!r}, "
                             f"fit_budget_s={self.fit_budget_s!r}")
        for name in ("eval_users", "k", "n_requests", "throughput_batch", "throughput_requests", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for n in self.sizes:
            shop_size(n)                                        # raises on a bad size

    def size(self, n_items: int) -> dict:
        return shop_size(n_items, self.users_per_item, self.max_users, self.events_per_user)

    def settings(self) -> dict:
        return {"seed": self.seed, "eval_users": self.eval_users, "k": self.k, "n_requests": self.n_requests,
                "warmup": self.warmup, "throughput_batch": self.throughput_batch,
                "throughput_requests": self.throughput_requests}


def family_spec(name: str, n_items: int, cfg: ScaleConfig) -> dict:
    """The family's model, parameters and variants at ``n_items``: IVF cells (sqrt n), PQ code
    bits (at least 39 training points per code, faiss's k-means floor) and the norm-ranged head
    (``head_per_sqrt_n`` sqrt n items) follow the size."""
    fam = FAMILIES[name]
    params = {**fam["params"], **cfg.overrides.get(name, {})}
    variants = {}
    for vname, spec in fam.get("variants", {"exact": None}).items():
        if spec is not None and cfg.variants is not None and vname not in cfg.variants:
            continue
        if spec is not None and spec["params"].get("backend") == "ivfpq":
            bits = int(min(8, max(1, math.floor(math.log2(n_items / 39)))))   # >= 39 points per code
            spec = {**spec, "params": {**spec["params"], "nlist": default_nlist(n_items), "pq_bits": bits},
                    "search": {"nprobe": list(cfg.nprobe)}}
        elif spec is not None and spec["params"].get("backend") == "hnsw":
            spec = {**spec, "search": {"ef_search": list(cfg.ef_search)}}
            if "head_per_sqrt_n" in spec:
                head = min(n_items, math.ceil(spec["head_per_sqrt_n"] * math.sqrt(n_items)))
                spec = {**spec, "params": {**spec["params"], "exact_head": head}}
        variants[vname] = spec
    return {"model": fam["model"], "params": params, "variants": variants}


def family_model(name: str, cfg: ScaleConfig | None = None):
    """The family's base model (unfitted), as the grid builds it."""
    spec = family_spec(name, 10**3, cfg or ScaleConfig())
    return build(spec["model"], spec["params"])


def plan(cfg: ScaleConfig, verbose: bool = True) -> tuple[list[dict], list[dict]]:
    """``(tasks, skipped)``: the configurations predicted to fit, as data-only tasks, and a row for
    each one beyond the budget (its estimate and the reason, also printed when ``verbose``)."""
    budget = {"memory_bytes": cfg.memory_budget_gb * 2**30, "seconds": cfg.fit_budget_s}
    tasks, skipped = [], []
    for n_items in sorted(cfg.sizes):
        size = cfg.size(n_items)
        for name in cfg.families:
            spec = family_spec(name, n_items, cfg)
            model = build(spec["model"], spec["params"])
            est = base_cost(model, size)
            why = est.exceeds(**budget)
            if why:
                whole = "exact" if len(spec["variants"]) == 1 else "all"
                skipped.append(skip_row(name, whole, size, est, why))
                continue
            variants = {}
            for vname, vspec in spec["variants"].items():
                if vspec is None:
                    variants[vname] = None
                    continue
                vest = wrapper_cost(vspec, size["n_users"], n_items, spec["params"].get("embedding_size", 64))
                vwhy = vest.exceeds(**budget)
                if vwhy:
                    skipped.append(skip_row(name, vname, size, vest, vwhy))
                else:
                    variants[vname] = {**vspec, "estimate": vest.as_dict("est_index_")}
            tasks.append({"family": name, "size": size, **spec, "variants": variants, "budget": budget,
                          "settings": cfg.settings(), "threads": cfg.threads})
    if verbose:
        for row in skipped:
            print(row["reason"], flush=True)
    return tasks, skipped


def run_scale(cfg: ScaleConfig, backend: str = "process", n_jobs: int = 1, ray_address: str | None = None,
              progress: bool | None = None, on_rows=None, verbose: bool = True) -> pd.DataFrame:
    """Run the scale grid: predicted skips first, then every task on ``backend`` (the sweep's
    "serial", "process" or "ray"; ``ray_address`` an existing cluster, as in ``run_sweep``).
    ``on_rows(rows)`` gets each finished task's rows (e.g. to save partial results). Returns all
    rows, the skipped ones included, sorted by size and family."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    if int(n_jobs) < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs!r}")
    tasks, skipped = plan(cfg, verbose=verbose)
    show = show_progress(progress)
    for t in tasks:
        t["progress"] = show and backend == "serial"
    done = list(skipped)

    def keep(rows):
        for row in rows:
            if verbose and row["status"] == "skipped":
                print(row["reason"], "(checked on the generated data)", flush=True)
        done.extend(rows)
        if on_rows is not None:
            on_rows(rows)
    if on_rows is not None and skipped:
        on_rows(skipped)
    execute(tasks, (), backend, int(n_jobs), ray_address, progress, on_rows=keep, task_fn=run_scale_task)
    frame = pd.DataFrame(done)
    order = {f: i for i, f in enumerate(FAMILIES)}
    frame["_f"] = frame["family"].map(order)
    return frame.sort_values(["n_items", "_f"], kind="stable").drop(columns="_f").reset_index(drop=True)


def config_dict(cfg: ScaleConfig) -> dict:
    """The configuration as JSON data, with the family specs it ran."""
    return {**asdict(cfg), "sizes": list(cfg.sizes), "families": {f: FAMILIES[f] for f in cfg.families},
            "shops": {str(n): cfg.size(n) for n in cfg.sizes}, "cpu_count": os.cpu_count()}


def curves(rows: pd.DataFrame, k: int = 10, target: float = 0.95) -> pd.DataFrame:
    """One row per size and (family, variant), labelled "PureSVD + HNSW": for a variant with a
    search knob, the cheapest setting with overlap@k >= ``target`` (else its most exact one).
    Skipped rows are kept (their estimates are what a figure shows for them)."""
    ok, col = rows[rows["status"] == "ok"], f"overlap@{k}"
    picked = []
    for _, g in ok.groupby(["n_items", "family", "variant"], sort=False):
        good = g[g[col] >= target] if col in g else g.iloc[:0]
        picked.append(good.iloc[0] if len(good) else g.iloc[-1])
    out = pd.concat([pd.DataFrame(picked), rows[rows["status"] == "skipped"]], ignore_index=True)
    out["label"] = [f if v in ("exact", "all") else f"{f} + {v}"
                    for f, v in zip(out["family"], out["variant"])]
    order = {f: i for i, f in enumerate(FAMILIES)}
    out["_f"] = out["family"].map(order)
    out = out.sort_values(["_f", "label", "n_items"], kind="stable")
    return out.drop(columns="_f").reset_index(drop=True)


def combine(live: pd.DataFrame, recorded: pd.DataFrame, source: str = "recorded") -> pd.DataFrame:
    """Rows of a live run completed from a recorded grid: per (size, family, variant, knob) the
    live row when it ran, else the recorded one (a fit the live budget skipped, a size not run
    live), else the live skip. Column ``source`` says which ("live" or ``source``)."""
    key = ["n_items", "family", "variant", "knob"]
    live = live.assign(source="live")
    ran = live[live["status"] == "ok"]
    have = set(map(tuple, ran[key].itertuples(index=False)))
    whole = set(map(tuple, ran[["n_items", "family"]].itertuples(index=False)))
    rec = recorded.assign(source=source)
    fill = rec[np.array([tuple(r) not in have and (r[0], r[1]) not in whole
                         for r in rec[key].itertuples(index=False)], dtype=bool)]
    filled = set(map(tuple, fill[["n_items", "family"]].itertuples(index=False)))
    unfilled = np.array([(n, f) not in filled for n, f in zip(live["n_items"], live["family"])], dtype=bool)
    skips = live[(live["status"] == "skipped").to_numpy() & unfilled]
    return pd.concat([ran, fill, skips], ignore_index=True)
