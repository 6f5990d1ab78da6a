import math

import numpy as np
import pytest
import torch
from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig

from sae_failures.engine import metrics, splicing
from sae_failures.engine.activations import sink_mask


def sae_with(w_enc: torch.Tensor, w_dec: torch.Tensor) -> StandardSAE:
    d_in, d_sae = w_enc.shape
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae))
    with torch.no_grad():
        sae.W_enc.copy_(w_enc)
        sae.W_dec.copy_(w_dec)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def identity_sae(d: int) -> StandardSAE:
    """ReLU(x) - ReLU(-x) = x: reconstructs exactly with 2d latents."""
    eye = torch.eye(d)
    return sae_with(torch.cat([eye, -eye], dim=1), torch.cat([eye, -eye], dim=0))


def test_l0_counts_nonzeros():
    f = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, -1.0, 0.0]])
    assert metrics.l0(f) == pytest.approx(4 / 3)


def test_mse_sums_over_d_and_averages_over_tokens():
    x = torch.zeros(2, 3)
    x_hat = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    assert metrics.mse(x, x_hat) == pytest.approx((3 + 4) / 2)


def test_fvu_is_zero_for_perfect_and_one_for_the_mean():
    x = torch.randn(100, 5)
    assert metrics.fvu(x, x) == 0
    assert metrics.fvu(x, x.mean(0).expand_as(x)) == pytest.approx(1.0)
    assert metrics.explained_variance(x, x) == 1


def test_l2_ratio_of_a_scaled_reconstruction():
    x = torch.randn(50, 8)
    assert metrics.l2_ratio(x, 0.5 * x) == pytest.approx(0.5)


def test_reconstruction_metrics_of_a_shrunk_reconstruction_with_one_dead_latent():
    """x_hat = 0.7 x exactly (identity encoder on positive inputs, decoder 0.7 I), and a fifth
    latent whose encoder row is negative on every input: gamma = L2 ratio = 0.7, one dead."""
    from sae_lens import StandardSAE, StandardSAEConfig

    d = 4
    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=d + 1, apply_b_dec_to_input=False))
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([torch.eye(d), -torch.ones(d, 1)], dim=1))
        sae.W_dec.copy_(torch.cat([0.7 * torch.eye(d), torch.zeros(1, d)]))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.rand(200, d, generator=torch.Generator().manual_seed(0)) + 0.1
    m = metrics.reconstruction_metrics(sae, x, batch_size=64)
    assert m["gamma"] == pytest.approx(0.7) and m["l2_ratio"] == pytest.approx(0.7)
    assert (m["n_dead"], m["dead_fraction"], m["l0"], m["n_eval_tokens"]) == (1, pytest.approx(0.2), d, 200)
    assert m["mse"] == pytest.approx(float((0.09 * x.pow(2)).sum(1).mean()))


def test_alignment_scores_match_definition():
    gen = torch.Generator().manual_seed(0)
    w_enc, w_dec = torch.randn(4, 6, generator=gen), torch.randn(6, 4, generator=gen)
    sae = sae_with(w_enc, w_dec)
    expected = torch.diagonal(w_enc.T @ w_dec.T)  # paper orientation: W_enc (6,4), W_dec (4,6)
    assert torch.allclose(metrics.alignment_scores(sae), expected, atol=1e-6)
    assert torch.allclose(metrics.alignment_scores(identity_sae(3)), torch.ones(6))


def test_ce_loss_recovered_formula():
    assert metrics.ce_loss_recovered(h_clean=2.0, h_sae=2.5, h_zero=7.0) == pytest.approx(0.9)


def test_reconstruction_metrics_of_exact_sae():
    x = torch.randn(64, 5)
    out = metrics.reconstruction_metrics(identity_sae(5), x)
    assert out["mse"] == pytest.approx(0, abs=1e-10)
    assert out["l2_ratio"] == pytest.approx(1.0)
    assert out["gamma"] == pytest.approx(1.0)
    assert out["l0"] == pytest.approx(5.0)  # exactly one of +x_j / -x_j fires per coordinate


def test_sink_mask_marks_separators_and_outliers():
    acts = torch.ones(1, 5, 4)
    acts[0, 3] *= 100  # a massive activation
    tokens = torch.tensor([[0, 5, 6, 7, 8]])
    assert sink_mask(acts, tokens, separator=0).tolist() == [[True, False, False, True, False]]


@pytest.mark.parametrize("hook", ["blocks.3.hook_resid_post", "blocks.3.hook_mlp_out", "blocks.3.hook_attn_out"])
def test_ce_splice_identity_recovers_everything_and_zero_sae_nothing(offline_model, hook):
    model = offline_model
    rng = np.random.default_rng(0)
    contexts = np.concatenate([np.zeros((2, 1)), rng.integers(100, 40000, (2, 15))], 1).astype(np.int32)
    exact = splicing.ce_losses(model, identity_sae(model.cfg.d_model), hook, contexts, separator=0)
    assert exact.sae == pytest.approx(exact.clean, abs=1e-4)
    assert exact.recovered == pytest.approx(1.0, abs=1e-3)
    d = model.cfg.d_model
    zero = splicing.ce_losses(model, sae_with(torch.zeros(d, 4), torch.zeros(4, d)), hook,
                             contexts, separator=0)
    assert zero.sae == pytest.approx(zero.zero, abs=1e-5)
    assert zero.recovered == pytest.approx(0.0, abs=1e-4)
    assert exact.perplexity_clean == pytest.approx(math.exp(exact.clean))
    assert exact.n_tokens == 2 * 15


def test_the_zero_ablation_cost_is_the_budget_ce_recovered_divides_by(offline_model):
    hook = "blocks.3.hook_attn_out"
    contexts = np.concatenate([np.zeros((2, 1)), np.random.default_rng(2).integers(100, 40000, (2, 15))], 1)
    losses = splicing.ce_losses(offline_model, identity_sae(offline_model.cfg.d_model), hook,
                                contexts.astype(np.int32), separator=0)
    cost = splicing.zero_ablation_cost(offline_model, hook, contexts.astype(np.int32), separator=0)
    assert cost == pytest.approx(losses.zero - losses.clean, abs=1e-6)


def test_passes_start_at_the_hooks_block_and_match_the_full_forward(offline_model):
    hook = "blocks.3.hook_mlp_out"
    assert splicing._start_layer(hook) == 3 and splicing._start_layer("blocks.0.mlp.hook_post") == 0
    contexts = np.concatenate([np.zeros((2, 1)), np.random.default_rng(1).integers(100, 40000, (2, 15))], 1)
    tokens = torch.from_numpy(contexts).long()
    with torch.no_grad():
        full = offline_model(tokens, return_type="loss", loss_per_token=True)
    scored = (tokens[:, 1:] != 0).float()
    clean = splicing.ce_losses(offline_model, identity_sae(offline_model.cfg.d_model), hook,
                              contexts.astype(np.int32), separator=0).clean
    assert clean == pytest.approx(float((full * scored).sum() / scored.sum()), abs=1e-4)
