"""Peer libraries on the benchmark's own split: RecBole (and cornac) beside recsys_lab and implicit.

    python benchmarks/peers.py ML100K_DIR [--json benchmarks/results/peers_ml-100k.json]

The split is ``recbole_protocol.protocol_splits`` (ratings >= 3, 10-core, per-user random 8:1:1,
seed 2020). It is exported to RecBole's atomic files (``DATASET.{train,valid,test}.inter``, read
through ``benchmark_filename``), and every library ranks exactly those interactions: full
ranking, K = 10, training items masked on valid, training + valid items masked on test.
RecBole and cornac run in their own virtual environment (``make peers`` builds ``.venv-peers``;
``--peers-python`` points elsewhere) through ``benchmarks/peers/recbole_run.py`` and
``cornac_run.py``; they are skipped, with the reason in the JSON, where it is missing. RecBole
scores itself; ours, implicit's and cornac's rankings are scored by ``recsys_lab.eval``.

Hyper-parameters are RecBole's defaults wherever the other library has a counterpart (embedding
64, Adam lr 1e-3, batch 2048, 1 uniform negative, up to 300 epochs, early stopping on valid
NDCG@10 after 10 epochs without improvement; ItemKNN k = 100, shrink 0; EASE reg 250; LightGCN
2 layers, reg 1e-5). The JSON maps each model to one entry per library: NDCG@10, Recall@10,
seconds per training epoch, fit seconds (learned models: the whole loop with its per-epoch
validation; one-pass models: the fit alone), epochs run, the best epoch and the parameters.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from recbole_protocol import PROTOCOLS, protocol_splits, run_implicit_cosine  # noqa: E402

from recsys_lab.data import Interactions  # noqa: E402
from recsys_lab.eval import environment, evaluate, ranking_metrics  # noqa: E402
from recsys_lab.models import BPRMF, EASE, ItemKNN, LightGCN, Popularity, Recommender  # noqa: E402

K = 10
PARTS = ("train", "valid", "test")
HEADER = "user_id:token\titem_id:token\n"                   # RecBole's atomic .inter header
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
SEED = 2020                                                  # the split's and every model's seed
MAX_EPOCHS, PATIENCE = 300, 10                               # RecBole's epochs and stopping_step


# ---- the split as RecBole atomic files ---------------------------------------------------------
def export_atomic(parts: dict[str, Interactions], folder, dataset: str) -> Path:
    """Write ``folder/dataset/dataset.{part}.inter`` (raw ids as tokens, rows sorted by user,
    item); returns ``folder/dataset``. Parts must share one id space."""
    first = next(iter(parts.values()))
    out = Path(folder) / dataset
    out.mkdir(parents=True, exist_ok=True)
    for part, data in parts.items():
        if (data.n_users, data.n_items) != (first.n_users, first.n_items):
            raise ValueError(f"{part}: id space {data.n_users}x{data.n_items} differs from "
                             f"{first.n_users}x{first.n_items}")
        order = np.lexsort((data.item, data.user))
        frame = pd.DataFrame({"u": data.user_ids[data.user[order]], "i": data.item_ids[data.item[order]]})
        with open(out / f"{dataset}.{part}.inter", "w") as f:
            f.write(HEADER)
            frame.to_csv(f, sep="\t", header=False, index=False)
    return out


def token_index(raw_ids) -> dict[str, int]:
    """Atomic-file token (the raw id as text) -> our index."""
    return {str(v): i for i, v in enumerate(np.asarray(raw_ids).tolist())}


def read_atomic(folder, dataset: str, like: Interactions, parts=PARTS) -> dict[str, Interactions]:
    """The atomic files back as Interactions in ``like``'s id space (tokens matched as strings);
    a token outside that space raises KeyError naming it."""
    users, items = token_index(like.user_ids), token_index(like.item_ids)
    out = {}
    for part in parts:
        path = Path(folder) / dataset / f"{dataset}.{part}.inter"
        with open(path) as f:
            if f.readline() != HEADER:
                raise ValueError(f"{path}: header is not {HEADER!r}")
            frame = pd.read_csv(f, sep="\t", header=None, names=["u", "i"], dtype=str)

        def index(col, table, kind):
            missing = sorted(set(col) - table.keys())
            if missing:
                raise KeyError(f"{path}: unknown {kind} token(s) {missing[:5]}")
            return col.map(table).to_numpy(np.int64)

        out[part] = Interactions(index(frame["u"], users, "user"), index(frame["i"], items, "item"),
                                 like.user_ids, like.item_ids, name=f"{dataset}/{part}")
    return out


# ---- scoring any library's rankings with recsys_lab.eval ----------------------------------------
class PeerScores(Recommender):
    """Another library's scorer behind our contract (``score_users(users) -> [n, n_items]`` in our
    id space), so that ``evaluate`` masks and ranks it exactly as it does ours."""

    def __init__(self, score_users):
        self.score_users = score_users

    def _fit(self, train):
        pass

    def _score(self, users):
        return self.score_users(users)


def held_out_metrics(model, valid, test) -> dict:
    """NDCG@10 / Recall@10 on test (train + valid masked) and NDCG@10 on valid (train masked)."""
    t0 = time.perf_counter()
    row = evaluate(model, test, k=K, exclude=valid).iloc[0]
    return {f"ndcg@{K}": float(row["ndcg"]), f"recall@{K}": float(row["recall"]),
            f"valid_ndcg@{K}": float(evaluate(model, valid, k=K).iloc[0]["ndcg"]),
            "eval_seconds": time.perf_counter() - t0}


def early_stopping(step, score, snapshot, max_epochs: int, patience: int) -> dict:
    """Our loop's rule for a peer that trains one epoch per ``step()``: stop after ``patience``
    epochs without a better ``score()`` (valid NDCG@10), ``snapshot()`` the best epoch's state.
    Returns epochs run, best epoch, best state, mean training seconds per epoch, total seconds."""
    best, best_epoch, state, train_s = -np.inf, 0, None, []
    t_fit = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        t0 = time.perf_counter()
        step()
        train_s.append(time.perf_counter() - t0)
        value = score()
        if value > best:
            best, best_epoch, state = value, epoch, snapshot()
        elif epoch - best_epoch > patience:
            break
    return {"epochs_run": epoch, "best_epoch": best_epoch, "state": state,
            "epoch_seconds": float(np.mean(train_s)), "fit_seconds": time.perf_counter() - t_fit}


# ---- recsys_lab and implicit, in this process ---------------------------------------------------
def our_models() -> dict:
    """RecBole's defaults, with our names (see the module docstring)."""
    learned = dict(embedding_size=64, learning_rate=1e-3, batch_size=2048, epochs=MAX_EPOCHS,
                   patience=PATIENCE, seed=SEED, num_threads=1)
    recbole_knn = dict(similarity="cosine", neighbourhood="target", shrink_form="recbole")
    return {"pop": lambda: Popularity(),
            "itemknn": lambda: ItemKNN(k=100, shrink=0.0, **recbole_knn),
            "itemknn_k250": lambda: ItemKNN(k=250, shrink=1.2, **recbole_knn),
            "itemknn_source": lambda: ItemKNN(similarity="cosine", k=100, neighbourhood="source"),
            "ease": lambda: EASE(reg=250.0),
            "bpr": lambda: BPRMF(reg=0.0, n_negatives=1, **learned),      # RecBole's BPR: no L2
            "lightgcn": lambda: LightGCN(n_layers=2, reg=1e-5, **learned)}


def run_ours(name: str, train, valid, test) -> dict | None:
    if name not in (factories := our_models()):                      # a RecBole-only variant
        return None
    model = factories[name]()
    t0 = time.perf_counter()
    model.fit(train, valid=valid)
    fit_s = time.perf_counter() - t0
    learned = hasattr(model, "epoch_seconds_")
    return {**held_out_metrics(model, valid, test), "fit_seconds": fit_s,
            "epoch_seconds": float(np.mean(model.epoch_seconds_)) if learned else None,
            "epochs_run": len(model.history_) if learned else 1,
            "best_epoch": model.best_epoch_ if learned else 1,
            "class": f"recsys_lab.{type(model).__name__}", "params": model.get_config()}


def run_implicit_bpr(train, valid, test) -> dict:
    """implicit's BPR (SGD, one thread) trained one ``fit(iterations=1)`` at a time (it
    continues from its factors; a Generator keeps the sample stream moving) and early-stopped."""
    import implicit
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    X = train.to_csr()
    bpr = BayesianPersonalizedRanking(factors=64, iterations=1, regularization=0.0, num_threads=1,
                                      random_state=np.random.default_rng(SEED))   # lr: its default 0.01
    scorer = PeerScores(lambda users: bpr.user_factors[users] @ bpr.item_factors.T).fit(train)
    run = early_stopping(lambda: bpr.fit(X, show_progress=False),
                         lambda: evaluate(scorer, valid, k=K).iloc[0]["ndcg"],
                         lambda: (bpr.user_factors.copy(), bpr.item_factors.copy()), MAX_EPOCHS, PATIENCE)
    bpr.user_factors, bpr.item_factors = run.pop("state")
    return {**held_out_metrics(scorer, valid, test), **run, "class": "implicit.cpu.bpr.BayesianPersonalizedRanking",
            "params": {"factors": 64, "learning_rate": bpr.learning_rate, "regularization": 0.0,
                       "item_bias": True}, "implicit_version": implicit.__version__}


def run_implicit(name: str, train, valid, test) -> dict | None:
    if name == "itemknn_source":                                       # implicit's neighbourhood
        return run_implicit_cosine(train, valid, test, neighbours=100)
    if name == "bpr":
        return run_implicit_bpr(train, valid, test)
    return None


# ---- RecBole and cornac, in the peers' environment ----------------------------------------------
def peer_run(python: Path, script: str, args: list[str], cwd) -> str | None:
    """Run ``benchmarks/peers/SCRIPT`` with the peers' Python (one thread, its output shown); None
    when it worked, else why not."""
    if not Path(python).exists():
        return f"{python} not found: run `make peers`"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(python), str(ROOT / "benchmarks" / "peers" / script), *args], cwd=cwd, env=env)
    return None if proc.returncode == 0 else f"{script} exited {proc.returncode} (its error is in the log)"


def score_cornac(path, train, valid, test) -> dict:
    """cornac_run.py's rankings scored by ``ranking_metrics`` in our id space, with our early
    stopping over its per-epoch rankings (training is unaffected by when one stops looking)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    users = np.array([token_index(train.user_ids)[t] for t in arrays.pop("user_tokens")])
    items = np.array([token_index(train.item_ids)[t] for t in arrays.pop("item_tokens")])
    relevant = {"valid": valid.to_csr(), "test": test.to_csr()}

    def metrics(top, part):                                           # top: [users, K] cornac ids
        full = np.full((train.n_users, K), -1, dtype=np.int64)
        full[users] = items[top]
        return ranking_metrics(full, relevant[part], K)

    out = {}
    for name in sorted({k.split("__")[0] for k in arrays}):
        tops, seen = arrays[f"{name}__valid_top"], []                 # replay the epochs through the rule
        run = early_stopping(lambda: seen.append(len(seen)), lambda: metrics(tops[seen[-1]], "valid")["ndcg"],
                             lambda: seen[-1], max_epochs=len(tops), patience=PATIENCE)
        best, stop = run["state"], run["epochs_run"] - 1
        valid_ndcg = metrics(tops[best], "valid")["ndcg"]
        t = metrics(arrays[f"{name}__test_top"][best], "test")
        train_s = arrays[f"{name}__train_seconds"]
        learned = len(train_s) > 1                                    # BPR: its per-epoch ranking counts
        out[name] = {f"ndcg@{K}": t["ndcg"], f"recall@{K}": t["recall"], f"valid_ndcg@{K}": valid_ndcg,
                     "fit_seconds": float(arrays[f"{name}__wall_seconds"][stop] if learned else train_s[0]),
                     "epoch_seconds": float(train_s[stop] / (stop + 1)) if learned else None,
                     "epochs_run": stop + 1, "best_epoch": best + 1, "class": f"cornac.{name}",
                     "params": meta["params"][name], "cornac_version": meta["cornac"]}
    for name, why in meta["not_run"].items():
        out[name] = {"skipped": why}
    return out


# ---- the run ------------------------------------------------------------------------------------
LIBRARIES = ("recsys_lab", "recbole", "implicit", "cornac")
MODELS = ("pop", "pop_batch_1", "itemknn", "itemknn_k250", "itemknn_source", "ease", "bpr", "lightgcn")
RECBOLE_MODELS = ("pop", "pop_batch_1", "itemknn", "itemknn_k250", "ease", "bpr", "lightgcn")
NOTES = {   # set-up differences known before running (the findings are in benchmarks/README.md)
    "pop": "RecBole's Pop adds 1 per training batch that holds the item (item_cnt[item] += 1 with "
           "repeated indices), so it undercounts items repeated within a batch (at batch 2048 a count is "
           "at most 32 and popular items tie): a RecBole bug, not copied",
    "pop_batch_1": "RecBole's Pop with train_batch_size 1, where it counts every interaction (the count "
                   "our Popularity uses); in one batch of everything every item would count 1",
    "itemknn_k250": "k 250, shrink 1.2: the published ML-1M row's config; RecBole's shrink form "
                    "a.b / (|a| |b| + shrink)",
    "itemknn_source": "each history item votes for its own k neighbours (implicit's form); RecBole "
                      "has no such option",
    "bpr": "implicit and cornac train with SGD (no Adam), implicit with its default lr 0.01 and an item bias",
    "lightgcn": "L2 forms differ: RecBole reg * sum of Frobenius norms / B, ours reg * mean squared norms",
}


def run(data_dir, names=MODELS, peers_python=PEERS_PYTHON, libraries=LIBRARIES) -> dict:
    train, valid, test, info = protocol_splits(str(data_dir), SEED, **PROTOCOLS["recbole"])
    info["protocol"] = "recbole"
    load_before = list(os.getloadavg())
    results = {name: {} for name in names}
    skipped = {}
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        dataset = f"{info['path_name']}-peers"
        export_atomic(dict(zip(PARTS, (train, valid, test))), tmp, dataset)
        back = read_atomic(tmp, dataset, train)
        info["export_round_trip"] = all((back[p].to_csr() != x.to_csr()).nnz == 0 and len(back[p]) == len(x)
                                        for p, x in zip(PARTS, (train, valid, test)))
        rb = [n for n in names if n in RECBOLE_MODELS]
        if "recbole" in libraries and rb:
            out = Path(tmp) / "recbole.json"
            why = peer_run(peers_python, "recbole_run.py", [tmp, dataset, "--models", ",".join(rb),
                                                            "--seed", str(SEED), "--out", str(out)], tmp)
            if why is None:
                peer = json.loads(out.read_text())
                skipped["recbole_environment"] = {"versions": peer["versions"], "shims": peer["shims"]}
                for n, r in peer["models"].items():
                    results[n]["recbole"] = r
            else:
                skipped["recbole"] = why
        if "cornac" in libraries:
            out = Path(tmp) / "cornac.npz"
            why = peer_run(peers_python, "cornac_run.py", [tmp, dataset, "--models", ",".join(names),
                                                           "--seed", str(SEED), "--out", str(out)], tmp)
            if why is None:
                for n, r in score_cornac(out, train, valid, test).items():
                    if n in results:
                        results[n]["cornac"] = r
            else:
                skipped["cornac"] = why
    for name in names:
        for lib, runner in (("recsys_lab", run_ours), ("implicit", run_implicit)):
            if lib in libraries:
                print(f"{lib} {name} ...", file=sys.stderr, flush=True)
                r = runner(name, train, valid, test)
                if r is not None:
                    results[name][lib] = r
    return {"dataset": info, "models": results, "notes": {n: NOTES[n] for n in names if n in NOTES},
            "peers": skipped, "environment": {**environment(), "load_average_1_5_15": {
                "before": load_before, "after": list(os.getloadavg())}}}


def markdown_table(out: dict) -> str:
    """One row per (model, library): NDCG@10, Recall@10, seconds per epoch, fit seconds, epochs."""
    rows = ["| model | library | NDCG@10 | Recall@10 | s / epoch | fit s | epochs (best) |",
            "|---|---|---|---|---|---|---|"]
    for name, libs in out["models"].items():
        for lib in LIBRARIES:
            r = libs.get(lib)
            if r is None:
                continue
            if "skipped" in r:
                rows.append(f"| {name} | {lib} | not run: {r['skipped']} | | | | |")
                continue
            epoch = f"{r['epoch_seconds']:.3f}" if r.get("epoch_seconds") is not None else ""
            epochs = f"{r['epochs_run']} ({r['best_epoch']})" if r.get("epochs_run", 1) > 1 else ""
            rows.append(f"| {name} | {lib} | {r[f'ndcg@{K}']:.4f} | {r[f'recall@{K}']:.4f} | {epoch} | "
                        f"{r['fit_seconds']:.2f} | {epochs} |")
    return "\n".join(rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", help="a MovieLens folder (u.data for 100K)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {MODELS}")
    p.add_argument("--libraries", default=",".join(LIBRARIES), help=f"comma-separated, from {LIBRARIES}")
    p.add_argument("--peers-python", default=str(PEERS_PYTHON), help="Python of the RecBole/cornac venv")
    p.add_argument("--json", dest="out", help="write the results here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    libs = [n.strip() for n in args.libraries.split(",") if n.strip()]
    for given, known, what in ((names, MODELS, "model"), (libs, LIBRARIES, "library")):
        bad = sorted(set(given) - set(known))
        if bad:
            raise SystemExit(f"unknown {what}(s) {bad}; known: {list(known)}")
    out = run(args.data_dir, names, Path(args.peers_python), libs)
    print(markdown_table(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
