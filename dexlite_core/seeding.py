"""Deterministic seeds derived from names, so reruns, shards and resumes agree."""
from __future__ import annotations

import hashlib
import os

import torch


def stable_seed(*parts) -> int:
    """A 63-bit seed from any printable parts, e.g. ``stable_seed(seed, "curate", code)``."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2 ** 63 - 1)


def deterministic_torch() -> None:
    """Make torch pick deterministic kernels, so the same seed gives the same bytes.

    On CPU this costs nothing measurable (training: 540-690 samples/s either way) and removes
    float-noise differences between runs that otherwise grow into different checkpoints. On
    CUDA an op without a deterministic kernel warns instead of failing.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)
