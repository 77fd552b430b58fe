"""RecBole 1.2.1 on the atomic files that ``benchmarks/peers.py`` exported (run in ``.venv-peers``).

    .venv-peers/bin/python benchmarks/peers/recbole_run.py DATA_PATH DATASET --out OUT.json

``DATA_PATH/DATASET/DATASET.{train,valid,test}.inter`` is the benchmark's own split, read through
RecBole's ``benchmark_filename`` (no filtering, no re-splitting). Full ranking, K = 10, training
items masked on valid, training + valid items masked on test (RecBole's own evaluation);
learned models early-stop on valid NDCG@10 with RecBole's ``stopping_step`` (10). Every config
value is RecBole's default, written out here so the JSON records it. The shims of ``compat.py``
are applied before RecBole is imported. Run it from a scratch folder: RecBole writes
``log_tensorboard/`` into the working directory.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compat  # noqa: E402  (benchmarks/peers/compat.py)

K = 10
TRAINING = dict(epochs=300, train_batch_size=2048, learner="adam", learning_rate=1e-3, weight_decay=0.0,
                stopping_step=10, eval_step=1,
                train_neg_sample_args={"distribution": "uniform", "sample_num": 1, "alpha": 1.0,
                                       "dynamic": False, "candidate_num": 0})
# our name -> (RecBole model, its hyper-parameters: RecBole's defaults unless said otherwise)
MODELS = {
    "pop": ("Pop", {}),
    # batches of 1: Pop's item_cnt[item] += 1 then counts every interaction (see peers.py NOTES)
    "pop_batch_1": ("Pop", {"train_batch_size": 1}),
    "itemknn": ("ItemKNN", {"k": 100, "shrink": 0.0}),
    "itemknn_k250": ("ItemKNN", {"k": 250, "shrink": 1.2}),        # the published ML-1M row's config
    "ease": ("EASE", {"reg_weight": 250.0}),
    "bpr": ("BPR", {"embedding_size": 64}),
    "lightgcn": ("LightGCN", {"embedding_size": 64, "n_layers": 2, "reg_weight": 1e-5}),
}


def base_config(data_path: str, dataset: str, seed: int, checkpoint_dir: str) -> dict:
    return {"data_path": data_path, "dataset": dataset, "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]}, "use_gpu": False, "device": "cpu",
            "seed": seed, "reproducibility": True, "show_progress": False, "state": "WARNING",
            "checkpoint_dir": checkpoint_dir, "metrics": ["Recall", "NDCG"], "topk": [K],
            "metric_decimal_place": 6,
            "valid_metric": f"NDCG@{K}", "eval_args": {"group_by": "user", "order": "RO", "mode": "full",
                                                     "split": {"RS": [0.8, 0.1, 0.1]}},
            **TRAINING}


def timed(obj, method: str, log: list) -> None:
    """Wrap ``obj.method`` so each call appends its wall seconds to ``log``."""
    inner = getattr(obj, method)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            log.append(time.perf_counter() - t0)

    setattr(obj, method, wrapper)


def run_model(name: str, config_dict: dict) -> dict:
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import ModelType, get_model, get_trainer, init_seed

    model_name, params = MODELS[name]
    config = Config(model=model_name, config_dict={**config_dict, **params})
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    train_s, valid_s = [], []
    timed(trainer, "_train_epoch", train_s)
    timed(trainer, "_valid_epoch", valid_s)
    t0 = time.perf_counter()
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    eval_s = time.perf_counter() - t0
    epochs = len(train_s)
    learned = config["MODEL_TYPE"] != ModelType.TRADITIONAL                # Pop, ItemKNN, EASE: one pass
    return {f"ndcg@{K}": float(test[f"ndcg@{K}"]), f"recall@{K}": float(test[f"recall@{K}"]),
            f"valid_ndcg@{K}": float(best_valid), "eval_seconds": eval_s,
            # learned: the whole loop, validation included (as ours); one-pass models: the pass alone
            "fit_seconds": fit_s if learned else sum(train_s),
            "epoch_seconds": sum(train_s) / epochs if learned else None,
            "valid_seconds": sum(valid_s) / max(len(valid_s), 1),
            "epochs_run": epochs, "best_epoch": epochs - trainer.cur_step * trainer.eval_step,
            "class": f"recbole.{model_name}", "params": {k: config[k] for k in params},
            "training": {k: config[k] for k in TRAINING} if learned else None,
            "n_users": dataset.user_num - 1, "n_items": dataset.item_num - 1,   # RecBole's id 0 is padding
            "file_sizes": list(dataset.file_size_list)}


def versions() -> dict:
    from importlib import metadata
    out = {}
    for pkg in ("recbole", "torch", "numpy", "scipy", "pandas", "ray", "setuptools"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_path", help="folder holding DATASET/DATASET.{train,valid,test}.inter")
    p.add_argument("dataset")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {list(MODELS)}")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: see compat.py)")
    p.add_argument("--out", required=True, help="write the results (JSON) here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; known: {list(MODELS)}")
    with tempfile.TemporaryDirectory(prefix="recbole-ckpt-") as ckpt:
        patched = compat.apply(ckpt, threads=args.threads)
        base = base_config(str(Path(args.data_path).resolve()), args.dataset, args.seed, ckpt)
        out = {"models": {}, "shims": patched, "versions": versions()}
        for name in names:
            print(f"recbole {name} ...", file=sys.stderr, flush=True)
            out["models"][name] = res = run_model(name, base)
            print(f"recbole {name}: NDCG@{K} {res[f'ndcg@{K}']:.4f}  fit {res['fit_seconds']:.1f}s "
                  f"({res['epochs_run']} epochs)", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
