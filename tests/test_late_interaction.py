"""Multi-segment late interaction, two-tower and cross-encoder (issue 6)."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from recsys_lab.data import Interactions
from recsys_lab.eval.latency import limit_threads
from recsys_lab.models.sequential import (CrossEncoderRanker, MultiSegmentLateInteraction, TwoStage,
                                          TwoTower, cost_model, late_interaction, next_item_split)
from recsys_lab.models.sequential.cost_model import layer_flops
from recsys_lab.models.sequential.data import flat_histories, last_window, segment_windows
from recsys_lab.models.sequential.encoder import EncoderConfig, SequenceEncoder
from tests.contract import RecommenderContract, planted_blocks

TINY = dict(embedding_size=16, n_layers=1, n_heads=2, max_len=8, dropout=0.0, learning_rate=1e-2,
            samples_per_user=4, batch_size=64, progress=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread; the counts are restored afterwards."""
    with limit_threads(1):
        yield


def shuffled_planted():
    """planted_blocks with each user's training events in a random order (the planted answer is
    co-occurrence; the original appends noise items last, which a sequential model learns as
    "after 6 items comes a noise item")."""
    train, test = planted_blocks()
    rng = np.random.default_rng(0)
    ts = rng.permutation(len(train))
    return Interactions(train.user, train.item, train.user_ids, train.item_ids, timestamp=ts,
                        name="planted-shuffled"), \
        Interactions(test.user, test.item, test.user_ids, test.item_ids,
                     timestamp=len(train) + np.arange(len(test)), name="planted-test")


def random_events(n_users=6, n_items=30, lengths=(1, 5, 9, 14, 0, 23), seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_users), lengths)
    i = np.concatenate([rng.choice(n_items, n, replace=False) for n in lengths])
    return Interactions(u, i, np.arange(n_users), np.arange(n_items), timestamp=np.arange(len(u)))


# ---- data: split and windows ----------------------------------------------------------------
def test_next_item_split_against_pandas():
    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame({"user": rng.integers(0, 30, n), "item": rng.integers(0, 25, n),
                       "ts": rng.permutation(n)})
    data = Interactions.from_frame(df, timestamp_col="ts")
    train, valid, test = next_item_split(data)
    ref = df.sort_values("ts").drop_duplicates(["user", "item"])          # first purchase only
    for u, g in ref.groupby("user"):
        items = data.item_index(g["item"].to_numpy())
        uu = data.user_index([u])[0]
        if len(g) >= 3:
            assert test.item[test.user == uu].tolist() == [items[-1]]
            assert valid.item[valid.user == uu].tolist() == [items[-2]]
            np.testing.assert_array_equal(train.histories()[uu], items[:-2])
        else:
            np.testing.assert_array_equal(train.histories()[uu], items)
    with pytest.raises(ValueError, match="min_events"):
        next_item_split(data, min_events=2)


def test_windows_against_loops():
    hist = [np.arange(100, 100 + n) for n in (0, 3, 7, 16, 25)]
    items, ptr = flat_histories(hist)
    for S, l in [(1, 8), (2, 4), (3, 5), (4, 2)]:
        for u, h in enumerate(hist):
            for t in range(0, len(h) + 1):
                got = segment_windows(items, ptr[[u]], np.array([t]), S, l)[0]
                ref = np.zeros((S, l), dtype=np.int64)
                if t:
                    k = (t - 1) // l                                      # open chunk
                    for s in range(S):
                        j = k - (S - 1 - s)
                        if j >= 0:
                            chunk = h[j * l:min((j + 1) * l, t)] + 1
                            ref[s, l - len(chunk):] = chunk
                np.testing.assert_array_equal(got, ref)
                lw = last_window(items, ptr[[u]], np.array([t]), l)[0]
                ref = np.zeros(l, np.int64)
                tail = h[max(0, t - l):t] + 1
                ref[l - len(tail):] = tail
                np.testing.assert_array_equal(lw, ref)


# ---- formulas ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["maxsim", "attention"])
def test_late_interaction_against_numpy_loop(kind):
    rng = np.random.default_rng(2)
    v, e = rng.normal(size=(3, 5, 4)), rng.normal(size=(7, 4))
    valid = rng.random((3, 5)) > 0.4
    valid[:, 0] = True
    beta = 0.7
    got = late_interaction(torch.tensor(v), torch.tensor(valid), torch.tensor(e), kind, beta).numpy()
    for b in range(3):
        for i in range(7):
            dots = np.array([v[b, k] @ e[i] for k in range(5) if valid[b, k]])
            if kind == "maxsim":
                ref = dots.max()
            else:
                w = np.exp(beta * dots - (beta * dots).max())
                ref = (w / w.sum()) @ dots
            assert got[b, i] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="interaction"):
        late_interaction(torch.tensor(v), torch.tensor(valid), torch.tensor(e), "sum")


def test_layer_flops_against_torch_flop_counter():
    d, n_layers, T, E = 32, 2, 11, 3
    enc = SequenceEncoder(EncoderConfig(n_items=50, d=d, n_layers=n_layers, n_heads=2, max_len=T,
                                        n_extra=E)).eval()
    tokens = torch.randint(1, 50, (1, T))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        enc(tokens)
    # the CPU counter skips the fused attention kernel: it sees projections + MLP = 24 T d^2
    T_all = T + E
    assert fc.get_total_flops() == n_layers * 24 * T_all * d * d
    q = k = v = torch.randn(1, 2, T_all, d // 2)                # [B, h, T, d/h]
    with FlopCounterMode(display=False) as fc:
        torch.softmax(q @ k.transpose(-1, -2), -1) @ v          # the attention matmuls
    assert fc.get_total_flops() == layer_flops(T_all, d) - 24 * T_all * d * d
    c = cost_model("late", L=48, C=100, d=d, n_layers=n_layers, S=4, m=2)
    assert c["total"] == n_layers * layer_flops(12 + 2, d) + 2 * 100 * 4 * 2 * d
    assert c["full_encode_total"] == 4 * n_layers * layer_flops(14, d) + 2 * 100 * 8 * d
    assert cost_model("cross", 48, 100, d, n_layers)["total"] == \
        100 * cost_model("two_tower", 48, 1, d, n_layers)["encode"] + 2 * 100 * d


@pytest.mark.parametrize("bad, match", [({"n_heads": 3}, "divisible"), ({"dropout": 1.0}, "dropout"),
                                        ({"max_len": 0}, "max_len"), ({"n_layers": 0}, "n_layers")])
def test_encoder_config_names_the_bad_value(bad, match):
    with pytest.raises(ValueError, match=match):
        EncoderConfig(n_items=10, d=16, **bad)
    with pytest.raises(ValueError, match=match):              # checked before any training
        TwoTower(**{**TINY, **bad}).fit(random_events())
    with pytest.raises(ValueError, match="n_extra"):
        EncoderConfig(n_items=10, n_extra=-1)


def test_encoder_init_and_shapes():
    cfg = EncoderConfig(n_items=30, d=16, n_layers=2, n_heads=4, max_len=6, n_extra=2)
    torch.manual_seed(0)
    enc = SequenceEncoder(cfg).eval()
    assert (enc.item.weight[0] == 0).all()                    # padding row
    for w in (enc.item.weight[1:], enc.pos.weight, enc.extra):
        assert 0.015 < float(w.detach().std()) < 0.025                # N(0, 0.02^2)
    tok = torch.tensor([[0, 0, 3, 4, 5, 6]])
    with torch.no_grad():
        assert enc(tok).shape == (1, 6 + 2, 16)               # [B, T + E, d]


@pytest.mark.parametrize("cls", [TwoTower, MultiSegmentLateInteraction, CrossEncoderRanker])
def test_weight_decay_only_on_matrices(cls):
    """nanoGPT's rule: AdamW decays parameters with dim >= 2; biases, LayerNorm gains, the item
    bias and log_beta are not decayed (an AdamW step with zero gradients leaves them unchanged)."""
    model = cls(epochs=1, **{**TINY, "reg": 0.5}).fit(random_events())
    opt = model.configure_optimizer(model.module_)
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.5 for p in g["params"]}
    plain = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    named = dict(model.module_.named_parameters())
    assert decay | plain == {id(p) for p in named.values()} and not decay & plain
    assert {n for n, p in named.items() if id(p) in plain} == {n for n, p in named.items() if p.dim() < 2}
    assert {"bias", "enc.ln_f.weight", "enc.blocks.0.qkv.bias"} <= {n for n, p in named.items() if id(p) in plain}
    before = {n: p.detach().clone() for n, p in named.items()}
    for p in named.values():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in named.items():
        assert torch.equal(p, before[n]) == (p.dim() < 2), n               # only matrices shrink


# ---- the acceptance equalities -----------------------------------------------------------------
@pytest.fixture(scope="module")
def planted():
    return shuffled_planted()


@pytest.fixture(scope="module")
def two_tower(planted):
    return TwoTower(epochs=2, **TINY).fit(planted[0])


@pytest.fixture(scope="module")
def single(planted):
    return MultiSegmentLateInteraction(segments=1, vectors_per_segment=1, epochs=2, **TINY).fit(planted[0])


@pytest.mark.parametrize("kind", ["maxsim", "attention"])
def test_one_segment_one_vector_is_the_two_tower_formula(single, planted, two_tower, kind):
    li = copy.copy(single)
    li.interaction = kind
    users = np.arange(planted[0].n_users)
    v = li.user_vectors(users)                               # [n, 1, d + 1]: [encoder output, 1]
    assert v.shape == (len(users), 1, li.embedding_size + 1)
    np.testing.assert_allclose(li.score(users), v[:, 0] @ li.item_vectors().T, rtol=1e-5, atol=1e-5)
    # the TwoTower class with the same weights scores the same (histories <= max_len)
    tt = copy.deepcopy(two_tower)
    tt.module_.load_state_dict(li.module_.state_dict())
    tt.refresh()
    np.testing.assert_allclose(tt.score(users), li.score(users), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("S,m,kind", [(3, 2, "maxsim"), (2, 3, "attention"), (4, 1, "maxsim")])
def test_incremental_update_equals_full_reencode(S, m, kind):
    data = random_events()
    model = MultiSegmentLateInteraction(segments=S, vectors_per_segment=m, interaction=kind, epochs=1,
                                        **{**TINY, "max_len": 9}).fit(data)
    rng = np.random.default_rng(3)
    users = np.arange(data.n_users)
    for step in range(11):                                   # crosses segment boundaries
        for u in users:
            model.update(u, int(rng.integers(data.n_items)), timestamp=10_000 + step)
        full = model.encode(users)
        np.testing.assert_allclose(model.cache_.numpy(), full.numpy(), rtol=1e-5, atol=1e-5)
    fresh = copy.copy(model)
    fresh.refresh()                                          # whole-history re-encode of everyone
    np.testing.assert_allclose(model.score(users), fresh.score(users), rtol=1e-5, atol=1e-5)
    cand = rng.integers(0, data.n_items, (len(users), 7))
    np.testing.assert_allclose(model.score_candidates(users, cand),
                               np.take_along_axis(fresh.score(users), cand, 1), rtol=1e-5, atol=1e-5)
    assert [len(model.history(u)) for u in users] == [n + 11 for n in (1, 5, 9, 14, 0, 23)]
    seen = model.seen_.toarray()                             # updates count as seen items
    assert all(seen[u, model.history(u)].all() for u in users)


def test_two_tower_update_equals_reencode(tmp_path):
    data = random_events()
    model = TwoTower(epochs=1, **TINY).fit(data)
    model.update(2, 7).update(4, 3)
    fresh = copy.copy(model)
    fresh.refresh()
    np.testing.assert_allclose(model.cache_.numpy(), fresh.cache_.numpy(), rtol=1e-5, atol=1e-5)
    loaded = TwoTower.load(model.save(tmp_path / "tt.npz"))   # updates survive save/load
    assert loaded.history(2)[-1] == 7 and loaded.seen_[4, 3] == 1
    np.testing.assert_allclose(loaded.score([2, 4]), model.score([2, 4]), rtol=1e-5, atol=1e-6)


def test_update_and_config_errors(single):
    with pytest.raises(IndexError, match="unknown item"):
        copy.deepcopy(single).update(0, single.n_items_)
    m = copy.deepcopy(single)
    m.update(0, 1, timestamp=10**9)
    with pytest.raises(ValueError, match="time order"):
        m.update(0, 2, timestamp=5)
    with pytest.raises(IndexError, match="unknown user"):
        m.update(single.n_users_, 1)
    with pytest.raises(ValueError, match="interaction"):
        MultiSegmentLateInteraction(interaction="sum", **TINY).fit(random_events())
    with pytest.raises(ValueError, match="segments"):
        MultiSegmentLateInteraction(segments=0, **TINY).fit(random_events())
    with pytest.raises(ValueError, match="not trained"):
        single.with_segments(2)


def test_cross_encoder_scores_match_its_module(planted):
    ce = CrossEncoderRanker(epochs=1, n_negatives=3, **TINY).fit(planted[0])
    users = np.array([0, 5, 9])
    cand = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 0]])
    got = ce.score_candidates(users, cand)
    for r, u in enumerate(users):                            # one [history; candidate] pass each
        h = ce.history(u)[-ce.max_len:]
        for c in range(3):
            tok = torch.zeros(1, ce.max_len, dtype=torch.long)
            tok[0, ce.max_len - len(h):] = torch.as_tensor(h + 1)
            with torch.no_grad():
                x = ce.module_.enc(tok, ce.module_.enc.item(torch.tensor([[cand[r, c] + 1]]))
                                   + ce.module_.enc.extra)
                ref = float(x[0, -1] @ ce.module_.enc.item.weight[cand[r, c] + 1]
                            + ce.module_.bias[cand[r, c]])
            assert got[r, c] == pytest.approx(ref, rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(ce.score(users)[np.arange(3)[:, None], cand], got, rtol=1e-4, atol=1e-5)


def test_two_stage_reranks_only_candidates(planted, single, two_tower):
    tt = two_tower
    users = np.arange(20)
    same = TwoStage(tt, tt, candidates=10).fit(planted[0])
    # re-ranking the retriever's own top-C keeps its top-C order
    np.testing.assert_array_equal(same.recommend(users, k=10)[0], tt.recommend(users, k=10)[0])
    ts = TwoStage(tt, single, candidates=10).fit(planted[0])
    cand = ts.candidate_items(users)
    top, _ = ts.recommend(users, k=10)
    assert all(set(a) == set(b) for a, b in zip(top, cand))  # top-C = the candidate set
    ref = np.take_along_axis(single.score(users), cand, 1)
    order = np.argsort(-ref, axis=1, kind="stable")
    np.testing.assert_array_equal(top, np.take_along_axis(cand, order, 1))
    with pytest.raises(ValueError, match="candidates"):
        TwoStage(tt, single, candidates=10**6).fit(planted[0])


# ---- the contract --------------------------------------------------------------------------------
class _Planted:
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        return shuffled_planted()


class TestTwoTowerContract(_Planted, RecommenderContract):
    def make_model(self):
        return TwoTower(epochs=6, **TINY)


class TestLateInteractionContract(_Planted, RecommenderContract):
    def make_model(self):
        return MultiSegmentLateInteraction(segments=2, vectors_per_segment=2, interaction="attention",
                                           train_segments=(1, 2), epochs=8,
                                           **{**TINY, "samples_per_user": 6})


class TestCrossEncoderContract(_Planted, RecommenderContract):
    def make_model(self):
        return CrossEncoderRanker(epochs=6, n_negatives=7, **TINY)
