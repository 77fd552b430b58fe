"""topk, masking and the base-class plumbing (the contract suite covers each model)."""
import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.base import Recommender, mask_rows, topk


@pytest.mark.parametrize("seed", range(5))
def test_topk_matches_full_sort_with_index_tiebreak(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 6, size=(20, 50)).astype(np.float32)   # many ties
    s[rng.random(s.shape) < 0.05] = np.nan
    for k in (1, 7, 49, 50):
        items, vals = topk(s, k)
        key = np.where(np.isnan(s), -np.inf, s)
        want = np.lexsort((np.tile(np.arange(50), (20, 1)), -key), axis=1)[:, :k]
        np.testing.assert_array_equal(items, want)
        np.testing.assert_array_equal(vals, np.take_along_axis(key, want, 1))


def test_topk_rows_do_not_depend_on_batch():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(8, 30)).astype(np.float32)
    together = topk(s, 5)[0]
    alone = np.vstack([topk(s[i:i + 1], 5)[0] for i in range(8)])
    np.testing.assert_array_equal(together, alone)


@pytest.mark.parametrize("k", [0, -1, 31])
def test_topk_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be in 1..30"):
        topk(np.zeros((2, 30)), k)


def test_mask_rows():
    s = np.zeros((2, 4), dtype=np.float32)
    csr = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]))
    mask_rows(s, csr, np.array([2, 0]))
    assert np.isneginf(s).tolist() == [[False, False, True, False], [True, False, False, True]]


def test_load_refuses_unknown_class(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array('{"class": "os.system", "config": {}}'))
    with pytest.raises(ValueError, match="unknown model class"):
        Recommender.load(path)


# ---- one validation of arguments (issue 14.3) ------------------------------------------------
from recsys_lab.data import Interactions  # noqa: E402
from recsys_lab.models import BPRMF, EASE, ItemKNN, Item2Vec, PureSVD  # noqa: E402
from recsys_lab.models.attention import AttentionPooling  # noqa: E402
from recsys_lab.models.seen import SeenSet, csr_insert  # noqa: E402
from tests.contract import planted_blocks  # noqa: E402


@pytest.fixture(scope="module")
def planted():
    return planted_blocks()


@pytest.fixture(scope="module")
def ease(planted):
    return EASE(reg=10.0).fit(planted[0])


def test_hyper_parameters_are_type_checked_at_construction():
    with pytest.raises(TypeError, match=r"EASE: reg must be float, got 'x' \(str\)"):
        EASE(reg="x")
    with pytest.raises(TypeError, match="epochs must be int, got 2.5"):
        BPRMF(epochs=2.5)
    with pytest.raises(TypeError, match="embedding_size must be int, got True"):
        BPRMF(embedding_size=True)
    with pytest.raises(TypeError, match="k must be int, got 50.0"):
        ItemKNN(k=50.0)
    with pytest.raises(TypeError, match="progress must be bool or None"):
        BPRMF(progress="yes")
    with pytest.raises(ValueError, match="reg must be > 0"):        # values: at construction too
        EASE(reg=-1.0)
    assert EASE(reg=100).reg == 100 and BPRMF(learning_rate=np.float32(0.01)).learning_rate > 0


def test_unknown_hyper_parameters_list_the_valid_names():
    with pytest.raises(TypeError, match=r"EASE: unknown parameter\(s\) \['regg'\]; valid: \['max_items', 'reg'\]"):
        EASE(regg=1.0)
    with pytest.raises(TypeError, match="valid: .*'embedding_size'.*'loss'"):
        BPRMF(embeding_size=8)


def test_recommend_accepts_any_integer_array_like(ease):
    ref = ease.recommend(np.array([3, 4]), k=5)
    for users in ([3, 4], (3, 4), np.array([3, 4], dtype=np.int32), np.array([3, 4], dtype=np.uint8)):
        np.testing.assert_array_equal(ease.recommend(users, k=5)[0], ref[0])
    np.testing.assert_array_equal(ease.recommend(3, k=np.int64(5))[0], ref[0][:1])
    for empty in ([], (), np.array([], dtype=float), np.zeros(0, dtype=np.int64)):
        items, scores = ease.recommend(empty, k=5)
        assert items.shape == scores.shape == (0, 5) and items.dtype == np.int64 and scores.dtype == np.float32
    for bad in ([1.7], [1.0], np.array([2.0]), ["a"], [[1, 2]], [True]):
        with pytest.raises(TypeError, match="user indices"):
            ease.recommend(bad, k=5)


def test_evaluate_refuses_float_users_and_k(ease, planted):
    from recsys_lab.eval import evaluate
    with pytest.raises(TypeError, match=r"integers, got float64 values \[1.7\]"):
        evaluate(ease, planted[1], users=[1.7])             # was: silently user 1
    for bad in (2.7, "10", True, None):
        with pytest.raises(TypeError, match="k must be a positive integer"):
            evaluate(ease, planted[1], k=bad)
    with pytest.raises(TypeError, match="k must be a positive integer"):
        evaluate(ease, planted[1], k=[10, 2.5])
    one = evaluate(ease, planted[1], users=[1], k=5)
    assert one["n_users"].iloc[0] == 1


def test_other_entry_points_validate_alike(ease, planted):
    from recsys_lab.accel import Batched
    from recsys_lab.simulation import simulate
    with pytest.raises(TypeError, match="k must be a positive integer, got 2.7"):
        simulate(ease, planted[1], k=2.7)
    with pytest.raises(TypeError, match="k must be a positive integer, got '5'"):
        Batched(ease).serve([0.0, 1.0], [0, 1], k="5")
    with pytest.raises(TypeError, match="user indices"):
        Batched(ease).serve([0.0], [0.5])


def test_padding_is_explicit_and_never_a_seen_item():
    """A user who has seen all but 2 of 6 items asks for 4: two items, then (-1, -inf)."""
    train = Interactions([0, 0, 0, 0, 1], [0, 1, 2, 3, 0], np.arange(2), np.arange(6))
    items, scores = EASE(reg=1.0).fit(train).recommend([0], k=4)
    assert sorted(items[0, :2]) == [4, 5] and items[0, 2:].tolist() == [-1, -1]
    assert np.isfinite(scores[0, :2]).all() and np.isneginf(scores[0, 2:]).all()
    items, _ = EASE(reg=1.0).fit(train).recommend([0], k=4, filter_seen=False)
    assert (items >= 0).all()                                # nothing masked: no padding


# ---- config: one recursive from_config --------------------------------------------------------
def test_from_config_rebuilds_nested_chains(planted):
    from recsys_lab.accel import ANNIndex, Cached, Distilled, Quantized
    chain = Cached(ANNIndex(Quantized(PureSVD(embedding_size=5), dtype="fp16"), backend="flat"), capacity=7)
    cfg = {"class": "Cached", **chain.get_config()}
    twin = Recommender.from_config(cfg)
    assert type(twin.model.model.model) is PureSVD and twin.model.model.dtype == "fp16"
    assert twin.get_config() == chain.get_config()
    assert Cached.from_config(chain.get_config()).capacity == 7     # "class" defaults to cls
    student = Distilled(Cached(EASE(reg=3.0)), epochs=1, embedding_size=4, device="cpu")
    assert Recommender.from_config({"class": "Distilled", **student.get_config()}).teacher.model.reg == 3.0
    with pytest.raises(ValueError, match="unknown model class 'Nope'"):
        Recommender.from_config({"class": "Nope"})
    with pytest.raises(ValueError, match="unknown model class"):
        PureSVD.from_config({"class": "EASE"})               # not a PureSVD


def test_saved_chains_come_back_whole(planted, tmp_path):
    from recsys_lab.accel import Cached, Distilled
    teacher = Cached(EASE(reg=10.0), capacity=3)
    student = Distilled(teacher, epochs=2, embedding_size=4, batch_size=128, device="cpu").fit(planted[0])
    back = Recommender.load(student.save(tmp_path / "d.npz"))
    assert type(back.teacher) is Cached and type(back.teacher.model) is EASE
    assert back.teacher.is_fitted() and back.get_config() == student.get_config()
    np.testing.assert_array_equal(back.teacher.recommend([1, 2], k=4)[0], teacher.recommend([1, 2], k=4)[0])
    np.testing.assert_array_equal(back.recommend([1, 2], k=4)[0], student.recommend([1, 2], k=4)[0])


# ---- update / extend: the base default and the models that refresh per-user state -------------
def test_seen_set_appends_lazily_and_equals_eager_inserts():
    m = sp.random(5, 9, density=0.3, format="csr", random_state=1, dtype=np.float32)
    m.data[:] = 1.0
    m.sort_indices()
    seen, ref = SeenSet(m), m
    for u, i in [(0, 3), (2, 8), (0, 3), (4, 0), (2, 1)]:
        seen.add(u, i)
        ref = csr_insert(ref, u, i)
        assert seen.contains(u, i) and seen.count(u) == ref[u].nnz
        assert sorted(seen.items(u)) == sorted(ref[u].indices)
    assert seen.add(0, 3) is False                           # already seen: nothing changes
    np.testing.assert_array_equal(seen.csr.toarray(), ref.toarray())
    assert seen.csr.has_sorted_indices


def test_update_refreshes_models_with_per_user_state(planted):
    train = planted[0]
    i2v = Item2Vec(embedding_size=8, epochs=2, device="cpu").fit(train)
    new = int(np.setdiff1d(np.arange(train.n_items), i2v.seen_set_.items(3))[0])
    i2v.update(3, new)
    V = i2v.item_vectors()
    np.testing.assert_allclose(i2v.user_vectors([3])[0], V[i2v.seen_set_.items(3)].mean(0), rtol=1e-5, atol=1e-6)
    base = BPRMF(embedding_size=8, epochs=2, device="cpu").fit(train)
    pooled = AttentionPooling(base=base, tau=2.0).fit(train)
    pooled.update(5, new)
    u, V = base.user_vectors([5])[0], base.item_vectors()[sorted(pooled.seen_set_.items(5))]
    e = V @ u / 2.0                                          # softmax over the grown history
    alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    np.testing.assert_allclose(pooled.user_vectors([5])[0], alpha @ V, rtol=1e-5, atol=1e-6)
    assert new in pooled.explain(5)[0]


def test_every_model_declares_what_it_can_do():
    from recsys_lab.accel import ANNIndex, Cached, Compiled, Quantized
    from recsys_lab.models import EmbeddingModel, MultiVectorModel, TorchModel
    from recsys_lab.models.sequential import MultiSegmentLateInteraction, SASRec, TwoTower
    assert PureSVD().supports(EmbeddingModel) and not EASE().supports(EmbeddingModel)
    assert BPRMF().supports(EmbeddingModel) and BPRMF().supports(TorchModel)
    assert SASRec().supports(EmbeddingModel) and not TwoTower().supports(EmbeddingModel)
    assert TwoTower().supports(MultiVectorModel) and MultiSegmentLateInteraction().supports(MultiVectorModel)
    assert Cached(PureSVD()).supports(EmbeddingModel) and not Cached(EASE()).supports(EmbeddingModel)
    assert Quantized(BPRMF()).supports(EmbeddingModel) and not Cached(BPRMF()).supports(TorchModel)
    for wrapper in (ANNIndex, Cached, Compiled, Quantized):
        assert wrapper.wraps == "model" and wrapper.components == ("model",)
    with pytest.raises(TypeError, match="torch model"):
        Compiled(EASE())                                     # checked at construction, unfitted
    with pytest.raises(TypeError, match="Can't instantiate abstract class"):
        Recommender()
