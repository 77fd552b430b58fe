"""The one torch training loop shared by every learned model.

A subclass is a dataclass whose extra fields are its knobs; it says how to build the network,
how to cut an epoch into batches, the loss of one batch (``compute_loss``; the name ``loss`` is
left free for a config field), and how to score users::

    @dataclass(eq=False)
    class MF(TorchRecommender):
        def build_module(self):                       # may read n_users_, n_items_ and config
            return Factors(self.n_users_, self.n_items_, self.embedding_size)

        def batches(self, train, rng):                # one epoch: an iterable of tensor tuples
            u, i = train.user, train.item
            for b in np.array_split(rng.permutation(len(u)), max(1, len(u) // self.batch_size)):
                yield self.to_tensors(u[b], i[b], sample_negatives(self.seen_, u[b], rng))

        def compute_loss(self, module, batch):        # scalar tensor, includes the reg term
            u, i, j = batch
            return -F.logsigmoid(module(u, i) - module(u, j)).mean()

        def score_users(self, module, users):          # LongTensor [n] -> Tensor [n, n_items]
            return module.user(users) @ module.item.weight.T

    model = MF(embedding_size=64, epochs=20, seed=0).fit(train, valid=valid)
    model.history_                                     # epoch, loss, valid_ndcg@10, seconds

The loop seeds numpy and torch (without touching the global torch RNG: it runs inside
``torch.random.fork_rng``), picks the device (``"auto"`` = CUDA when present), runs Adam, shows a
tqdm bar only on a terminal (or when ``progress=True``), and with a validation split calls its
validation callback after every epoch (``validation_score(valid)``: full-ranking NDCG@10 from the
numpy kernel ``recsys_lab.metrics``, so models never import eval; a model may override it), stops
after ``patience`` epochs without improvement and restores the best weights. Optional hooks: ``prepare(train)`` (data structures built once before
the module, e.g. a graph), ``refresh()`` (recompute serving caches from the current weights,
called before every evaluation and after loading), ``configure_optimizer(module)``.

Persistence: ``save``/``load`` (the base class's ``.npz``, no pickle) store the module's tensors as
numpy arrays named ``module__<param>``; ``save_checkpoint``/``load_checkpoint`` write the same
state as a ``.pt`` file read back with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import copy
import json
import sys
import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.interactions import Interactions
from ..metrics import validation_ndcg
from .base import Recommender, check_fit_data
from .capabilities import EmbeddingModel, TorchModel
from .persistence import checkpoint_class_config

_MODULE_PREFIX = "module__"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index arrays covering ``range(n)`` in chunks of ``batch_size`` (shuffled when ``rng``)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for lo in range(0, n, batch_size):
        yield order[lo:lo + batch_size]


@dataclass(eq=False)
class TorchRecommender(Recommender, TorchModel):
    """Base of the torch models: shared hyper-parameters and the seeded training loop."""

    embedding_size: int = 64
    epochs: int = 20
    learning_rate: float = 1e-3
    reg: float = 1e-4
    batch_size: int = 1024
    seed: int = 0
    device: str = "auto"
    patience: int = 3
    progress: bool | None = None      # None: a progress bar only when stderr is a terminal
    num_threads: int | None = None    # torch intra-op threads while fitting (restored after)
    valid_users: int | None = None    # early stopping on a seeded sample of this many valid users
    valid_every: int = 1              # validate every this many epochs (RecBole's eval_step);
    #                                   patience counts validations, as RecBole's stopping_step

    # ---- to implement ---------------------------------------------------------------------
    @abstractmethod
    def build_module(self) -> nn.Module:
        """The network; may read ``n_users_``, ``n_items_``, config and fitted ``*_`` arrays."""

    @abstractmethod
    def batches(self, train: Interactions, rng: np.random.Generator):
        """One epoch of training batches (tuples of tensors on ``self.device_``)."""

    @abstractmethod
    def compute_loss(self, module: nn.Module, batch) -> torch.Tensor:
        """Scalar training loss of one batch (regularisation included)."""

    @abstractmethod
    def score_users(self, module: nn.Module, users: torch.Tensor) -> torch.Tensor:
        """Scores [len(users), n_items] of users (LongTensor [n]); runs under ``no_grad``/eval."""

    # ---- optional hooks -------------------------------------------------------------------
    def prepare(self, train: Interactions) -> None:
        """Build data structures from ``train`` before the module (graphs, histories)."""

    def refresh(self) -> None:
        """Recompute serving caches from the current weights (before evaluation, after load)."""

    def configure_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=self.learning_rate)

    # ---- helpers for subclasses -----------------------------------------------------------
    @property
    def device_(self) -> torch.device:
        return resolve_device(self.device)

    def serving_device(self) -> str:
        return str(self.device_)

    def to_tensors(self, *arrays, dtype=torch.long):
        """numpy arrays -> tensors on the model's device (a tuple, ready to be a batch)."""
        dev = self.device_
        return tuple(torch.as_tensor(np.asarray(a), dtype=dtype, device=dev) for a in arrays)

    # ---- the loop -------------------------------------------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "TorchRecommender":
        """Train on ``train``; with ``valid``, early-stop on ``validation_score(valid)`` (NDCG@10)
        and keep the best epoch."""
        check_fit_data(train, valid)
        self._valid = self._valid_sample(valid)
        try:
            return super().fit(train)
        finally:
            self._valid = None

    def _valid_sample(self, valid: Interactions | None) -> Interactions | None:
        """``valid`` restricted to a seeded sample of ``valid_users`` users (all when None)."""
        if valid is None or self.valid_users is None:
            return valid
        users = np.unique(valid.user)
        if len(users) <= self.valid_users:
            return valid
        keep = np.random.default_rng([self.seed, 1]).choice(users, self.valid_users, replace=False)
        return valid.subset(np.isin(valid.user, keep))

    def _check_config(self) -> None:
        for name in ("embedding_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads!r}")
        if self.valid_users is not None and self.valid_users < 1:
            raise ValueError(f"valid_users must be a positive integer or None, got {self.valid_users!r}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience!r}")
        if not isinstance(self.valid_every, (int, np.integer)) or self.valid_every < 1:
            raise ValueError(f"valid_every must be a positive integer, got {self.valid_every!r}")
        resolve_device(self.device)

    def _fit(self, train: Interactions) -> None:
        dev = self.device_
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=cuda):
            try:
                if self.num_threads:
                    torch.set_num_threads(int(self.num_threads))
                torch.manual_seed(self.seed)
                rng = np.random.default_rng(self.seed)
                self.prepare(train)
                self.module_ = self.build_module().to(dev)
                self._train_loop(train, rng)
            finally:
                torch.set_num_threads(threads)

    def _train_loop(self, train: Interactions, rng: np.random.Generator) -> None:
        module, valid = self.module_, self._valid
        opt = self.configure_optimizer(module)
        show = sys.stderr.isatty() if self.progress is None else bool(self.progress)
        rows, best, best_state, stale = [], -np.inf, None, 0
        t_fit = time.perf_counter()
        bar = tqdm(range(self.epochs), desc=type(self).__name__, disable=not show, leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            module.train()
            total, n = 0.0, 0
            for batch in self.batches(train, rng):
                loss = self.compute_loss(module, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, n = total + loss.item(), n + 1
            row = {"epoch": epoch + 1, "loss": total / max(n, 1),
                   "train_seconds": time.perf_counter() - t0}
            self.refresh()
            if valid is not None and (epoch + 1) % self.valid_every == 0:
                row["valid_ndcg@10"] = self.validation_score(valid)
                row["best"] = row["valid_ndcg@10"] > best
                if row["best"]:
                    best, stale = row["valid_ndcg@10"], 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    stale += 1
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("loss", "valid_ndcg@10")})
            if valid is not None and stale > self.patience:
                break
        if best_state is not None:
            module.load_state_dict(best_state)
            self.refresh()
        self.fit_seconds_ = time.perf_counter() - t_fit
        self.epoch_seconds_ = np.array([r["train_seconds"] for r in rows])
        self.history_ = pd.DataFrame(rows)
        scores = self.history_.get("valid_ndcg@10")               # NaN on epochs not validated
        self.best_epoch_ = int(self.history_["epoch"][scores.idxmax()]) \
            if scores is not None and scores.notna().any() else len(rows)

    def validation_score(self, valid: Interactions) -> float:
        """The validation callback: NDCG@10 of the current weights on ``valid`` (full ranking,
        training items masked; ``recsys_lab.metrics.validation_ndcg``). Override it for a model
        whose full ranking is too slow to validate every epoch."""
        return float(validation_ndcg(self, valid, k=10))

    # ---- scoring --------------------------------------------------------------------------
    def _score(self, users: np.ndarray) -> np.ndarray:
        module = self.module_
        was_training = module.training
        module.eval()
        with torch.no_grad():
            s = self.score_users(module, torch.as_tensor(users, dtype=torch.long, device=self.device_))
        module.train(was_training)
        return s.float().cpu().numpy()

    # ---- persistence ----------------------------------------------------------------------
    def _own_state(self) -> dict[str, np.ndarray]:
        state = super()._own_state()
        for name, t in self.module_.state_dict().items():
            state[_MODULE_PREFIX + name] = t.detach().cpu().numpy()
        return state

    def _load_own_state(self, state: dict[str, np.ndarray]) -> None:
        mod = {k[len(_MODULE_PREFIX):]: torch.from_numpy(np.array(v))
               for k, v in state.items() if k.startswith(_MODULE_PREFIX)}
        super()._load_own_state({k: v for k, v in state.items() if not k.startswith(_MODULE_PREFIX)})
        self.module_ = self.build_module().to(self.device_)
        self.module_.load_state_dict(mod)
        self.module_.eval()
        self.refresh()

    def save_checkpoint(self, path) -> Path:
        """Write config and state to a torch ``.pt`` file (tensors and primitives only)."""
        path = Path(path)
        state = {k: torch.from_numpy(np.array(v)) for k, v in self.state_dict().items()}
        torch.save({"class": type(self).__name__, "config": json.dumps(self.get_config()),
                    "state": state}, path)
        return path

    @classmethod
    def load_checkpoint(cls, path, device: str | None = None) -> "TorchRecommender":
        """Load a ``save_checkpoint`` file with ``torch.load(weights_only=True)`` (no code runs)."""
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
        klass, config = checkpoint_class_config(path, ckpt.get("class"), ckpt["config"],
                                                Recommender.registry, TorchRecommender, device)
        model = klass.from_config(config)
        model.load_state_dict({k: v.numpy() for k, v in ckpt["state"].items()})
        return model


@dataclass(eq=False)
class EmbeddingRecommender(TorchRecommender, EmbeddingModel):
    """A torch model that scores by a dot product, s(u, i) = e_u . e_i (BPR-MF, LightGCN, ...).

    Subclasses implement ``factors(module) -> (E_users [n_users, d], E_items [n_items, d])``;
    this gives ``score_users`` plus ``user_vectors``/``item_vectors`` (numpy): an EmbeddingModel.
    """

    @abstractmethod
    def factors(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(user table [n_users, d], item table [n_items, d]) of ``module``."""

    def score_users(self, module, users):
        U, V = self.factors(module)
        return U[users] @ V.T                                  # [n, d] @ [d, n_items]

    def _vectors(self):
        self._check_fitted()
        self.module_.eval()
        with torch.no_grad():
            return [t.float().cpu().numpy() for t in self.factors(self.module_)]

    def user_vectors(self, users=None) -> np.ndarray:
        """User embeddings, float32 [len(users), d] (all users when ``users`` is None)."""
        U = self._vectors()[0]
        return U if users is None else U[self._check_users(users)]

    def item_vectors(self) -> np.ndarray:
        """Item embeddings, float32 [n_items, d]."""
        return self._vectors()[1]
