"""Shared fixtures: an isolated cache root, the real offline model, tiny synthetic stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sae_failures.engine.activations import ActivationStore
from sae_failures.engine.specs import ActivationSpec


@pytest.fixture(scope="session")
def offline_model():
    """SmolLM2-135M from the PyPI-shipped GGUF (converted once into the real data/ cache)."""
    from sae_failures.engine.model import OFFLINE_MODEL, load_model

    return load_model(OFFLINE_MODEL, dtype="float32")


@pytest.fixture
def tmp_data(tmp_path, monkeypatch):
    """Point every cache at a fresh folder."""
    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SAE_FAILURES_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("SAE_FAILURES_RECORDS", str(tmp_path / "results"))
    return tmp_path


def write_store(acts: torch.Tensor, hook: str = "blocks.0.hook_resid_post") -> ActivationStore:
    """Write ``acts`` in the store's on-disk format and open it (model name 'synthetic')."""
    spec = ActivationSpec("synthetic", hook, "none", "train", 2, acts.shape[0], "float32")
    path = spec.path()
    path.mkdir(parents=True)
    np.save(path / "acts.npy", acts.numpy().astype(np.float32))
    (path / "meta.json").write_text(json.dumps({"d": acts.shape[1]}))
    return ActivationStore(spec)


@pytest.fixture
def sparse_store(tmp_data):
    """8192 samples of 3 sparse orthogonal features in 16 dims (a known dictionary)."""
    gen = torch.Generator().manual_seed(0)
    features = torch.linalg.qr(torch.randn(16, 16, generator=gen))[0][:3]
    fires = (torch.rand(8192, 3, generator=gen) < 0.3).float()
    mags = 1 + torch.rand(8192, 3, generator=gen)
    return write_store((fires * mags) @ features * 4.0), features
