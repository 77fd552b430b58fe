"""The shared measurement helpers (benchmarks and notebook 08) report what evaluate() reports."""
import numpy as np
import pytest

from recsys_lab.accel import Quantized, zipf_requests
from recsys_lab.experiments.accelerators import accuracy_table, batching_experiment, cache_experiment
from recsys_lab.eval import evaluate
from tests.accel_helpers import svd
from tests.contract import planted_blocks
from tests.test_accel_cache import reference_lru


@pytest.fixture(scope="module")
def setup():
    train, test = planted_blocks()
    return svd().fit(train), test


def test_accuracy_table(setup):
    model, test = setup
    q = Quantized(model)
    t = accuracy_table(model, {"int8": q}, test, k=5, n_requests=10).set_index("variant")
    assert t.loc["fp32", "ndcg@5"] == pytest.approx(evaluate(model, test, k=5).ndcg[0])
    assert t.loc["int8", "ndcg_kept"] == pytest.approx(evaluate(q, test, k=5).ndcg[0] / t.loc["fp32", "ndcg@5"])
    d = model.embedding_size
    assert t.loc["int8", "memory_saving"] == pytest.approx(4 * d / (d + 4))


def test_cache_experiment_hit_rate(setup):
    model, _ = setup
    stream = zipf_requests(model.n_users_, 300, seed=2)
    out = cache_experiment(model, stream, capacity=10)
    assert out["hit_rate"] == pytest.approx(reference_lru(stream.tolist(), 10) / 300)
    assert out["distinct_users"] == len(np.unique(stream))


def test_batching_experiment_shapes(setup):
    model, _ = setup
    curve, served = batching_experiment(model, batch_sizes=(1, 8), rates=(1000.0,), max_batches=(1, 8),
                                        n_requests=50)
    assert curve.batch.tolist() == [1, 8]
    assert served.max_batch.tolist() == [1, 8] and (served.mean_batch <= served.max_batch).all()
