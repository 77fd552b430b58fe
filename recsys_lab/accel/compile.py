"""``torch.compile`` of a torch model's scoring path (``score_users``), compile time kept apart.

TorchDynamo traces ``score_users(module, users)`` and Inductor generates fused kernels (C++/OpenMP
on CPU with gcc, Triton on CUDA). ``dynamic=True`` traces the batch dimension symbolically, so a
new batch size does not recompile. The first calls (tracing + code generation) are made at build
time on warm-up batches and reported as ``compile_seconds_``; serving latency excludes them.
The module runs on the wrapped model's device (CUDA when it was fitted with ``device="auto"``
on a GPU machine).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..models.capabilities import TorchModel
from .base import Wrapper

MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass(eq=False)
class Compiled(Wrapper):
    """Scores with ``torch.compile(score_users)``; ``compile_seconds_`` is the warm-up cost."""

    mode: str = "default"
    dynamic: bool = True

    def _check_config(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown torch.compile mode {self.mode!r}; choose one of {MODES}")

    def _check_model(self, model):
        if not model.supports(TorchModel):
            raise TypeError(f"Compiled needs a torch model (TorchModel: module_ and score_users); "
                            f"{type(model).__name__} is not one, so there is nothing to compile")

    def _build(self):
        import torch
        module = self.model.module_
        self.device_ = next(iter(module.parameters()), torch.empty(0)).device
        model = self.model

        def score(users):                                    # LongTensor [n] -> Tensor [n, n_items]
            return model.score_users(module, users)

        self._fn = torch.compile(score, mode=self.mode, dynamic=self.dynamic)
        t0 = time.perf_counter()
        for b in (2, 3, 1):                                  # trace, generate code, cover sizes 1..3
            self._call(np.arange(min(int(b), self.n_users_)))
        self.compile_seconds_ = time.perf_counter() - t0

    def _call(self, users):
        import torch
        module = self.model.module_
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                s = self._fn(torch.as_tensor(users, dtype=torch.long, device=self.device_))
        finally:
            module.train(was_training)
        return s.float().cpu().numpy()

    def _score(self, users):
        return self._call(users)

    def serving_device(self) -> str:
        return str(self.device_)
