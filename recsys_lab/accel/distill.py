"""Ranking distillation (Tang & Wang, KDD 2018): a small MF student learns a large teacher's top-K.

For each user u the teacher's top-K unseen items pi_1..pi_K (computed once) become extra,
position-weighted positives of the student, next to the ground truth:

    L = L_gt + distill_weight * L_D
    L_gt = -log sigma(s_ui) - sum_j log sigma(-s_uj)           (loss="pointwise", sampled j)
         or -log sigma(s_ui - s_uj)                             (loss="bpr")
    L_D  = -sum_{r=1..K} w_r log sigma(s_{u, pi_r}),   w_r = exp(-r / position_decay) / Z

(Z normalises the weights to sum 1; the paper's "position importance" weighting). The student is
a dot-product model s_ui = e_u . e_i, so it exposes ``user_vectors``/``item_vectors`` and can be
wrapped by ANNIndex or Quantized; it serves without the teacher (``serving_bytes`` is the
student's alone), though ``save`` keeps the teacher's config and state with it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..data.interactions import Interactions
from ..models.base import Recommender
from ..models.bpr import MatrixFactorization, bpr_loss
from ..models.sampling import NegativeSampler, positive_pairs, triplet_batches
from ..models.torch_base import EmbeddingRecommender

STUDENTS = ("mf",)


def position_weights(k: int, decay: float) -> np.ndarray:
    """w_r = exp(-r / decay) / sum_{r'} exp(-r' / decay) for ranks r = 1..k (float32 [k])."""
    w = np.exp(-np.arange(1, k + 1) / float(decay))
    return (w / w.sum()).astype(np.float32)


def distillation_loss(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L_D = batch mean of -sum_r w_r log sigma(scores[:, r]) (scores [B, K], weights [K] or [B, K])."""
    return -(F.logsigmoid(scores) * weights).sum(-1).mean()


@dataclass(eq=False, init=False)
class Distilled(EmbeddingRecommender):
    """A small MF student distilled from ``teacher`` (any Recommender; fitted first if it is not).

    top_k: teacher items per user (K); position_decay: lambda of w_r ~ exp(-r / lambda);
    distill_weight: weight of L_D; loss / n_negatives: the ground-truth term (as in BPRMF).
    The teacher is the model it wraps (``wraps = "teacher"``); it is saved with the student.
    """

    teacher: Recommender | None = None
    student: str = "mf"
    top_k: int = 10
    position_decay: float = 5.0
    distill_weight: float = 1.0
    loss: str = "pointwise"
    n_negatives: int = 1

    components: ClassVar[tuple[str, ...]] = ("teacher",)
    wraps: ClassVar[str] = "teacher"

    def __init__(self, teacher: Recommender | None = None, student: str = "mf", **config):
        # the teacher comes first (the generated __init__ would put the inherited knobs first);
        # unknown names were refused by Recommender.__new__
        for f in fields(self):
            setattr(self, f.name, config.get(f.name, f.default))
        self.teacher, self.student = teacher, student
        self.__post_init__()

    def _check_config(self):
        super()._check_config()
        if self.student not in STUDENTS:
            raise ValueError(f"student must be one of {STUDENTS}, got {self.student!r}")
        if self.teacher is None:
            raise ValueError("Distilled needs a teacher model (Distilled(teacher, ...))")
        if self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}")
        if not self.position_decay > 0:
            raise ValueError(f"position_decay must be > 0, got {self.position_decay!r}")
        if self.distill_weight < 0:
            raise ValueError(f"distill_weight must be >= 0, got {self.distill_weight!r}")
        if self.loss not in ("bpr", "pointwise"):
            raise ValueError(f"loss must be 'bpr' or 'pointwise', got {self.loss!r}")
        if self.n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives!r}")

    # ---- training -------------------------------------------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "Distilled":
        """Fit the teacher on ``train`` unless it is fitted already, then train the student."""
        if not self.teacher.is_fitted():
            self.teacher.fit(train, valid=valid)
        if (self.teacher.n_users_, self.teacher.n_items_) != (train.n_users, train.n_items):
            raise ValueError(f"the teacher was fitted on {self.teacher.n_users_}x{self.teacher.n_items_} "
                             f"users x items, train has {train.n_users}x{train.n_items}")
        if self.top_k > train.n_items:
            raise ValueError(f"top_k={self.top_k} is larger than the catalog ({train.n_items} items)")
        return super().fit(train, valid=valid)

    def prepare(self, train):
        self._pairs = positive_pairs(self.seen_)
        self._sampler = NegativeSampler(self.seen_)
        # the teacher's ranking, unseen items only: [n_users, K]
        top = self.teacher.recommend(np.arange(self.n_users_), k=self.top_k)[0]
        # a user with fewer than K unseen items gets padding (-1): weight 0 for those slots
        self._pad = torch.as_tensor(top >= 0, device=self.device_) if (top < 0).any() else None
        self.teacher_topk_ = np.maximum(top, 0)
        self._weights = torch.as_tensor(position_weights(self.top_k, self.position_decay),
                                        device=self.device_)

    def build_module(self):
        return MatrixFactorization(self.n_users_, self.n_items_, self.embedding_size)

    def batches(self, train, rng):
        for u, i, j in triplet_batches(self._sampler, *self._pairs, self.batch_size, rng, self.n_negatives):
            yield self.to_tensors(u, i, j, self.teacher_topk_[u])

    def compute_loss(self, module, batch):
        u, i, j, top = batch                                   # [B], [B], [B, n_neg], [B, K]
        eu = module.user(u)                                    # [B, d]
        gt = bpr_loss(eu, module.item(i), module.item(j), self.reg, pointwise=self.loss == "pointwise")
        s_top = torch.einsum("bd,bkd->bk", eu, module.item(top))   # [B, K]
        w = self._weights if self._pad is None else self._weights * self._pad[u]
        return gt + self.distill_weight * distillation_loss(s_top, w)

    def factors(self, module):
        return module.user.weight, module.item.weight

    # ---- serving state: the student only ----------------------------------------------------
    def serving_bytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in self.module_.parameters()) + \
            self.seen_.data.nbytes + self.seen_.indices.nbytes + self.seen_.indptr.nbytes

    def _own_state(self):
        state = super()._own_state()
        state.pop("teacher_topk_", None)                       # a training artefact
        return state
