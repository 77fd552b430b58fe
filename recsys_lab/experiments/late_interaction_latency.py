"""Latency, memory and cost measurements of the late-interaction experiment.

Every timing runs under ``recsys_lab.eval.latency.limit_threads(1)`` (one request per core, as a
server runs, so wall and thread CPU time measure the same work) and is taken by
``eval.latency.time_calls``; percentiles come from ``eval.latency.latency_summary``. CPU time
(``time.thread_time_ns``) is recorded beside wall time: on a shared machine it is not inflated
when other processes preempt a long call.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
import torch

from ..data.interactions import Interactions
from ..eval.latency import latency_summary, limit_threads, time_calls
from ..models.sequential import (EncoderConfig, MultiSegmentLateInteraction, SequenceEncoder,
                                 SequentialRecommender, TwoTower, cost_model, layer_flops)
from ..models.sequential.checkpoint import untrained
from ..models.sequential.two_stage import top_candidates


def timed_calls(calls) -> tuple[np.ndarray, np.ndarray]:
    """Wall and thread-CPU milliseconds of each zero-argument call, run once each in order."""
    cpu = []

    def call(fn):
        c0 = time.thread_time_ns()
        fn()
        cpu.append((time.thread_time_ns() - c0) / 1e6)

    wall = time_calls(call, [(fn,) for fn in calls], warmup=0)
    return wall, np.asarray(cpu)


def request_latency(rows, retriever, test: Interactions, C: int, n_requests: int, seed: int,
                    warmup: int = 3) -> pd.DataFrame:
    """Per-request latency, interleaved across models, one request = one shopper click.

    A request for user u: ``update(u, clicked item)`` (the model's incremental state update:
    none for the cross-encoders, a full history pass for the two-tower, the open segment for late
    interaction) then ``score_candidates`` of C candidates (the retriever's top-C, computed
    beforehand; C = n_items means the whole catalog). Rows of arch "full" (the baselines) answer
    with a full-ranking ``recommend(u, k=10)`` of the whole catalog instead, after ``update``
    when the model is sequential (SASRec). Late models are also timed re-encoding all segments
    ("full re-encode") and with a warm cache (score only). Models are deep-copied, so the
    originals keep their state. The first ``warmup`` requests of each model and mode are not
    counted.
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
    full_ranking = {name for name, arch, _ in copies if arch == "full"}
    schedule = []                                             # (key, call) in the order run
    for r in range(len(users)):                               # interleave: request r for every model
        u, i, c = users[r], clicks[r], cand[r:r + 1]
        for name, arch, model in copies:
            if arch == "full":
                call = (lambda m=model, u=u, i=i: (m.update(u, i), m.recommend([u], k=10))) \
                    if isinstance(model, SequentialRecommender) else (lambda m=model, u=u: m.recommend([u], k=10))
                schedule.append(((name, "after click"), call))
                continue
            schedule.append(((name, "after click"),
                             lambda m=model, u=u, i=i, c=c: (m.update(u, i), m.score_candidates([u], c))))
            if arch in ("late", "two_tower"):
                schedule.append(((name, "cached"), lambda m=model, u=u, c=c: m.score_candidates([u], c)))
            if arch == "late":
                schedule.append(((name, "full re-encode"),
                                 lambda m=model, u=u, c=c: (m.encode([u]), m.score_candidates([u], c))))
    with limit_threads(1):
        wall, cpu = timed_calls([fn for _, fn in schedule])
    keys = [key for key, _ in schedule]
    out = []
    for key in dict.fromkeys(keys):
        at = np.flatnonzero([k == key for k in keys])
        at = at[warmup:] if len(at) > warmup else at
        full = key[0] in full_ranking
        out.append({"model": key[0], "mode": key[1], "C": n_items if full else int(min(C, n_items)),
                    **latency_summary(wall[at]), **latency_summary(cpu[at], "cpu_"), "n": len(at)})
    return pd.DataFrame(out)


def retrieval_latency(retriever, test, C: int, n_requests: int, seed: int, warmup: int = 3) -> dict:
    """First stage alone: score the catalog with the retriever, mask seen items, top-C."""
    rng = np.random.default_rng(seed)
    users = rng.choice(test.user, size=n_requests + warmup).astype(np.int64)
    with limit_threads(1):
        ms = time_calls(lambda u: top_candidates(retriever, [u], C), [(u,) for u in users], warmup=0)
    return {"model": f"retriever top-C ({type(retriever).__name__})", "C": C,
            **latency_summary(ms[warmup:])}


def long_history_updates(p, seed: int, n_items: int = 1000) -> pd.DataFrame:
    """Incremental update (open segment) vs full re-encode, on synthetic histories of length H.

    For each H in ``p.update_lengths`` (``p``: a ``Profile``): a late model with max_len = H,
    segments of ``update_seg_len`` items (S = H / seg_len), the same width and depth as the
    profile, in its serving state on 4 random users with random weights (``untrained``: latency
    does not depend on the weights).
    Timed: ``update`` (one segment), ``encode`` (all S segments in one batched call) and a
    two-tower of max_len = H (one full-attention pass over H tokens), in blocks of 8 calls per
    mode with the modes alternating between blocks (steady-state cost of each operation; machine
    noise still spreads over all modes). Block -1 is a warm-up.
    """
    rng = np.random.default_rng(seed)
    rows = []
    block = 8       # calls per mode in a row: alternating modes call by call would let the
    n_users = 4     # 1000-token passes evict the small update's caches (2x slower)
    for H in p.update_lengths:
        u = np.repeat(np.arange(n_users), H)
        i = np.concatenate([rng.choice(n_items, H, replace=H > n_items) for _ in range(n_users)])
        data = Interactions(u, i, np.arange(n_users), np.arange(n_items), timestamp=np.arange(len(u)))
        S = max(1, H // p.update_seg_len)
        common = dict(embedding_size=p.embedding_size, n_layers=p.n_layers, n_heads=p.n_heads,
                      max_len=H, seed=seed)
        li = untrained(MultiSegmentLateInteraction(segments=S, vectors_per_segment=1, **common), data)
        tt = untrained(TwoTower(**common), data)
        steps = {"incremental update": lambda u, i: li.update(u, i),
                 "full re-encode (segments)": lambda u, i: li.encode([u]),
                 "two-tower full pass": lambda u, i: tt.update(u, i)}
        times = {k: ([], []) for k in steps}                  # mode -> (wall, cpu) blocks
        with limit_threads(1):
            for b in range(-1, -(-p.update_repeats // block)):
                for mode, fn in steps.items():                # modes alternate by block
                    args = [(r % n_users, int(rng.integers(n_items))) for r in range(block)]
                    wall, cpu = timed_calls([lambda a=a: fn(*a) for a in args])
                    if b >= 0:
                        times[mode][0].append(wall)
                        times[mode][1].append(cpu)
        summary = {mode: (latency_summary(np.concatenate(w)), latency_summary(np.concatenate(c)))
                   for mode, (w, c) in times.items()}
        inc, inc_cpu = (s["p50_ms"] for s in summary["incremental update"])
        for mode, (wall, cpu) in summary.items():
            rows.append({"history": H, "S": S, "seg_len": p.update_seg_len, "mode": mode,
                         "p50_ms": wall["p50_ms"], "p99_ms": wall["p99_ms"], "cpu_p50_ms": cpu["p50_ms"],
                         "speedup_vs_incremental": wall["p50_ms"] / inc,
                         "cpu_speedup_vs_incremental": cpu["p50_ms"] / inc_cpu})
    return pd.DataFrame(rows)


def framework_floor(p, seed: int, d: int = 64, n_layers: int = 2) -> pd.DataFrame:
    """Per-call cost of the encoder on ``p.floor_tokens`` tokens (d=64, 2 layers) and what lowers it.

    Variants: plain call under ``no_grad``; ``inference_mode``; TorchScript (trace + freeze);
    ``torch.compile`` (when ``p.compile``; compile time reported separately); 8 segments batched
    in one call (per-segment cost); one intra-op thread. Each: median of ``p.floor_repeats``
    calls after 5 untimed ones.
    """
    torch.manual_seed(seed)
    cfg = EncoderConfig(n_items=1000, d=d, n_layers=n_layers, n_heads=2, max_len=64, n_extra=1)
    enc = SequenceEncoder(cfg).eval()
    tok = torch.randint(1, cfg.n_items, (1, p.floor_tokens))
    tok8 = torch.randint(1, cfg.n_items, (8, p.floor_tokens))

    def us(fn, arg, ctx=torch.no_grad):
        with ctx():
            return float(np.median(time_calls(fn, [(arg,)] * p.floor_repeats, warmup=5))) * 1e3

    rows = [{"variant": "no_grad (baseline)", "us_per_segment": us(enc, tok)},
            {"variant": "inference_mode", "us_per_segment": us(enc, tok, torch.inference_mode)}]
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(enc, (tok,)))
    rows.append({"variant": "TorchScript trace+freeze", "us_per_segment": us(traced, tok, torch.inference_mode)})
    rows.append({"variant": "8 segments batched in one call",
                 "us_per_segment": us(enc, tok8, torch.inference_mode) / 8})
    with limit_threads(1):
        rows.append({"variant": "inference_mode, 1 thread", "us_per_segment": us(enc, tok, torch.inference_mode)})
    if p.compile:
        t0 = time.perf_counter()
        comp = torch.compile(enc, dynamic=False)
        with torch.inference_mode():
            comp(tok)
        ct = time.perf_counter() - t0
        rows.append({"variant": "torch.compile", "us_per_segment": us(comp, tok, torch.inference_mode),
                     "compile_s": ct})
    df = pd.DataFrame(rows)
    df["tokens"], df["d"], df["n_layers"] = p.floor_tokens, d, n_layers
    df["flops"] = n_layers * layer_flops(p.floor_tokens + 1, d)
    return df


def memory(rows) -> pd.DataFrame:
    """Serving memory: weights + item table + per-user caches (bytes -> MB)."""
    out = []
    for name, arch, S, m, kind, model in rows:
        params = sum(t.numel() * t.element_size() for t in model.module_.parameters())
        cache = model.user_cache_bytes()
        out.append({"model": name, "weights_mb": params / 2**20, "user_cache_mb": cache / 2**20,
                    "cache_bytes_per_user": cache / max(1, model.n_users_),
                    "serving_mb": model.serving_bytes() / 2**20})
    return pd.DataFrame(out)


def costs(rows, p, C_values) -> pd.DataFrame:
    """The FLOPs cost model for every variant at each C (its model's L, d and depth)."""
    out = []
    for name, arch, S, m, kind, model in rows:
        for C in C_values:
            c = cost_model(arch, model.max_len, C, model.embedding_size, model.n_layers, S or 1, m or 1)
            out.append({"model": name, "C": C, "flops": c["total"],
                        "flops_full_encode": c["full_encode_total"]})
    return pd.DataFrame(out)
