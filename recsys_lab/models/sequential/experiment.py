"""The late-interaction experiment of notebook 07 and ``benchmarks/late_interaction.py``.

One run trains the three architectures on the same next-item split, then measures side by side:
accuracy of the two-stage system (retriever top-C re-ranked) and of full ranking, per-request
latency interleaved across models (so machine noise hits all of them alike), incremental update
against full re-encode at long synthetic histories, the per-call floor of the framework, serving
memory, and the FLOPs cost model. Everything is returned as tidy DataFrames.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...data.interactions import Interactions
from ...eval import evaluate
from ..ease import EASE
from .cost_model import cost_model
from .cross_encoder import CrossEncoderRanker
from .data import sampled_next_item_split, with_valid
from .encoder import EncoderConfig, SequenceEncoder
from .late_interaction import MultiSegmentLateInteraction
from .two_tower import TwoTower
from .two_stage import TwoStage, top_candidates


@dataclass
class Profile:
    """Sizes of one run. ``quick`` fits the CI budget (< 60 s), ``full`` the report (< 5 min)."""

    users: int | None = 300              # user subsample (None: all)
    embedding_size: int = 32
    n_layers: int = 1
    n_heads: int = 2
    max_len: int = 50
    epochs: int = 2
    cross_epochs: int = 1
    late_epochs: int = 1
    samples_per_user: int = 4
    learning_rate: float = 5e-3
    finetune_lr: float = 1e-3            # cross-encoder and late models, warm-started
    n_negatives: int = 7
    segments: tuple = (1, 2, 4, 8)
    late_models: tuple = ((2, "maxsim"),)   # (m, interaction) of each late model trained
    valid_users: int = 100               # cross-encoder's sampled early-stopping proxy
    n_requests: int = 20
    n_full_catalog_requests: int = 2
    update_lengths: tuple = (50, 200, 1000)
    update_seg_len: int = 25
    floor_tokens: int = 10
    update_repeats: int = 15
    floor_repeats: int = 100
    compile: bool = False
    patience: int = 2
    retriever: str = "two-tower"         # first stage: "two-tower" (the trained one) or "ease"
    item_init: str | None = None         # "text": the two-tower (and so every model warm-started
                                         # from it) starts from MiniLM title vectors (text extra)
    ease_reg: float = 250.0

    @classmethod
    def named(cls, name: str) -> "Profile":
        if name == "quick":
            return cls()
        if name == "full":       # the report: fits its time budget (~2.5 min on one core)
            return cls(users=800, embedding_size=64, n_layers=2, epochs=5, cross_epochs=2,
                       update_repeats=40, floor_repeats=300,
                       late_epochs=2, samples_per_user=3, patience=1, valid_users=300,
                       late_models=((1, "maxsim"), (2, "maxsim"), (2, "attention")),
                       n_requests=100, n_full_catalog_requests=3, compile=True)
        if name == "bench":      # benchmarks/late_interaction.py: trained until validation stalls
            return cls(users=2000, embedding_size=64, n_layers=2, epochs=30, cross_epochs=15,
                       update_repeats=40, floor_repeats=300, late_epochs=10, samples_per_user=3,
                       patience=2, valid_users=500, retriever="ease",
                       late_models=((1, "maxsim"), (2, "maxsim"), (4, "maxsim"), (2, "attention")),
                       n_requests=200, n_full_catalog_requests=3, compile=True)
        raise ValueError(f"profile must be 'quick', 'full' or 'bench', got {name!r}")


def train_models(train, valid, p: Profile, seed: int, C: int = 100) -> dict:
    """TwoTower first; then, warm-started from it (same block design), the CrossEncoderRanker
    (hard negatives mined from the first stage, ``p.retriever``) and one late-interaction model
    per (m, interaction), trained with S drawn from ``p.segments`` per batch. All see the same
    examples and validation split."""
    common = dict(embedding_size=p.embedding_size, n_layers=p.n_layers, n_heads=p.n_heads,
                  max_len=p.max_len, samples_per_user=p.samples_per_user,
                  learning_rate=p.learning_rate, seed=seed, patience=p.patience, progress=False)
    tt = TwoTower(epochs=p.epochs, item_init=p.item_init, **common).fit(train, valid=valid)
    # hard negatives come from the first stage the ranker will re-rank (fitted on train only)
    miner = tt if p.retriever == "two-tower" else EASE(reg=p.ease_reg).fit(train)
    models = {"two-tower": tt,
              "cross-encoder": CrossEncoderRanker(epochs=p.cross_epochs, n_negatives=p.n_negatives,
                                                  valid_users=p.valid_users,
                                                  **{**common, "learning_rate": p.finetune_lr}
                                                  ).warm_start(tt).mine_negatives_from(miner, C)
                                                  .fit(train, valid=valid)}
    # the same extra fine-tuning epochs for the two-tower, so "late vs two-tower" compares
    # architectures at an equal training budget, not 2 more epochs
    models["two-tower +ft"] = TwoTower(epochs=p.late_epochs, **{**common, "learning_rate": p.finetune_lr}
                                       ).warm_start(tt).fit(train, valid=valid)
    for m, kind in p.late_models:
        models[f"late m={m} {kind}"] = MultiSegmentLateInteraction(
            segments=max(p.segments), vectors_per_segment=m, interaction=kind,
            train_segments=tuple(p.segments), epochs=p.late_epochs,
            **{**common, "learning_rate": p.finetune_lr}).warm_start(tt).fit(train, valid=valid)
    return models


def first_stage(models: dict, train: Interactions, valid: Interactions, p: Profile):
    """The retriever whose top-C every re-ranker sees: the trained two-tower, or EASE (Steck 2019)
    fitted on train + validation (the histories the sequential models read at test time)."""
    if p.retriever == "two-tower":
        return models["two-tower"]
    if p.retriever == "ease":
        return EASE(reg=p.ease_reg).fit(with_valid(train, valid))
    raise ValueError(f"retriever must be 'two-tower' or 'ease', got {p.retriever!r}")


def variants(models: dict, p: Profile):
    """(name, arch, S, m, interaction, model) rows: every late model served at every S."""
    out = [(name, "two_tower", 1, 1, "dot", models[name]) for name in ("two-tower", "two-tower +ft")
           if name in models]
    out.append(("cross-encoder", "cross", None, None, "cross", models["cross-encoder"]))
    for name, model in models.items():
        if isinstance(model, MultiSegmentLateInteraction):
            for S in p.segments:
                out.append((f"late S={S} m={model.vectors_per_segment} {model.interaction}", "late", S,
                            model.vectors_per_segment, model.interaction, model.with_segments(S)))
    return out


def accuracy(rows, retriever, train, test, C: int) -> pd.DataFrame:
    """NDCG@10 / Recall@10 on test: two-stage with C candidates, and full ranking where cheap."""
    out = []
    for name, arch, S, m, kind, model in rows:
        two = TwoStage.from_fitted(retriever, model, C)
        r = evaluate(two, test, k=10).iloc[0]
        row = {"model": name, "arch": arch, "S": S, "m": m, "interaction": kind,
               f"ndcg@10 C={C}": r["ndcg"], f"recall@10 C={C}": r["recall"]}
        if arch != "cross":                                   # full ranking: every item scored
            f = evaluate(model, test, k=10).iloc[0]
            row.update({"ndcg@10 full": f["ndcg"], "recall@10 full": f["recall"]})
        out.append(row)
    return pd.DataFrame(out)


def request_latency(rows, retriever, test: Interactions, C: int, n_requests: int, seed: int,
                    warmup: int = 3) -> pd.DataFrame:
    """Per-request latency, interleaved across models, one request = one shopper click.

    A request for user u: ``update(u, clicked item)`` (the model's incremental state update:
    none for the cross-encoder, a full history pass for the two-tower, the open segment for late
    interaction) then ``score_candidates`` of C candidates (the retriever's top-C, computed
    beforehand; C = n_items means the whole catalog). Late models are also timed re-encoding all
    segments ("full re-encode") and with a warm cache (score only). Models are deep-copied, so
    the originals keep their state.
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(test), size=min(n_requests + warmup, len(test)), replace=False)
    users, clicks = test.user[pick].astype(np.int64), test.item[pick].astype(np.int64)
    n_items = retriever.n_items_
    if C >= n_items:
        cand = np.broadcast_to(np.arange(n_items), (len(users), n_items))
    else:
        cand = top_candidates(retriever, users, C)
    copies = [(name, arch, copy.deepcopy(model)) for name, arch, *_, model in rows]
    ms, cpu = {}, {}

    def timed(key, fn):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        ms.setdefault(key, []).append((time.perf_counter_ns() - t0) / 1e6)
        cpu.setdefault(key, []).append((time.thread_time_ns() - c0) / 1e6)

    with one_thread():
        for r in range(len(users)):                           # interleave: request r for every model
            u, i, c = users[r], clicks[r], cand[r:r + 1]
            for name, arch, model in copies:
                timed((name, "after click"), lambda: (model.update(u, i), model.score_candidates([u], c)))
                if arch in ("late", "two_tower"):
                    timed((name, "cached"), lambda: model.score_candidates([u], c))
                if arch == "late":
                    timed((name, "full re-encode"), lambda: (model.encode([u]), model.score_candidates([u], c)))
    out = []
    for key, v in ms.items():
        v, c = np.asarray(v[warmup:] if len(v) > warmup else v), np.asarray(cpu[key][-len(v):])
        out.append({"model": key[0], "mode": key[1], "C": int(min(C, n_items)),
                    "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)),
                    "mean_ms": float(v.mean()), "cpu_p50_ms": float(np.percentile(c, 50)), "n": len(v)})
    return pd.DataFrame(out)


class one_thread:
    """Context: torch runs one intra-op thread (a server runs one request per core), so wall and
    thread CPU time measure the same work; restores the previous count."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def retrieval_latency(retriever, test, C: int, n_requests: int, seed: int) -> dict:
    """First stage alone: score the catalog with the retriever, mask seen items, top-C."""
    rng = np.random.default_rng(seed)
    users = rng.choice(test.user, size=n_requests + 3).astype(np.int64)
    v = []
    with one_thread():
        for u in users:
            t0 = time.perf_counter_ns()
            top_candidates(retriever, [u], C)
            v.append((time.perf_counter_ns() - t0) / 1e6)
    v = np.asarray(v[3:])
    return {"model": f"retriever top-C ({type(retriever).__name__})", "C": C, "p50_ms": float(np.percentile(v, 50)),
            "p99_ms": float(np.percentile(v, 99))}


def long_history_updates(p: Profile, seed: int, n_items: int = 1000) -> pd.DataFrame:
    """Incremental update (open segment) vs full re-encode, on synthetic histories of length H.

    For each H in ``p.update_lengths``: a late model with max_len = H, segments of
    ``update_seg_len`` items (S = H / seg_len), the same width and depth as the profile,
    trained for one step on 4 random users (latency does not depend on the weights). Timed:
    ``update`` (one segment), ``encode`` (all S segments in one batched call) and a two-tower of
    max_len = H (one full-attention pass over H tokens), in blocks of 8 calls per mode with the
    modes alternating between blocks (steady-state cost of each operation; machine noise still
    spreads over all modes).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for H in p.update_lengths:
        n_users = 4
        u = np.repeat(np.arange(n_users), H)
        i = np.concatenate([rng.choice(n_items, H, replace=H > n_items) for _ in range(n_users)])
        data = Interactions(u, i, np.arange(n_users), np.arange(n_items), timestamp=np.arange(len(u)))
        S = max(1, H // p.update_seg_len)
        common = dict(embedding_size=p.embedding_size, n_layers=p.n_layers, n_heads=p.n_heads,
                      max_len=H, epochs=1, samples_per_user=1, batch_size=4, seed=seed, progress=False)
        li = MultiSegmentLateInteraction(segments=S, vectors_per_segment=1, **common).fit(data)
        tt = TwoTower(**common).fit(data)
        steps = {"incremental update": lambda u, i: li.update(u, i),
                 "full re-encode (segments)": lambda u, i: li.encode([u]),
                 "two-tower full pass": lambda u, i: tt.update(u, i)}
        times = {k: [] for k in steps}
        cpu = {k: [] for k in steps}
        block = 8         # calls per mode in a row: alternating modes call by call would let the
        with one_thread():  # 1000-token passes evict the small update's caches (2x slower)
            for b in range(-1, -(-p.update_repeats // block)):          # block -1: warm-up
                for mode, fn in steps.items():                        # modes alternate by block
                    for r in range(block):
                        user, item = r % n_users, int(rng.integers(n_items))
                        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                        fn(user, item)
                        if b >= 0:
                            times[mode].append((time.perf_counter_ns() - t0) / 1e6)
                            cpu[mode].append((time.thread_time_ns() - c0) / 1e6)
        inc, inc_cpu = np.median(times["incremental update"]), np.median(cpu["incremental update"])
        for mode, v in times.items():
            rows.append({"history": H, "S": S, "seg_len": p.update_seg_len, "mode": mode,
                         "p50_ms": float(np.median(v)), "p99_ms": float(np.percentile(v, 99)),
                         "cpu_p50_ms": float(np.median(cpu[mode])),
                         "speedup_vs_incremental": float(np.median(v) / inc),
                         "cpu_speedup_vs_incremental": float(np.median(cpu[mode]) / inc_cpu)})
    return pd.DataFrame(rows)


def framework_floor(p: Profile, seed: int, d: int = 64, n_layers: int = 2) -> pd.DataFrame:
    """Per-call cost of the encoder on ``p.floor_tokens`` tokens (d=64, 2 layers) and what lowers it.

    Variants: plain call under ``no_grad``; ``inference_mode``; TorchScript (trace + freeze);
    ``torch.compile`` (when ``p.compile``; compile time reported separately); 8 segments batched
    in one call (per-segment cost); one intra-op thread.
    """
    torch.manual_seed(seed)
    enc = SequenceEncoder(EncoderConfig(n_items=1000, d=d, n_layers=n_layers, n_heads=2, max_len=64,
                                        n_extra=1)).eval()
    tok = torch.randint(1, 1000, (1, p.floor_tokens))
    tok8 = torch.randint(1, 1000, (8, p.floor_tokens))

    def timed(fn, arg, ctx=torch.no_grad, n=p.floor_repeats):
        with ctx():
            for _ in range(5):
                fn(arg)
            v = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                fn(arg)
                v.append((time.perf_counter_ns() - t0) / 1e3)
        return float(np.median(v))

    rows = [{"variant": "no_grad (baseline)", "us_per_segment": timed(enc, tok)},
            {"variant": "inference_mode", "us_per_segment": timed(enc, tok, torch.inference_mode)}]
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(enc, (tok,)))
    rows.append({"variant": "TorchScript trace+freeze", "us_per_segment":
                 timed(traced, tok, torch.inference_mode)})
    rows.append({"variant": "8 segments batched in one call", "us_per_segment":
                 timed(enc, tok8, torch.inference_mode) / 8})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows.append({"variant": "inference_mode, 1 thread", "us_per_segment":
                 timed(enc, tok, torch.inference_mode)})
    torch.set_num_threads(threads)
    if p.compile:
        t0 = time.perf_counter()
        comp = torch.compile(enc, dynamic=False)
        with torch.inference_mode():
            comp(tok)
        ct = time.perf_counter() - t0
        rows.append({"variant": "torch.compile", "us_per_segment": timed(comp, tok, torch.inference_mode),
                     "compile_s": ct})
    df = pd.DataFrame(rows)
    df["tokens"], df["d"], df["n_layers"] = p.floor_tokens, d, n_layers
    df["flops"] = n_layers * (24 * (p.floor_tokens + 1) * d * d + 4 * (p.floor_tokens + 1) ** 2 * d)
    return df


def memory(rows) -> pd.DataFrame:
    """Serving memory: weights + item table + per-user caches (bytes -> MB)."""
    out = []
    for name, arch, S, m, kind, model in rows:
        params = sum(t.numel() * t.element_size() for t in model.module_.parameters())
        cache = 0
        if hasattr(model, "cache_"):
            cache = model.cache_.numel() * model.cache_.element_size()
        out.append({"model": name, "weights_mb": params / 2**20, "user_cache_mb": cache / 2**20,
                    "cache_bytes_per_user": cache / max(1, model.n_users_),
                    "serving_mb": model.serving_bytes() / 2**20})
    return pd.DataFrame(out)


def costs(rows, p: Profile, C_values) -> pd.DataFrame:
    """The FLOPs cost model for every variant at each C."""
    out = []
    for name, arch, S, m, kind, model in rows:
        for C in C_values:
            c = cost_model(arch, p.max_len, C, p.embedding_size, p.n_layers, S or 1, m or 1)
            out.append({"model": name, "C": C, "flops": c["total"],
                        "flops_full_encode": c["full_encode_total"]})
    return pd.DataFrame(out)


def headline(table: pd.DataFrame, C: int = 100, lat: str = "cpu_p50_ms") -> dict:
    """Best late setting (by NDCG@10 at C) within 1/20 of the cross-encoder's latency.

    Latency is ``cpu_p50_ms`` by default: single-thread CPU time per request, which equals the
    wall time on an idle core and, unlike wall time, is not inflated when other processes
    preempt long calls on a shared machine (wall p50/p99 are in the table too).
    """
    nd = f"ndcg@10 C={C}"
    ce = table[table.arch == "cross"].iloc[0]
    tt = table[table.arch == "two_tower"].sort_values(nd).iloc[-1]        # the better two-tower
    late = table[table.arch == "late"]
    fast = late[late[lat] <= ce[lat] / 20]
    pool = fast if len(fast) else late
    best = pool.sort_values(nd, ascending=False).iloc[0]
    return {"best_late": best.model, "best_late_ndcg": float(best[nd]),
            "cross_ndcg": float(ce[nd]), "two_tower_ndcg": float(tt[nd]), "two_tower": tt.model,
            "ndcg_ratio_vs_cross": float(best[nd] / ce[nd]) if ce[nd] else float("nan"),
            "latency_ratio_cross_over_late": float(ce[lat] / best[lat]),
            "latency_measure": lat, "late_ms": float(best[lat]), "cross_ms": float(ce[lat]),
            "two_tower_ms": float(tt[lat]),
            "wall_ratio_cross_over_late": float(ce["p50_ms"] / best["p50_ms"]),
            "beats_two_tower": bool(best[nd] > tt[nd]),
            "within_latency_budget": bool(len(fast) > 0),
            "meets_95pct_of_cross": bool(best[nd] >= 0.95 * ce[nd])}


def run(data: Interactions, profile: str | Profile = "quick", seed: int = 2020, C: int = 100,
        log=None) -> dict:
    """The whole experiment; returns a dict of DataFrames plus ``headline`` and timings.

    ``log``: optional callable receiving one progress line per stage (e.g. ``print``).
    """
    p = Profile.named(profile) if isinstance(profile, str) else profile
    if p.retriever not in ("two-tower", "ease"):
        raise ValueError(f"retriever must be 'two-tower' or 'ease', got {p.retriever!r}")
    t0 = time.perf_counter()
    say = (lambda msg: log(f"[{time.perf_counter() - t0:6.1f} s] {msg}")) if log else (lambda msg: None)
    train, valid, test = sampled_next_item_split(data, p.users, seed)
    say(f"data: {train}")
    models = train_models(train, valid, p, seed, C)
    say("trained: " + ", ".join(f"{k} {m.fit_seconds_:.0f} s" for k, m in models.items()))
    fit_s = {k: float(m.fit_seconds_) for k, m in models.items()}
    for m in models.values():
        m.extend(valid)                                       # test histories include validation
    retriever = first_stage(models, train, valid, p)
    say(f"retriever: {p.retriever}")
    rows = variants(models, p)
    acc = accuracy(rows, retriever, train, test, C)
    say("accuracy done")
    lat = request_latency(rows, retriever, test, C, p.n_requests, seed)
    lat_full = request_latency(rows, retriever, test, retriever.n_items_, p.n_full_catalog_requests, seed)
    say("request latency done")
    main = lat[lat["mode"] == "after click"][["model", "p50_ms", "p99_ms", "cpu_p50_ms"]]
    table = acc.merge(main, on="model")
    mem = memory(rows)
    table = table.merge(mem[["model", "serving_mb", "cache_bytes_per_user"]], on="model")
    cm = costs(rows, p, [C, retriever.n_items_])
    table = table.merge(cm[cm.C == C][["model", "flops"]], on="model")
    return {"profile": p, "table": table, "latency": pd.concat([lat, lat_full], ignore_index=True),
            "retrieval": retrieval_latency(retriever, test, C, p.n_requests, seed),
            "updates": long_history_updates(p, seed), "floor": framework_floor(p, seed),
            "memory": mem, "costs": cm, "fit_seconds": fit_s, "headline": headline(table, C),
            "n_test_users": int(len(test)), "seconds": time.perf_counter() - t0, "models": models}
