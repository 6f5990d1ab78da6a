"""Tied SAE and the activation-orthogonality auxiliary loss (BL-7)."""

from __future__ import annotations

import pytest
import torch
from sae_lens import SAE
from sae_lens.saes.sae import TrainStepInput

from sae_failures.variants.tied import (
    RunningMax,
    TiedAuxTrainingSAEConfig,
    TiedTrainingSAE,
    TiedTrainingSAEConfig,
    activation_orthogonality_loss,
    aux_ramp,
)


def step_input(x: torch.Tensor, l1: float = 1e-3) -> TrainStepInput:
    return TrainStepInput(sae_in=x, coefficients={"l1": l1}, dead_neuron_mask=None,
                          n_training_steps=0, is_logging_step=False)


def test_tied_encoder_is_the_decoder_transpose_through_training_and_saving(tmp_path):
    torch.manual_seed(0)
    sae = TiedTrainingSAE(TiedTrainingSAEConfig(d_in=6, d_sae=4, l1_coefficient=1e-3))
    assert {n for n, _ in sae.named_parameters()} == {"W_dec", "b_dec"}
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(5):
        out = sae.training_forward_pass(step_input(torch.randn(32, 6)))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert torch.equal(sae.W_enc, sae.W_dec.T)
    assert torch.equal(sae.b_enc, torch.zeros(4))
    x = torch.randn(10, 6)
    expected = torch.relu((x - sae.b_dec) @ sae.W_dec.T)
    assert torch.allclose(sae.encode(x), expected, atol=1e-6)

    sae.save_inference_model(tmp_path / "tied")
    loaded = SAE.load_from_disk(tmp_path / "tied")
    assert loaded.cfg.architecture() == "standard"  # any sae-lens user can load it
    assert torch.equal(loaded.W_enc, sae.W_dec.T.detach())
    assert torch.allclose(loaded.encode(x), expected, atol=1e-6)
    assert torch.allclose(loaded.decode(loaded.encode(x)), sae.decode(sae.encode(x)), atol=1e-6)


def test_aux_loss_is_zero_above_threshold_and_the_cosine_formula_below():
    x_minus_b = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])  # B = 3, D = 2
    W = torch.tensor([[1.0, 0.0], [0.0, 3.0]])  # K = 2 latents
    dots = x_minus_b @ W.T
    acts = torch.tensor([[5.0, 0.0], [0.5, 2.0], [0.0, 9.0]])
    tau = torch.tensor([1.0, 3.0])
    loss = activation_orthogonality_loss(dots, x_minus_b.square().sum(-1), W.square().sum(-1), acts, tau, 10.0)
    # Penalised (act <= tau): (0,1) cos 0; (1,0) cos 1/sqrt2; (1,1) cos 1/sqrt2; (2,0) cos 0.
    expected = 10.0 / (3 * 2) * (0.0 + 0.5 + 0.5 + 0.0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    above = activation_orthogonality_loss(dots, x_minus_b.square().sum(-1), W.square().sum(-1),
                                          acts + 100.0, tau, 10.0)
    assert above.item() == 0.0


def test_aux_ramp_and_running_max_follow_the_posts_schedule():
    assert aux_ramp(0, 50, 50) == 0.0 and aux_ramp(49, 50, 50) == 0.0
    assert aux_ramp(75, 50, 50) == 0.5 and aux_ramp(500, 50, 50) == 1.0
    running = RunningMax(window=2, shape=(2,))
    assert torch.equal(running.value, torch.zeros(2))
    for batch_max in ([3.0, 1.0], [1.0, 2.0], [2.0, 0.5]):
        running.update(torch.tensor(batch_max))
    assert torch.equal(running.value, torch.tensor([2.0, 2.0]))  # the first batch left the window


def test_tied_aux_sae_adds_the_loss_only_after_its_delay():
    cfg = TiedAuxTrainingSAEConfig(d_in=4, d_sae=3, l1_coefficient=0.0, aux_delay_samples=64,
                                   aux_warmup_samples=64)
    torch.manual_seed(1)
    sae = TiedTrainingSAE(cfg)
    x = torch.randn(64, 4)
    first = sae.training_forward_pass(step_input(x))
    assert first.losses["orthogonality_loss"].item() == 0.0
    sae.training_forward_pass(step_input(x))  # ramp 0 at 64 samples
    third = sae.training_forward_pass(step_input(x))  # 128 samples: ramp 1
    assert third.losses["orthogonality_loss"].item() > 0.0
    assert TiedAuxTrainingSAEConfig(d_in=4, d_sae=3).aux_coefficient == 10_000.0


def test_tied_sae_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="apply_b_dec_to_input=True"):
        TiedTrainingSAE(TiedTrainingSAEConfig(d_in=4, d_sae=3, apply_b_dec_to_input=False))


def test_folding_an_activation_scale_keeps_the_function_on_raw_inputs(tmp_path):
    """Trained on x' = a x, the folded SAE on x gives the same latents and x_hat' / a."""
    torch.manual_seed(0)
    sae = TiedTrainingSAE(TiedTrainingSAEConfig(d_in=6, d_sae=4))
    with torch.no_grad():
        sae.W_dec.copy_(torch.nn.functional.normalize(torch.randn(4, 6), dim=1))
        sae.b_dec.normal_()
    a, x = 3.0, torch.randn(32, 6)
    with torch.no_grad():
        latents, recon = sae.encode(a * x), sae(a * x)
        sae.fold_activation_norm_scaling_factor(a)
        torch.testing.assert_close(sae.encode(x), latents)
        torch.testing.assert_close(sae(x), recon / a)
    sae.save_inference_model(tmp_path / "folded")
    reloaded = SAE.load_from_disk(tmp_path / "folded")
    torch.testing.assert_close(reloaded.W_enc, a ** 2 * reloaded.W_dec.T)  # W_enc = a W^T, W_dec = W / a
    torch.testing.assert_close(reloaded.encode(x), latents)


@pytest.mark.parametrize("variant", ["tied", "tied_aux"])
def test_tied_saes_train_on_stored_activations_through_get_sae(sparse_store, variant):
    """The tied variants train like any other variant on a store (activation scale folded in)."""
    from sae_failures.engine.metrics import reconstruction_metrics
    from sae_failures.engine.saes import get_sae
    from sae_failures.engine.specs import SAESpec

    store, _ = sparse_store
    spec = SAESpec(variant, store.spec, width=8, sparsity=0.1, n_tokens=32768, lr=3e-2, batch_size=256,
                   epochs=4)
    sae = get_sae(spec, store)
    scale = sae.cfg.metadata.activation_scaling_factor
    assert scale != pytest.approx(1.0)  # the store's norms are not sqrt(d): the fold matters
    torch.testing.assert_close(sae.W_enc, scale ** 2 * sae.W_dec.T)
    # a fold that broke the function would not reconstruct raw activations
    assert reconstruction_metrics(sae, store.tensor())["explained_variance"] > 0.95
