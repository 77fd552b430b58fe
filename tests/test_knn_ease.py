"""UserKNN, ItemKNN and EASE: the contract, plus each formula against a naive reference."""
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.metrics.pairwise import cosine_similarity

from recsys_lab.data import Interactions, filter_rating, k_core, load_dataset, random_split
from recsys_lab.data.loaders import find_movielens
from recsys_lab.eval import evaluate
from recsys_lab.eval.metrics import ranking_metrics
from recsys_lab.eval.pareto import pareto_front
from recsys_lab.eval.rating import mae, rating_metrics, rmse
from recsys_lab.models import EASE, ItemKNN, Recommender, UserKNN
from recsys_lab.similarity import pairwise
from recsys_lab.ties import snap

from .contract import RecommenderContract


# On planted_blocks the held-out item is uniform over the user's 6 unseen block items, so even a
# perfect block model expects Hit@5 = 5/6 (seeds 0..3 give 0.79-0.92); 0.9 would test luck.
BLOCK_HIT = 0.75


class TestItemKNNContract(RecommenderContract):
    planted_min_hit = BLOCK_HIT

    def make_model(self):
        return ItemKNN(k=20)


class TestUserKNNContract(RecommenderContract):
    planted_min_hit = BLOCK_HIT

    def make_model(self):
        return UserKNN(similarity="jaccard", k=30, shrink=2.0)


class TestEASEContract(RecommenderContract):
    planted_min_hit = BLOCK_HIT

    def make_model(self):
        return EASE(reg=10.0)


def ratings(n_users=30, n_items=20, density=0.35, seed=0):
    """Random 1..5 ratings; user 0 rates everything 4 (constant), item 19 is never rated."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[:, -1] = False
    R = np.where(mask, rng.integers(1, 6, (n_users, n_items)), 0).astype(float)
    R[0] = np.where(mask[0], 4.0, 0.0)
    u, i = np.nonzero(R)
    data = Interactions(u, i, np.arange(n_users), np.arange(n_items), rating=R[u, i], name="ratings")
    return data, R


def naive_topk_rows(S, k):
    """Zero the diagonal and keep each row's k largest positive entries, compared on the tie grid
    (recsys_lab.ties: float noise is no difference), ties to the lower index."""
    S = snap(S)
    np.fill_diagonal(S, 0)
    out = np.zeros_like(S)
    for r in range(len(S)):
        nz = np.flatnonzero(S[r] > 0)
        keep = nz[np.argsort(-S[r, nz], kind="stable")[:k]]
        out[r, keep] = S[r, keep]
    return out


def test_itemknn_scores_are_sums_of_neighbour_similarities():
    data, R = ratings()
    X = (R != 0).astype(float)
    W = naive_topk_rows(cosine_similarity(X.T), 5)                       # item x item, top 5
    model = ItemKNN(k=5, use_ratings=False).fit(data)
    users = np.arange(data.n_users)
    want = np.array([[sum(W[j, i] for j in np.flatnonzero(X[u])) for i in range(data.n_items)] for u in users])
    np.testing.assert_allclose(model.score(users), want, atol=1e-5)


def test_userknn_scores_are_sums_over_neighbours():
    data, R = ratings(seed=1)
    X = (R != 0).astype(float)
    W = naive_topk_rows(cosine_similarity(X), 4)                         # user x user, top 4
    model = UserKNN(k=4, use_ratings=False).fit(data)
    want = np.array([[sum(W[u, v] * X[v, i] for v in range(len(X))) for i in range(X.shape[1])]
                     for u in range(len(X))])
    np.testing.assert_allclose(model.score(np.arange(len(X))), want, atol=1e-5)


def naive_predict(R, W, by):
    """Loop form of the mean-centred weighted average (article step 4)."""
    obs = R != 0
    glob = R[obs].mean()
    if by == "user":
        mean = np.array([R[u, obs[u]].mean() if obs[u].any() else glob for u in range(len(R))])
    else:
        mean = np.array([R[obs[:, i], i].mean() if obs[:, i].any() else glob for i in range(R.shape[1])])
    out = np.zeros(R.shape)
    for u in range(R.shape[0]):
        for i in range(R.shape[1]):
            num = den = 0.0
            if by == "user":
                for v in np.flatnonzero(W[u]):
                    if obs[v, i]:
                        num += W[u, v] * (R[v, i] - mean[v])
                        den += abs(W[u, v])
                base = mean[u]
            else:
                for j in np.flatnonzero(W[i]):
                    if obs[u, j]:
                        num += W[i, j] * (R[u, j] - mean[j])
                        den += abs(W[i, j])
                base = mean[i]
            out[u, i] = np.clip(base + (num / den if den else 0.0), R[obs].min(), R[obs].max())
    return out


@pytest.mark.parametrize("model_cls, by", [(UserKNN, "user"), (ItemKNN, "item")])
@pytest.mark.parametrize("metric", ["pearson", "cosine", "adjusted_cosine"])
def test_predict_is_the_mean_centred_weighted_average(model_cls, by, metric):
    data, R = ratings(seed=2)
    model = model_cls(similarity=metric, k=6, shrink=1.0).fit(data)
    rows = R if by == "user" else R.T
    W = naive_topk_rows(pairwise(rows, metric, shrink=1.0), 6)
    np.testing.assert_allclose(model.sim_.toarray(), W, atol=1e-6)        # the neighbours it uses
    uu, ii = np.meshgrid(np.arange(R.shape[0]), np.arange(R.shape[1]), indexing="ij")
    got = model.predict(uu.ravel(), ii.ravel()).reshape(R.shape)
    np.testing.assert_allclose(got, naive_predict(R, W, by), atol=1e-5)
    assert np.isfinite(got).all()


def test_predict_survives_save_load(tmp_path):
    data, _ = ratings(seed=3)
    model = ItemKNN(similarity="pearson", k=5).fit(data)
    loaded = Recommender.load(model.save(tmp_path / "m.npz"))
    u, i = np.arange(10), np.arange(10)
    np.testing.assert_array_equal(loaded.predict(u, i), model.predict(u, i))


def test_rmse_mae_match_sklearn_and_rating_metrics():
    rng = np.random.default_rng(0)
    y, p = rng.uniform(1, 5, 100), rng.uniform(1, 5, 100)
    assert rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)), abs=1e-12)
    assert mae(y, p) == pytest.approx(mean_absolute_error(y, p), abs=1e-12)
    data, _ = ratings(seed=4)
    model = UserKNN(similarity="pearson", k=5).fit(data)
    got = rating_metrics(model, data)
    pred = model.predict(data.user.astype(np.int64), data.item.astype(np.int64))
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(data.rating, pred)), abs=1e-6)
    assert got["mae"] == pytest.approx(mean_absolute_error(data.rating, pred), abs=1e-6)
    with pytest.raises(ValueError, match="equal-length"):
        rmse([1.0, 2.0], [1.0])


def test_ease_equals_per_item_constrained_ridge():
    """Steck's closed form equals, column by column, ridge regression of item j on the others."""
    data, R = ratings(n_users=40, n_items=15, seed=5)
    X = (R != 0).astype(float)
    reg = 3.0
    model = EASE(reg=reg).fit(data)
    B = np.zeros((X.shape[1],) * 2)
    for j in range(X.shape[1]):
        o = np.delete(np.arange(X.shape[1]), j)
        B[o, j] = np.linalg.solve(X[:, o].T @ X[:, o] + reg * np.eye(len(o)), X[:, o].T @ X[:, j])
    np.testing.assert_allclose(model.B_, B, atol=1e-5)
    np.testing.assert_allclose(model.score(np.arange(5)), X[:5] @ B, atol=1e-5)


def test_bad_configs_fail_clearly():
    data, _ = ratings()
    implicit = Interactions(data.user, data.item, data.user_ids, data.item_ids)
    with pytest.raises(ValueError, match="unknown similarity"):
        ItemKNN(similarity="cos")
    with pytest.raises(ValueError, match="k \\(neighbours\\)"):
        UserKNN(k=0)
    with pytest.raises(ValueError, match="undefined on 0/1 data"):
        ItemKNN(similarity="pearson").fit(implicit)
    with pytest.raises(RuntimeError, match="without ratings"):
        ItemKNN().fit(implicit).predict([0], [0])
    with pytest.raises(IndexError, match="unknown item"):
        ItemKNN().fit(data).predict([0], [data.n_items])
    with pytest.raises(ValueError, match="reg must be > 0"):
        EASE(reg=0)
    with pytest.raises(ValueError, match="max_items"):
        EASE(max_items=5).fit(data)


def test_pareto_front_on_a_hand_made_frame():
    df = pd.DataFrame({"p99_ms": [1.0, 2.0, 2.0, 3.0, 0.5, 4.0, 2.0, np.nan],
                       "ndcg":   [0.20, 0.30, 0.25, 0.30, 0.10, 0.40, 0.30, 0.9]},
                      index=list("abcdefgh"))
    # e fastest; a better than e; b (= g, a tie) beats c and d; f most accurate; h has NaN
    front = pareto_front(df, "p99_ms", "ndcg")
    assert front[front].index.tolist() == ["a", "b", "e", "f", "g"]
    slowest_worst = pareto_front(df, "p99_ms", "ndcg", minimize_x=False, maximize_y=False)
    # reversed senses: c beats b and g (same x, lower y); a, c, d, e, f trade off
    assert slowest_worst[slowest_worst].index.tolist() == ["a", "c", "d", "e", "f"]
    with pytest.raises(KeyError, match="latency"):
        pareto_front(df, "latency", "ndcg")


# ---- real data (MovieLens 100K, skipped when absent) ------------------------------------------
@pytest.fixture(scope="module")
def ml100k():
    path = find_movielens("ml-100k")
    if path is None:
        pytest.skip("MovieLens 100K not found (set RECSYS_LAB_ML100K)")
    return load_dataset("ml-100k", path=path)


def test_itemknn_matches_implicit_cosine_recommender_on_ml100k(ml100k):
    """Same protocol split, same K: our ItemKNN and implicit's CosineRecommender rank alike."""
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    train, valid, test = random_split(k_core(filter_rating(ml100k, 3), 10, 10), (0.8, 0.1, 0.1), seed=2020)
    ours = evaluate(ItemKNN(k=100).fit(train), valid, k=10)["ndcg"].iloc[0]
    X = train.to_csr()
    with warnings.catch_warnings():                                # implicit warns about its own COO
        warnings.simplefilter("ignore")
        rec = implicit_nn.CosineRecommender(K=101)                # implicit counts the item itself
        rec.fit(X, show_progress=False)
    users = np.flatnonzero(np.diff(valid.to_csr().indptr))
    ids, _ = rec.recommend(users, X[users], N=10, filter_already_liked_items=True)
    top = np.full((train.n_users, 10), -1)
    top[users] = ids
    theirs = ranking_metrics(top, valid.to_csr(), 10)["ndcg"]
    assert ours == pytest.approx(theirs, abs=0.005)                # ties at the k-th neighbour differ
    assert ours > 0.15


def test_knn_rating_prediction_beats_mean_baselines_on_ml100k(ml100k):
    train, _, test = random_split(ml100k, (0.8, 0.1, 0.1), seed=2020)
    item_mean = np.bincount(train.item, train.rating, ml100k.n_items) / np.maximum(
        np.bincount(train.item, minlength=ml100k.n_items), 1)
    fallback = np.where(np.bincount(train.item, minlength=ml100k.n_items) > 0, item_mean, train.rating.mean())
    baseline = rmse(test.rating, fallback[test.item])
    for model in (ItemKNN(similarity="adjusted_cosine", k=50, shrink=10.0),
                  UserKNN(similarity="pearson", k=50, shrink=10.0)):
        got = rating_metrics(model.fit(train), test)
        assert np.isfinite(got["rmse"]) and got["rmse"] < baseline - 0.02, (str(model), got, baseline)
