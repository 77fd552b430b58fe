"""Hard-negative mining (models/sampling.py) through the declared WindowScorer capability:
EASE, the two-tower and SASRec score a history window as they serve it; the miner takes the
package top-k (ties to the lower index) with the window and target masked."""
from __future__ import annotations

import numpy as np
import pytest

from recsys_lab.models import EASE, Popularity, SASRec
from recsys_lab.models.sampling import HardNegativeMiner
from recsys_lab.models.sequential import CrossEncoderRanker
from recsys_lab.models.sequential.data import flat_histories, last_window, window_histories
from tests.test_late_interaction import TINY, planted, random_events, two_tower  # noqa: F401 (fixtures)


def test_hard_negatives_mined_from_ease(planted):
    """Mined negatives lie in EASE's top-k of the window's multi-hot x B (numpy), never the
    target or a history item; the cross-encoder draws them through the miner; a model that
    does not declare WindowScorer is refused, naming its type."""
    train = planted[0]
    ease = EASE(reg=10.0).fit(train)
    miner = HardNegativeMiner(ease, top=5)
    rng = np.random.default_rng(0)
    L = TINY["max_len"]
    tokens = np.zeros((3, L), dtype=np.int64)
    hist = [np.array([0, 1, 2]), np.array([7, 8]), np.array([20, 21, 22, 23])]
    for r, h in enumerate(hist):
        tokens[r, L - len(h):] = h + 1                                     # 0 = pad
    target = np.array([3, 9, 24])
    got = miner.sample(tokens, target, 6, rng)
    for r, h in enumerate(hist):
        x = np.zeros(train.n_items, np.float32)
        x[h] = 1
        s = x @ ease.B_
        s[h], s[target[r]] = -np.inf, -np.inf
        top5 = set(np.argsort(-s, kind="stable")[:5])
        assert set(got[r]) <= top5 and target[r] not in got[r] and not set(got[r]) & set(h)
    ce = CrossEncoderRanker(epochs=1, n_negatives=4, hard_fraction=0.5, **TINY).fit(train)
    ce.mine_negatives_from(ease, top=5)
    start, t, tgt = ce.examples(np.random.default_rng(1))
    _, cand = ce.make_batch(start[:16], t[:16], tgt[:16], np.random.default_rng(2))
    tok = last_window(ce.seq_items_, start[:16], t[:16], ce.max_len)
    top = miner.candidates(tok, tgt[:16])[0]
    assert all(set(c[-2:].tolist()) <= set(row) for c, row in zip(cand.numpy(), top))  # 2 mined
    with pytest.raises(TypeError, match="Popularity"):
        CrossEncoderRanker(**TINY).mine_negatives_from(Popularity().fit(train))


def test_miner_ties_go_to_the_lower_index_and_masked_items_never_come_back():
    """Planted exact ties: a first stage scoring every item 0 except one; the package top-k
    keeps the lowest indices. With fewer unmasked items than ``top``, only those are drawn."""
    data = random_events(n_users=4, n_items=12, lengths=(3, 4, 5, 6))
    ease = EASE(reg=1.0).fit(data)
    ease.B_ = np.zeros_like(ease.B_)
    ease.B_[:, 9] = 1.0                                                    # item 9 best, rest tied
    tokens = np.array([[0, 0, 3, 5], [0, 1, 2, 12]])                       # items {2, 4} / {0, 1, 11}
    items, n_ok = HardNegativeMiner(ease, top=4).candidates(tokens, np.array([6, 9]))
    np.testing.assert_array_equal(items, [[9, 0, 1, 3], [2, 3, 4, 5]])
    np.testing.assert_array_equal(n_ok, [4, 4])
    full = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])                     # items 0..9 in the window
    drawn = HardNegativeMiner(ease, top=5).sample(full, np.array([10]), 50, np.random.default_rng(0))
    assert set(drawn[0].tolist()) == {11}                                  # the only unmasked item


def test_score_windows_is_the_serving_score(planted, two_tower):
    """A window holding a user's whole history scores as ``score`` does (EASE: multi-hot x B;
    the two-tower and SASRec: the same encoder pass), so the miner sees the served first stage."""
    train = planted[0]
    users = np.arange(12)
    items, ptr = flat_histories(train.histories()[:12])                   # <= 7 items each
    win = last_window(items, ptr[:-1], np.diff(ptr), TINY["max_len"])
    np.testing.assert_array_equal(np.concatenate(window_histories(win)), np.concatenate([items, ptr]))
    for model in (two_tower, SASRec(epochs=1, **TINY).fit(train), EASE(reg=10.0).fit(train)):
        np.testing.assert_allclose(model.score_windows(win), model.score(users), rtol=1e-5, atol=1e-5)
