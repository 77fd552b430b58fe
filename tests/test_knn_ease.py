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


def naive_scores(X, W, by, neighbourhood):
    """Loop form of the top-N scores; W[t] holds row t's k neighbours (naive_topk_rows)."""
    n_users, n_items = X.shape
    out = np.zeros(X.shape)
    for u in range(n_users):
        for i in range(n_items):
            if by == "item":     # target: j in N_k(i); source: i in N_k(j)
                out[u, i] = sum(W[i, j] if neighbourhood == "target" else W[j, i]
                                for j in np.flatnonzero(X[u]))
            else:                # target: v in N_k(u); source: u in N_k(v)
                out[u, i] = sum((W[u, v] if neighbourhood == "target" else W[v, u]) * X[v, i]
                                for v in range(n_users))
    return out


@pytest.mark.parametrize("neighbourhood", ["target", "source"])
def test_itemknn_scores_are_sums_of_neighbour_similarities(neighbourhood):
    data, R = ratings()
    X = (R != 0).astype(float)
    W = naive_topk_rows(cosine_similarity(X.T), 5)                       # item x item, top 5
    model = ItemKNN(k=5, use_ratings=False, neighbourhood=neighbourhood).fit(data)
    want = naive_scores(X, W, "item", neighbourhood)
    np.testing.assert_allclose(model.score(np.arange(data.n_users)), want, atol=1e-5)
    assert np.abs(want - naive_scores(X, W, "item", "target" if neighbourhood == "source" else "source")).max() > 0.1


@pytest.mark.parametrize("neighbourhood", ["target", "source"])
def test_userknn_scores_are_sums_over_neighbours(neighbourhood):
    data, R = ratings(seed=1)
    X = (R != 0).astype(float)
    W = naive_topk_rows(cosine_similarity(X), 4)                         # user x user, top 4
    model = UserKNN(k=4, use_ratings=False, neighbourhood=neighbourhood).fit(data)
    np.testing.assert_allclose(model.score(np.arange(len(X))), naive_scores(X, W, "user", neighbourhood),
                               atol=1e-5)


def planted_items():
    """Three items over 17 users with hand-made cosines: a = users {0..3}, b = {1..16}, c = {5..13}.
    cos(a, b) = 3 / sqrt(4 * 16) = 3/8, cos(b, c) = 9 / sqrt(16 * 9) = 3/4, cos(a, c) = 0, so with
    k = 1: N(a) = {b}, N(b) = {c}, N(c) = {b}; b is a's nearest item but a is not b's."""
    sets = {0: range(0, 4), 1: range(1, 17), 2: range(5, 14)}
    users = np.concatenate([list(s) for s in sets.values()])
    items = np.concatenate([[i] * len(s) for i, s in sets.items()])
    return users, items


def test_itemknn_target_and_source_on_a_planted_example():
    users, items = planted_items()
    data = Interactions(users, items, np.arange(17), np.arange(3))
    # user 0 holds {a}, user 4 holds {b}
    target = ItemKNN(k=1).fit(data).score([0, 4])        # the default
    # target: b scores 0 for user 0 (a is not in N(b) = {c}); user 4's b is in N(a) and N(c)
    np.testing.assert_array_equal(target, [[0, 0, 0], [3 / 8, 0, 3 / 4]])
    # source: user 0's a votes for N(a) = {b}; user 4's b votes for N(b) = {c} only
    source = ItemKNN(k=1, neighbourhood="source").fit(data).score([0, 4])
    np.testing.assert_array_equal(source, [[0, 3 / 8, 0], [0, 0, 3 / 4]])
    # with every neighbour kept the neighbourhoods are mutual and the two forms agree
    np.testing.assert_array_equal(ItemKNN(k=2).fit(data).score(np.arange(17)),
                                  ItemKNN(k=2, neighbourhood="source").fit(data).score(np.arange(17)))


def test_userknn_target_and_source_on_a_planted_example():
    users, items = planted_items()                        # transposed: a, b, c are now users 0, 1, 2
    data = Interactions(items, users, np.arange(3), np.arange(17))
    x = data.to_csr().toarray()
    a, b, c = x
    # target: u scores from N(u): a <- b (3/8), b <- c (3/4), c <- b (3/4)
    np.testing.assert_array_equal(UserKNN(k=1).fit(data).score([0, 1, 2]), [3 / 8 * b, 3 / 4 * c, 3 / 4 * b])
    # source: v passes its items to N(v): nobody lists a; a and c list b; b lists c
    np.testing.assert_array_equal(UserKNN(k=1, neighbourhood="source").fit(data).score([0, 1, 2]),
                                  [0 * a, 3 / 8 * a + 3 / 4 * c, 3 / 4 * b])


def recbole_item_weights(X, k, shrink):
    """RecBole's ``ComputeSimilarity.compute_items_similarity`` logic as a plain loop: for each target
    column i, w = X^T x_i with w_i = 0, divided by ||x_i|| ||x_j|| + shrink + 1e-6; its k largest
    non-zero weights go to column i of W; ItemKNN's scores are then X @ W."""
    norms = np.sqrt((X ** 2).sum(0))
    W = np.zeros((X.shape[1],) * 2)
    for i in range(X.shape[1]):
        w = X.T @ X[:, i]
        w[i] = 0.0
        w = w / (norms[i] * norms + shrink + 1e-6)
        top = np.argsort(-w, kind="stable")[:k]
        top = top[w[top] != 0]
        W[top, i] = w[top]
    return W


@pytest.mark.parametrize("shrink", [0.0, 5.0])
def test_itemknn_target_recbole_shrink_matches_recbole_logic(shrink):
    rng = np.random.default_rng(7)
    R = np.where(rng.random((30, 20)) < 0.35, rng.uniform(0.5, 5.0, (30, 20)), 0.0)   # no ties
    u, i = np.nonzero(R)
    data = Interactions(u, i, np.arange(30), np.arange(20), rating=R[u, i])
    W = recbole_item_weights(R, 4, shrink)
    model = ItemKNN(k=4, shrink=shrink, shrink_form="recbole", use_ratings=True).fit(data)
    np.testing.assert_allclose(model.sim_.toarray(), W, atol=1e-6)              # RecBole's W
    np.testing.assert_allclose(model.score(np.arange(30)), (R != 0) @ W, atol=1e-5)


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
@pytest.mark.parametrize("neighbourhood", ["target", "source"])
def test_predict_is_the_mean_centred_weighted_average(model_cls, by, metric, neighbourhood):
    data, R = ratings(seed=2)
    model = model_cls(similarity=metric, k=6, shrink=1.0, neighbourhood=neighbourhood).fit(data)
    rows = R if by == "user" else R.T
    W = naive_topk_rows(pairwise(rows, metric, shrink=1.0), 6)           # row t: t's neighbours
    voters = W if neighbourhood == "target" else W.T                     # row t: who votes for t
    stored = voters if by == "user" else voters.T                        # scores: X @ sim_ for items
    np.testing.assert_allclose(model.sim_.toarray(), stored, atol=1e-6)  # the neighbours it uses
    uu, ii = np.meshgrid(np.arange(R.shape[0]), np.arange(R.shape[1]), indexing="ij")
    got = model.predict(uu.ravel(), ii.ravel()).reshape(R.shape)
    np.testing.assert_allclose(got, naive_predict(R, voters, by), atol=1e-5)
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
    with pytest.raises(ValueError, match="unknown neighbourhood 'targets'"):
        ItemKNN(neighbourhood="targets")
    with pytest.raises(ValueError, match="unknown shrink_form 'additive'"):
        UserKNN(shrink_form="additive")
    with pytest.raises(ValueError, match="similarity='pearson' takes shrink_form='koren'"):
        ItemKNN(similarity="pearson", shrink=1.0, shrink_form="recbole")
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
    """Same protocol split, same K, implicit's orientation (each history item votes for its own
    K neighbours, neighbourhood="source"): our ItemKNN and implicit's CosineRecommender rank alike."""
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    train, valid, test = random_split(k_core(filter_rating(ml100k, 3), 10, 10), (0.8, 0.1, 0.1), seed=2020)
    ours = evaluate(ItemKNN(k=100, neighbourhood="source").fit(train), valid, k=10)["ndcg"].iloc[0]
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
