"""The shopping-guide replay: fresh lists after every event, counts that add up, next-item hits."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from recsys_lab.accel import Cached
from recsys_lab.data import Interactions, synthetic_shop
from recsys_lab.models import EASE, Popularity
from recsys_lab.models.base import Recommender
from recsys_lab.simulation import next_items, shopping_stream, simulate

TIMING = ["arrival_ms", "update_ms", "recommend_ms", "service_ms", "wait_ms", "response_ms", "violation"]


@pytest.fixture(scope="module")
def shop():
    data = synthetic_shop(n_users=80, n_items=60, n_events=2500, seed=4, session_length=3.0)
    train, stream = shopping_stream(data, cut=0.85, max_events=300)
    return train, stream, EASE(reg=20.0).fit(train)


def _reference_top(seen: np.ndarray, B: np.ndarray, u: int, k: int) -> list:
    """EASE from scratch: x_u B with the seen items masked, best first, ties to the lower index."""
    s = seen[u] @ B
    s[seen[u] > 0] = -np.inf
    return sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]


def test_no_stale_list_after_an_event(shop):
    train, stream, ease = shop
    df, _ = simulate(Cached(ease, capacity=16), stream, k=5, refresh="event", keep_lists=True)
    seen = train.to_csr().toarray().astype(np.float64)
    B = ease.B_.astype(np.float64)
    for t, (u, i) in enumerate(zip(stream.user, stream.item)):
        seen[u, i] = 1.0                           # the event is folded in before the answer
        assert list(df["shown"][t]) == _reference_top(seen, B, int(u), 5), f"stale list at event {t}"
    assert (df["cache_hit"] == 0).all(), "every answer after an update must be recomputed"


def test_session_refresh_folds_a_session_in_when_the_next_one_starts(shop):
    train, stream, ease = shop
    df, summary = simulate(Cached(ease, capacity=1000), stream, k=5, refresh="session", keep_lists=True)
    seen = train.to_csr().toarray().astype(np.float64)
    B = ease.B_.astype(np.float64)
    pending, open_session = {}, {}
    for t, (u, i, s) in enumerate(zip(stream.user.tolist(), stream.item.tolist(), stream.session.tolist())):
        if open_session.get(u, s) != s:
            for j in pending.pop(u):
                seen[u, j] = 1.0
        open_session[u] = s
        pending.setdefault(u, []).append(i)
        assert list(df["shown"][t]) == _reference_top(seen, B, u, 5)
    # within a session the list is served from the cache: every repeat request of a session hits
    first = ~df.duplicated(["user", "session"])
    assert (df.loc[~first, "cache_hit"] == 1).all()
    assert summary["cache_hit_rate"] == pytest.approx(df["cache_hit"].mean())


def test_counts_add_up_and_the_queue_is_lindley(shop):
    train, stream, ease = shop
    df, s = simulate(Cached(ease, capacity=50), stream, k=10, budget_ms=0.2, rate=2000.0, seed=3)
    assert s["events"] == len(df) == len(stream)
    assert s["violations"] == int((df["response_ms"] > 0.2).sum())
    assert s["with_next"] == len(stream) - len(np.unique(stream.user))
    assert s["next_item_hit"] == pytest.approx(df.loc[df.next_item >= 0, "next_hit"].mean())
    assert ((df["next_rank"] > 0) == df["next_hit"]).all() and (df.loc[df.next_item < 0, "next_rank"] == 0).all()
    np.testing.assert_allclose(df["service_ms"], df["update_ms"] + df["recommend_ms"])
    finish, ref = -np.inf, []
    for a, sv in zip(df["arrival_ms"], df["service_ms"]):     # one FIFO server
        finish = max(a, finish) + sv
        ref.append(finish - a)
    np.testing.assert_allclose(df["response_ms"], ref, rtol=1e-9, atol=1e-9)
    assert (df["wait_ms"] >= -1e-9).all()
    gaps = np.diff(df["arrival_ms"].to_numpy())
    assert (gaps >= 0).all() and gaps.mean() == pytest.approx(1e3 / 2000.0, rel=0.25)


def test_next_items_against_a_loop():
    rng = np.random.default_rng(0)
    user, item, sess = rng.integers(0, 7, 200), rng.integers(0, 30, 200), rng.integers(0, 3, 200)
    nxt, same = next_items(user, item, sess)
    for t in range(200):
        later = [s for s in range(t + 1, 200) if user[s] == user[t]]
        assert nxt[t] == (item[later[0]] if later else -1)
        assert same[t] == (bool(later) and sess[later[0]] == sess[t])


def test_next_item_hit_on_a_hand_case():
    # train: popularity 0 > 1 > 2 > 3 > 4 > 5 (item j bought by 6 - j users); users 6, 7 are new
    rows = [(u, j) for j in range(6) for u in range(6 - j)]
    ids_u, ids_i = np.arange(8), np.arange(8)
    train = Interactions([r[0] for r in rows], [r[1] for r in rows], ids_u, ids_i,
                         timestamp=np.zeros(len(rows), dtype=np.int64))
    # stream: user 6 buys 0, then 7 buys 2, then 6 buys 1, then 7 buys 6, then 6 buys 5
    stream = Interactions([6, 7, 6, 7, 6], [0, 2, 1, 6, 5], ids_u, ids_i,
                          timestamp=np.arange(1, 6), session=np.array([0, 1, 0, 2, 3]))
    df, s = simulate(Popularity().fit(train), stream, k=2, refresh="event", keep_lists=True)
    # user 6 after buying 0 sees [1, 2]; next is 1 -> hit at rank 1
    # user 7 after buying 2 sees [0, 1]; next is 6 -> miss
    # user 6 after buying 0, 1 sees [2, 3]; next is 5 -> miss (5 is the least popular)
    # the last events of users 7 and 6 have no next item
    assert [list(x) for x in df["shown"]] == [[1, 2], [0, 1], [2, 3], [0, 1], [2, 3]]
    assert df["next_item"].tolist() == [1, 6, 5, -1, -1]
    assert df["next_rank"].tolist() == [1, 0, 0, 0, 0]
    assert df["next_same_session"].tolist() == [True, False, False, False, False]
    assert s["with_next"] == 3 and s["next_item_hit"] == pytest.approx(1 / 3)
    assert np.isnan(s["cache_hit_rate"])


def test_deterministic_with_a_seed_and_model_left_untouched(shop):
    train, stream, ease = shop
    before = ease.seen_.copy()
    a, _ = simulate(Cached(ease, capacity=20), stream, rate=500.0, seed=7)
    b, _ = simulate(Cached(ease, capacity=20), stream, rate=500.0, seed=7)
    keep = [c for c in a.columns if c not in TIMING]
    pd.testing.assert_frame_equal(a[keep], b[keep])
    np.testing.assert_array_equal(a["arrival_ms"], b["arrival_ms"])
    assert (ease.seen_ != before).nnz == 0, "copy_model=True must leave the model as it was"
    frozen, s = simulate(ease, stream, refresh="never")
    assert s["update_p50_ms"] == 0.0 and (ease.seen_ != before).nnz == 0


@dataclass(eq=False)
class _Recorder(Recommender):
    """A model with its own ``update(user, item, timestamp)`` (like the sequential models)."""

    def _fit(self, train):
        self.calls = []

    def _score(self, users):
        return np.zeros((len(users), self.n_items_), dtype=np.float32)

    def update(self, user, item, timestamp=None):
        self.calls.append((user, item, timestamp))


def test_a_model_update_method_is_used(shop):
    train, stream, _ = shop
    model = _Recorder().fit(train)
    simulate(model, stream, copy_model=False)
    assert model.calls == list(zip(stream.user.tolist(), stream.item.tolist(), stream.timestamp.tolist()))


def test_bad_input_is_named(shop):
    train, stream, ease = shop
    with pytest.raises(ValueError, match="refresh"):
        simulate(ease, stream, refresh="sometimes")
    with pytest.raises(ValueError, match="rate"):
        simulate(ease, stream, rate=0)
    with pytest.raises(ValueError, match="larger than the catalog"):
        simulate(ease, stream, k=stream.n_items + 1)
    with pytest.raises(ValueError, match="id space"):
        simulate(ease, synthetic_shop(n_users=5, n_items=5, n_events=20))
    with pytest.raises(ValueError, match="time order"):
        simulate(ease, stream.subset(np.arange(len(stream))[::-1]))
    with pytest.raises(RuntimeError, match="not fitted"):
        simulate(EASE(), stream)


def test_fifo_response_on_a_hand_case():
    from recsys_lab.simulation import fifo_response, poisson_schedule
    # the first request keeps the server busy until 3 ms, so the next two queue behind it
    np.testing.assert_allclose(fifo_response([0, 1, 2, 10], [3, 1, 1, 1]), [3, 3, 3, 1])
    np.testing.assert_array_equal(poisson_schedule(4, None), np.zeros(4))
    with pytest.raises(ValueError, match="non-decreasing"):
        fifo_response([2, 1], [1, 1])
