"""Accelerators: wrappers of a trained model that are Recommenders themselves.

    fast = ANNIndex(model, backend="hnsw", ef_search=64)      # approximate top-k (faiss)
    small = Quantized(model, dtype="int8")                    # int8 tables, per-row scales
    Pruned(model, sparsity=0.5), LowRank(model, rank=16)      # magnitude pruning, SVD
    Cached(model, capacity=10_000)                            # result / user-vector LRU caches
    Batched(model, max_batch=64, max_wait_ms=2)               # request micro-batching
    Compiled(torch_model)                                     # torch.compile of the scoring path
    Distilled(teacher, student="mf")                          # ranking distillation into a small MF
They compose: ``Cached(ANNIndex(Quantized(model)))``.
"""
from .ann import ANNIndex, build_index, overlap_at_k
from .base import Wrapper
from .batching import Batched, batch_curve, poisson_arrivals, summarize_serving
from .cache import Cached, zipf_requests
from .compile import Compiled
from .distill import Distilled
from .prune import LowRank, Pruned
from .tables import TableWrapper, embedding_bytes
from .quantize import Quantized, dequantize_rows, quantize_rows

__all__ = ["Wrapper", "TableWrapper", "embedding_bytes", "ANNIndex", "build_index", "overlap_at_k",
           "Quantized", "quantize_rows", "dequantize_rows", "Pruned", "LowRank", "Cached",
           "zipf_requests", "Batched", "batch_curve", "poisson_arrivals", "summarize_serving",
           "Compiled", "Distilled"]
