"""Where tensors live: a profile's device resolved on the machine at hand, results brought home.

Every profile asks for ``auto``: the first of cuda, mps and cpu that this machine has, so
``make figures`` on a GPU box uses the GPU. ``make figures DEVICE=cuda:1`` (the notebooks'
``device`` parameter) overrides it. Analysis code reads results with ``to_numpy``, which
moves them to the CPU first: ``Tensor.numpy()`` raises on any other device.
"""

from __future__ import annotations

import numpy as np
import torch

AUTO = "auto"
DEVICE_TYPES = ("cuda", "mps", "cpu")


def available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return kind == "cpu"


def resolve_device(name: str = AUTO) -> str:
    """``auto`` -> cuda, mps or cpu, whichever this machine has first; else ``name`` checked to exist here."""
    if name in ("", AUTO):
        return next(kind for kind in DEVICE_TYPES if available(kind))
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"Unknown device {name!r}. Valid: auto, cpu, cuda, cuda:<index>, mps.")
    if not available(device.type):
        raise ValueError(f"Device {name!r} is not available on this machine. Valid here: auto, "
                         + ", ".join(k for k in DEVICE_TYPES if available(k)) + ".")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"Device {name!r} does not exist: this machine has {torch.cuda.device_count()} "
                         f"CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    return name


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """``t`` as a numpy array, wherever it lives (detached, on the CPU)."""
    return t.detach().cpu().numpy()
