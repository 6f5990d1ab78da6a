"""Aligned training (AB-6) and the bimodality measure (AB-2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sae_lens import SAE
from sae_lens.saes.sae import TrainStepInput

from sae_failures.engine.metrics import alignment_scores, bimodality
from sae_failures.engine.saes import get_sae
from sae_failures.engine.specs import SAESpec
from sae_failures.variants.aligned import (
    AlignedTopKTrainingSAE,
    AlignedTopKTrainingSAEConfig,
    AlignedTrainingSAE,
    AlignedTrainingSAEConfig,
    aligned_encoder,
)

D, K = 12, 20


def build(kind: str):
    torch.manual_seed(0)
    if kind == "aligned":
        return AlignedTrainingSAE(AlignedTrainingSAEConfig(d_in=D, d_sae=K, l1_coefficient=1e-2))
    return AlignedTopKTrainingSAE(AlignedTopKTrainingSAEConfig(d_in=D, d_sae=K, k=3))


def train_steps(sae, steps: int = 20) -> None:
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for step in range(steps):
        x = torch.randn(64, D) @ torch.randn(D, D)
        out = sae.training_forward_pass(TrainStepInput(
            sae_in=x, coefficients={"l1": 1e-2}, dead_neuron_mask=torch.zeros(K, dtype=torch.bool),
            n_training_steps=step, is_logging_step=False))
        opt.zero_grad()
        out.loss.backward()
        opt.step()


@pytest.mark.parametrize("kind", ["aligned", "aligned_topk"])
def test_alignment_scores_stay_one_through_training(kind):
    sae = build(kind)
    before = sae.W_dec.detach().clone()
    train_steps(sae)
    assert not torch.allclose(sae.W_dec, before)  # it did train
    assert torch.allclose(alignment_scores(sae), torch.ones(K), atol=1e-5)


def test_the_last_column_of_A_is_not_a_parameter():
    sae = build("aligned")
    names = {n: p.shape for n, p in sae.named_parameters()}
    assert "W_enc" not in names and names["A"] == (D - 1, K)
    assert sum(p.numel() for p in sae.parameters()) == (D - 1) * K + K * D + K + D  # K fewer than standard
    encoder = aligned_encoder(sae.A, sae.W_dec)
    assert torch.equal(sae.W_enc, encoder)


@pytest.mark.parametrize("kind", ["aligned", "aligned_topk"])
def test_saved_aligned_sae_loads_in_plain_sae_lens_and_encodes_the_same(tmp_path, kind):
    sae = build(kind)
    train_steps(sae, 5)
    sae.save_inference_model(tmp_path / kind)
    loaded = SAE.load_from_disk(tmp_path / kind)
    assert loaded.cfg.architecture() == ("standard" if kind == "aligned" else "topk")
    x = torch.randn(16, D)
    assert torch.allclose(loaded.encode(x), sae.encode(x), atol=1e-5)
    assert torch.allclose(alignment_scores(loaded), torch.ones(K), atol=1e-5)


def test_get_sae_trains_aligned_saes_and_folds_the_activation_scale(sparse_store):
    store, _ = sparse_store
    spec = SAESpec("aligned", store.spec, width=8, sparsity=1e-3, n_tokens=4096, batch_size=256)
    sae = get_sae(spec, store)
    assert sae.cfg.metadata.activation_scaling_factor != 1.0  # a scale was folded in
    assert torch.allclose(alignment_scores(sae), torch.ones(8), atol=1e-4)


def test_bimodality_separates_two_gaussians_from_one():
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.normal(0.05, 0.03, 800), rng.normal(0.95, 0.05, 3200)])
    one = rng.normal(0.9, 0.05, 4000)
    b2, b1 = bimodality(two), bimodality(one)
    assert b2.means == pytest.approx((0.05, 0.95), abs=0.01)
    assert b2.weights == pytest.approx((0.2, 0.8), abs=0.01)
    assert b2.sarle_bimodal and not b1.sarle_bimodal
    assert b1.sarle == pytest.approx(1 / 3, abs=0.05)  # Sarle's b of a normal distribution
    with pytest.raises(ValueError, match="at least 4 values"):
        bimodality([1.0, 2.0])
