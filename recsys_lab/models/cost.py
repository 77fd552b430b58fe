"""Predicted fit cost of a model at a size, before anything is fitted (``Recommender.estimate_cost``).

    est = EASE().estimate_cost(n_users=10**6, n_items=10**6, n_events=16 * 10**6)
    est.memory_bytes, est.seconds                      # 2.0e13 bytes (20 n^2), 1.3e8 s (2 n^3 flops)
    est.exceeds(memory_bytes=12 * 2**30)                # ['needs 18.2 TiB for the dense 10^6 x 10^6
                                                        #   Gram matrix and its inverse (budget 12.0 GiB)']

Memory comes from the formula of each model's largest live arrays (exact byte counts of the
arrays it allocates, plus the training CSR); time is the model's operation count divided by a
throughput constant of this machine on one core (below; ``benchmarks/scale.py --calibrate``
measures them again). An estimate is a prediction, not a promise: the scale benchmark stores it
next to the measured peak RSS and fit seconds of every row it runs, so its error is visible.
"""
from __future__ import annotations

from dataclasses import dataclass

# ---- throughput constants of one core: ``benchmarks/scale.py --calibrate`` measured them on the ----
# ---- development machine (AMD EPYC, 2 cores shared at a load average of about 8, so a quiet core is
# ---- up to 2-3x faster: the time estimates err on the slow side) ---------------------------------
DENSE_FLOPS = 1.5e10          # float64 LAPACK flop/s (EASE's inverse: 2 n^3 flops)
SPARSE_MACS = 2.1e7           # scipy sparse x sparse multiply-adds/s (Gram, co-occurrence counts)
SPMV_MACS = 3.3e8             # scipy sparse x dense-vector multiply-adds/s (ARPACK's matvecs)
GEMV_FLOPS = 8.5e8            # float64 matrix-vector flop/s (ARPACK's Lanczos orthogonalisation)
LANCZOS_STEPS = 229           # ARPACK steps of svds(k=64, ncv=129) on the synthetic shops (counted)
CELL_SECONDS = 3.6e-7         # seconds per dense cell of an ItemKNN similarity block (sparse product
                              # densified, snapped, partitioned: paid for every item pair, stored or not)
TORCH_FLOPS = 1.0e10          # torch float32 matmul flop/s (training, forward + backward)
TORCH_SPMM_MACS = 1.7e9       # torch sparse CSR x dense multiply-adds/s (LightGCN propagation)
TORCH_ELEMENTS = 4.9e8        # elements/s of memory-bound torch passes (12 per parameter: an Adam step)
TORCH_STEP_SECONDS = 0.03     # fixed cost of one training step (sampling, tensors, optimizer calls)
EVENTS_PER_SECOND = 8.0e6     # events per second of one vectorised pass (CSR build, counts)
CSR_BYTES_PER_EVENT = 24      # to_csr: float32 data + int32 indices kept, int64 COO rows/cols transient
TORCH_RUNTIME_BYTES = 64 * 2**20  # what a first torch training loop adds whatever the size (autograd, pools)
HNSW_INSERT_SECONDS = 1.0e-4  # faiss HNSW (M=32, efConstruction=80, d=64) seconds per insert at log2 n = 10
KMEANS_FLOPS = 1.5e10         # faiss k-means flop/s at d = 64 (IVF coarse quantiser)
PQ_PAIR_SECONDS = 1.7e-8      # faiss k-means seconds per (point, centroid) pair at d = 4 (PQ codebooks)
ACTIVITY_DISPERSION = 2.7     # E[n_u^2] / E[n_u]^2 of events per user: e^(sigma^2) of synthetic_shop's
                              # lognormal(0, 1) activity (co-occurrence pairs = n_users e^2 x this)


def cooccurrence_pairs(n_users: int, n_items: int, n_events: int) -> float:
    """Expected sum over users of |I_u|^2 (the multiply-adds of X^T X), capped at n_items^2 per user."""
    e = n_events / max(n_users, 1)
    return float(n_users) * min(e * e * ACTIVITY_DISPERSION, float(n_items) ** 2)


def train_csr_bytes(n_users: int, n_events: int) -> float:
    """Peak bytes of building the training CSR (``Interactions.to_csr``): 24 per event + indptr."""
    return CSR_BYTES_PER_EVENT * float(n_events) + 8.0 * (n_users + 1)


@dataclass(frozen=True)
class CostEstimate:
    """Predicted peak memory (bytes, on top of the data) and seconds of one fit, and what drives them."""

    memory_bytes: float
    seconds: float
    memory_term: str = "the training CSR"
    time_term: str = "one pass over the events"

    def exceeds(self, memory_bytes: float | None = None, seconds: float | None = None) -> list[str]:
        """Why this fit is beyond a machine with ``memory_bytes`` and ``seconds`` (empty: it fits)."""
        why = []
        if memory_bytes is not None and self.memory_bytes > memory_bytes:
            why.append(f"needs {human_bytes(self.memory_bytes)} for {self.memory_term} "
                       f"(budget {human_bytes(memory_bytes)})")
        if seconds is not None and self.seconds > seconds:
            why.append(f"needs {human_seconds(self.seconds)} to fit ({self.time_term}; "
                       f"budget {human_seconds(seconds)})")
        return why

    def as_dict(self, prefix: str = "est_") -> dict:
        return {f"{prefix}memory_mb": self.memory_bytes / 2**20, f"{prefix}fit_s": self.seconds,
                f"{prefix}memory_term": self.memory_term, f"{prefix}time_term": self.time_term}

    def __add__(self, other: "CostEstimate") -> "CostEstimate":
        """Two steps run one after the other: the larger peak, the summed time."""
        big = self if self.memory_bytes >= other.memory_bytes else other
        return CostEstimate(max(self.memory_bytes, other.memory_bytes), self.seconds + other.seconds,
                            big.memory_term, f"{self.time_term}, then {other.time_term}")


def human_bytes(n: float) -> str:
    """``1.8 TiB``-style size (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_seconds(s: float) -> str:
    """``0.05 s``, ``12 s``, ``4.2 min``, ``3.1 h``, ``9.0 days``."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"


def power_of_ten(n: int) -> str:
    """``10^6`` for exact powers of ten, else ``1,234,567``."""
    k = len(str(int(n))) - 1
    return f"10^{k}" if n == 10 ** k and k > 1 else f"{int(n):,}"
