"""SASRec: causal masking, attention weights against torch's SDPA, windows against a numpy loop,
both losses, and the Recommender contract on the planted data."""
import numpy as np
import pytest
import torch

from recsys_lab.models import SASRec
from recsys_lab.models.sequential.encoder import EncoderConfig
from recsys_lab.models.sequential.sasrec import SASRecNet, causal_mask

from .contract import RecommenderContract, planted_blocks

BASE = dict(embedding_size=16, epochs=40, learning_rate=0.01, batch_size=64, max_len=10, n_layers=1,
            n_heads=2, dropout=0.1, samples_per_user=3, device="cpu", num_threads=1, seed=0)


def tiny_net(seed=0, n_layers=2):
    torch.manual_seed(seed)
    return SASRecNet(EncoderConfig(n_items=20, d=8, n_layers=n_layers, n_heads=2, max_len=6)).eval()


def test_causal_mask_blocks_future_and_padding():
    tok = torch.tensor([[0, 0, 3, 5, 7]])
    m = causal_mask(tok)[0, 0].numpy()
    ref = np.array([[j <= t and (tok[0, j] > 0 or j == t) for j in range(5)] for t in range(5)])
    np.testing.assert_array_equal(m, ref)


def test_future_items_do_not_change_earlier_outputs():
    net = tiny_net()
    a = torch.tensor([[0, 2, 4, 6, 8, 10]])
    b = a.clone()
    b[0, 4] = 19                                              # change the item at position 4
    with torch.no_grad():
        ha, hb = net(a), net(b)
    torch.testing.assert_close(ha[:, :4], hb[:, :4], rtol=0, atol=0)
    assert not torch.allclose(ha[:, 4:], hb[:, 4:])


def test_attention_weights_sum_to_one_and_reproduce_sdpa():
    net = tiny_net(n_layers=1)
    tok = torch.tensor([[0, 0, 3, 5, 7, 9], [1, 2, 3, 4, 5, 6]])
    (w,) = net.attention(tok)                                 # [B, h, T, T]
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 6))
    assert (w.masked_select(~causal_mask(tok).expand_as(w)) == 0).all()
    # independent check: the weights times V equal what scaled_dot_product_attention produced
    seen = {}
    block = net.blocks[0]
    hook = block.proj.register_forward_hook(lambda mod, inp, out: seen.setdefault("y", inp[0]))
    with torch.no_grad():
        net(tok)
        x = net.embed(tok)
        v = block.qkv(block.ln1(x)).split(8, dim=2)[2].view(2, 6, 2, 4).transpose(1, 2)
    hook.remove()
    y = (w @ v).transpose(1, 2).reshape(2, 6, 8)
    torch.testing.assert_close(y, seen["y"], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def planted():
    return planted_blocks()


@pytest.fixture(scope="module")
def fitted(planted):
    return SASRec(**{**BASE, "epochs": 3}).fit(planted[0])


def test_windows_match_a_numpy_loop(fitted, planted):
    L = fitted.max_len
    for u, h in enumerate(planted[0].histories()[:20]):
        ref = np.zeros(L, np.int64)
        last = h[-L:] + 1
        ref[L - len(last):] = last
        np.testing.assert_array_equal(fitted.tokens([u])[0], ref)


def test_score_is_last_state_dot_items(fitted):
    users = np.array([0, 7, 31])
    tok = torch.as_tensor(fitted.tokens(users))
    fitted.module_.eval()
    with torch.no_grad():
        h = fitted.module_(tok)[:, -1]
        ref = (h @ fitted.module_.item.weight[1:].T).numpy()
    np.testing.assert_allclose(fitted.score(users), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted.user_vectors(users) @ fitted.item_vectors().T, ref, rtol=1e-5, atol=1e-6)
    cand = np.array([[0, 5, 9], [1, 2, 3], [40, 41, 42]])
    np.testing.assert_allclose(fitted.score_candidates(users, cand), np.take_along_axis(ref, cand, 1),
                               rtol=1e-5, atol=1e-6)


def test_update_appends_to_the_history(planted):
    m = SASRec(**{**BASE, "epochs": 1}).fit(planted[0])
    before = m.score([3])
    m.update(3, 40)
    assert m.history(3)[-1] == 40 and m.tokens([3])[0, -1] == 41
    assert not np.allclose(before, m.score([3]))
    assert 40 in m.seen_[3].indices


def test_batch_targets_are_the_next_items(fitted):
    rng = np.random.default_rng(0)
    start, t, n_loss = fitted.examples(rng)
    assert (n_loss == fitted.max_len).all()                   # windows="last": every target
    inp, pos, neg = (x.numpy() for x in fitted.make_batch(start[:8], t[:8], n_loss[:8], rng))
    np.testing.assert_array_equal(inp[:, 1:], pos[:, :-1])    # shifted by one
    np.testing.assert_array_equal(pos[:, -1], fitted.seq_items_[start[:8] + t[:8] - 1] + 1)
    assert (neg != pos).all() and neg.min() >= 1 and neg.max() <= fitted.n_items_


def test_explain_weights_sum_to_one(fitted, planted):
    items, w = fitted.explain(5)
    np.testing.assert_array_equal(items, planted[0].histories()[5][-fitted.max_len:])
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("bad, match", [({"loss": "mse"}, "loss"), ({"n_heads": 3}, "divisible"),
                                        ({"dropout": 1.5}, "dropout"), ({"max_len": 0}, "max_len")])
def test_bad_config_is_named(planted, bad, match):
    with pytest.raises(ValueError, match=match):
        SASRec(**{**BASE, **bad}).fit(planted[0])


def test_full_softmax_loss_learns_the_blocks(planted):
    from recsys_lab.eval import evaluate
    m = SASRec(**{**BASE, "loss": "ce"}).fit(planted[0])
    assert evaluate(m, planted[1], k=6)["hit"].iloc[0] >= 0.8


class TestSASRec(RecommenderContract):
    def make_model(self):
        return SASRec(**BASE)


def test_cover_windows_train_every_target_exactly_once():
    """windows="cover": over one epoch, the (user, position) pairs that carry a loss are every
    target position 1..n-1 of every history, once each (a numpy loop over the batches)."""
    from tests.test_late_interaction import random_events
    data = random_events(n_users=6, n_items=40, lengths=(1, 5, 9, 14, 0, 23), seed=2)
    model = SASRec(**{**BASE, "epochs": 1, "max_len": 6, "windows": "cover"}).fit(data)
    start, t, n_loss = model.examples(np.random.default_rng(0))
    inp, pos, _ = model.make_batch(start, t, n_loss, np.random.default_rng(1))
    users = np.searchsorted(model.seq_ptr_, start, side="right") - 1
    trained = []
    for r in range(len(t)):                                   # target slot j of window r is
        for j in np.flatnonzero(pos[r].numpy() > 0):          # history position t - L + j
            trained.append((users[r], t[r] - model.max_len + j))
    expected = [(u, p) for u, h in enumerate(data.histories()) for p in range(1, len(h))]
    assert sorted(trained) == sorted(expected)
    hist = data.histories()
    for r in range(len(t)):                                   # targets are the next items
        h = hist[users[r]]
        for j in np.flatnonzero(pos[r].numpy() > 0):
            assert pos[r, j] == h[t[r] - model.max_len + j] + 1
    with pytest.raises(ValueError, match="windows"):
        SASRec(**{**BASE, "windows": "all"}).fit(data)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    """lr_schedule="cosine": the learning rate after each optimizer step follows warm-up then
    cosine (schedule.warmup_cosine, against the closed form), reaching 0 at the last step."""
    import math
    from recsys_lab.models.sequential.schedule import warmup_cosine
    total, warm = 20, 4
    ref = [(s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
           for s in range(total + 1)]
    assert [warmup_cosine(s, total, warm) for s in range(total + 1)] == pytest.approx(ref)
    from tests.test_late_interaction import random_events
    data = random_events(n_users=6, n_items=40, lengths=(1, 5, 9, 14, 0, 23), seed=2)
    model = SASRec(**{**BASE, "epochs": 3, "batch_size": 4, "lr_schedule": "cosine", "warmup": 0.2}).fit(data)
    opt = model.configure_optimizer(model.module_)
    steps = 3 * -(-len(model.examples(np.random.default_rng(0))[0]) // 4)
    lrs = []
    for _ in range(steps):
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
    warm = round(0.2 * steps)
    np.testing.assert_allclose(lrs, [model.learning_rate * warmup_cosine(s + 1, steps, warm)
                                     for s in range(steps)], rtol=1e-9)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and max(lrs) == pytest.approx(model.learning_rate)
    with pytest.raises(ValueError, match="lr_schedule"):
        SASRec(**{**BASE, "lr_schedule": "step"}).fit(data)
