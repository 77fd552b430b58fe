"""The cached cross-encoder (HSTU's M-FALCON): the history encoded once, every candidate an isolated
extra token, each score equal to its own per-candidate cross-encoder pass (issue 11.3)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from recsys_lab.data import Interactions
from recsys_lab.eval.latency import limit_threads
from recsys_lab.models import EASE
from recsys_lab.models.sequential import CachedCrossEncoder, CrossEncoderRanker, cost_model
from recsys_lab.models.sequential.cost_model import layer_flops
from recsys_lab.models.sequential.cross_encoder import CrossEncoder
from recsys_lab.models.sequential.encoder import EncoderConfig, SequenceEncoder, prefix_mask
from tests.test_late_interaction import TINY, random_events
from tests.contract import RecommenderContract

DEEP = {**TINY, "n_layers": 3, "n_heads": 4, "max_len": 10, "dropout": 0.2}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with limit_threads(1):
        yield


def histories() -> Interactions:
    """Users with empty, short (padded), exactly max_len and longer-than-max_len histories."""
    return random_events(n_users=7, n_items=40, lengths=(0, 1, 3, 10, 12, 25, 6), seed=4)


@pytest.fixture(scope="module")
def pair():
    """A trained naive cross-encoder and a cached one carrying the very same weights."""
    data = histories()
    naive = CrossEncoderRanker(epochs=2, n_negatives=5, **DEEP).fit(data)
    cached = CachedCrossEncoder(epochs=1, n_negatives=5, **DEEP).fit(data)
    cached.module_.load_state_dict(naive.module_.state_dict())
    cached.refresh()
    return naive, cached, data


def test_cached_scores_equal_the_per_candidate_passes(pair):
    """Several users of every history length in one batch, C = 23 candidates (repeats allowed):
    one M-FALCON pass equals C separate [history; candidate] passes, to 1e-5."""
    naive, cached, data = pair
    users = np.arange(data.n_users)
    cand = np.random.default_rng(0).integers(0, data.n_items, (len(users), 23))
    ref = naive.score_candidates(users, cand)
    got = cached.score_candidates(users, cand)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    for r in (0, 3, 5):                                          # one user at a time, too
        np.testing.assert_allclose(cached.score_candidates([users[r]], cand[r:r + 1]), ref[r:r + 1],
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cached.score(users[:3]), naive.score(users[:3]), rtol=1e-5, atol=1e-5)


def test_candidate_pass_against_an_explicit_softmax_loop():
    """encode_prefix + candidates against a loop that, layer by layer, computes each candidate's
    attention over [history keys; its own key] by hand (numpy softmax), and against the masked
    SDPA pass of [history; candidate] with the prefix mask."""
    torch.manual_seed(0)
    cfg = EncoderConfig(n_items=30, d=16, n_layers=2, n_heads=2, max_len=6, n_extra=1)
    enc = SequenceEncoder(cfg).eval()
    tokens = torch.tensor([[0, 0, 0, 4, 9, 2], [0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10]])
    extra = torch.randn(3, 4, 16) * 0.1                            # 4 candidate tokens per row
    with torch.no_grad():
        kv, keep = enc.encode_prefix(tokens)
        got = enc.candidates(kv, keep, extra).numpy()              # [3, 4, 16]
        for c in range(4):
            one = enc(tokens, extra[:, c:c + 1], isolate_extra=True)[:, -1].numpy()
            np.testing.assert_allclose(got[:, c], one, rtol=1e-5, atol=1e-5)
        for b in range(3):                                         # the formula, by hand
            for c in range(4):
                x = extra[b, c].clone()[None]                      # [1, d]
                for block, (k, v) in zip(enc.blocks, kv):
                    q, kc, vc = (t[0, :, 0].numpy() for t in block._qkv(x[None]))  # [h, d/h]
                    out = []
                    for h in range(cfg.n_heads):
                        keys = np.vstack([k[b, h].numpy()[keep[b].numpy()], kc[h]])
                        vals = np.vstack([v[b, h].numpy()[keep[b].numpy()], vc[h]])
                        a = keys @ q[h] / np.sqrt(q.shape[1])
                        w = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
                        out.append(w @ vals)
                    y = torch.tensor(np.concatenate(out), dtype=torch.float32)[None, None]   # [1, 1, d]
                    y = y.view(1, 1, cfg.n_heads, -1).transpose(1, 2)
                    x = block._finish(x[None], y)[0]
                np.testing.assert_allclose(enc.ln_f(x)[0].numpy(), got[b, c], rtol=1e-4, atol=1e-5)


def test_prefix_mask_keys():
    tokens = torch.tensor([[0, 3, 4]])
    m = prefix_mask(tokens, 2)[0, 0].numpy()                       # [5, 5]
    np.testing.assert_array_equal(m, [[1, 1, 1, 0, 0],             # padding query: + itself
                                      [0, 1, 1, 0, 0],
                                      [0, 1, 1, 0, 0],
                                      [0, 1, 1, 1, 0],             # each extra: history + itself
                                      [0, 1, 1, 0, 1]])


def test_shared_pass_loss_and_gradients_equal_the_naive_ones(pair):
    """Training with all 1 + n_negatives candidates in one pass is the same loss (and the same
    gradients) as one pass per candidate, with dropout off."""
    naive, _, data = pair
    module = CrossEncoder(naive.encoder_config(n_extra=1))
    module.load_state_dict(naive.module_.state_dict())
    module.eval()                                                  # dropout off: same function
    tokens = torch.as_tensor(naive._windows(np.arange(data.n_users), __import__(
        "recsys_lab.models.sequential.data", fromlist=["last_window"]).last_window, naive.max_len))
    cand = torch.as_tensor(np.random.default_rng(1).integers(0, data.n_items, (data.n_users, 9)))
    grads = []
    for fn in (module.forward, module.forward_shared):
        module.zero_grad()
        loss = F.cross_entropy(fn(tokens, cand), torch.zeros(len(cand), dtype=torch.long))
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in module.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    for g0, g1 in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g0, g1, rtol=1e-4, atol=1e-6)


def test_full_attention_variant_is_not_cacheable():
    """BST's full attention (the history also reads the candidate) changes the scores of a
    multi-layer model, and the cached cross-encoder refuses it, naming the option."""
    data = histories()
    full = CrossEncoderRanker(epochs=1, n_negatives=3, history_attends_candidate=True, **DEEP).fit(data)
    prefix = CrossEncoderRanker(epochs=1, n_negatives=3, **DEEP).fit(data)
    prefix.module_.load_state_dict(full.module_.state_dict())
    users, cand = np.arange(2, 6), np.tile(np.arange(6), (4, 1))
    assert np.abs(full.score_candidates(users, cand) - prefix.score_candidates(users, cand)).max() > 1e-4
    with pytest.raises(ValueError, match="history_attends_candidate"):
        CachedCrossEncoder(history_attends_candidate=True, **DEEP).fit(data)
    with pytest.raises(ValueError, match="history_attends_candidate"):
        full.module_.forward_shared(torch.ones(1, 10, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))


def test_many_mined_negatives_in_one_pass():
    """127 negatives per example by default, half of them from the first stage's top-k."""
    data = histories()
    ease = EASE(reg=5.0).fit(data)
    model = CachedCrossEncoder(epochs=1, **{**DEEP, "batch_size": 16}).mine_negatives_from(ease, top=8)
    model.fit(data)
    start, t, tgt = model.examples(np.random.default_rng(0))
    tokens, cand = model.make_batch(start[:6], t[:6], tgt[:6], np.random.default_rng(1))
    assert cand.shape == (6, 1 + 127)
    np.testing.assert_array_equal(cand[:, 0].numpy(), tgt[:6])
    top = model._miner.candidates(tokens.numpy(), tgt[:6])[0]
    n_hard = round(0.5 * 127)
    assert all(set(c[-n_hard:].tolist()) <= set(row) for c, row in zip(cand.numpy(), top))
    assert np.isfinite(model.history_["loss"]).all()


def test_cost_model_against_the_flop_counter():
    """FlopCounterMode on the candidate pass counts projections + MLP (24 d^2 per token) and the
    candidates' history-attention matmuls (4 L d per token); the CPU counter skips the history's
    fused SDPA (4 L^2 d per layer) and the elementwise self terms (4 d per candidate token)."""
    d, n, L, C = 16, 2, 7, 5
    cfg = EncoderConfig(n_items=40, d=d, n_layers=n, n_heads=2, max_len=L, n_extra=1)
    module = CrossEncoder(cfg).eval()
    tokens, cand = torch.randint(1, 40, (1, L)), torch.randint(0, 40, (1, C))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        module.forward_shared(tokens, cand)
    assert fc.get_total_flops() == n * (24 * L * d * d + C * (24 * d * d + 4 * L * d))
    cm = cost_model("cached_cross", L, C, d, n)
    assert cm["encode"] - fc.get_total_flops() == n * (4 * L * L * d + 4 * C * d)
    naive = cost_model("cross", L, C, d, n)["total"]
    assert naive == C * n * layer_flops(L + 1, d) + 2 * C * d and cm["total"] < naive


def test_bad_config_names_the_value():
    with pytest.raises(ValueError, match="n_negatives"):
        CachedCrossEncoder(n_negatives=0, **TINY).fit(histories())


class TestCachedCrossEncoderContract(RecommenderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        from tests.test_late_interaction import shuffled_planted
        return shuffled_planted()

    def make_model(self):
        return CachedCrossEncoder(epochs=6, n_negatives=7, **TINY)   # a 56-item catalog: more negatives hit the held-out item
