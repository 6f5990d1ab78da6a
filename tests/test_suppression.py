import numpy as np
import pandas as pd
import pytest
import torch
from sae_lens import SAE
from sae_lens.saes.sae import TrainStepInput
from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig

from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.saes import get_sae, load_checkpoints
from sae_failures.engine.specs import SAESpec
from sae_failures.studies.suppression import experiment as suppression
from sae_failures.variants.scaled import METHODS, ScaledTrainingSAE, ScaledTrainingSAEConfig
from sae_failures.variants.unit_norm import UnitNormTrainingSAE, UnitNormTrainingSAEConfig

from .conftest import write_store


def step_input(x: torch.Tensor, l1: float = 0.0) -> TrainStepInput:
    return TrainStepInput(sae_in=x, coefficients={"l1": l1}, dead_neuron_mask=None,
                          n_training_steps=0, is_logging_step=False)


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_trains_exactly_its_parameter_set(method):
    torch.manual_seed(0)
    sae = ScaledTrainingSAE(ScaledTrainingSAEConfig(d_in=6, d_sae=10, finetune_method=method,
                                                    apply_b_dec_to_input=False))
    sae.apply_constraints()  # fine-tuning starts from a trained SAE: unit-norm rows
    before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    opt = torch.optim.Adam([p for p in sae.parameters() if p.requires_grad], lr=0.1)
    sae.training_forward_pass(step_input(torch.randn(32, 6), l1=0.1)).loss.backward()
    opt.step()
    changed = {n for n, p in sae.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(METHODS[method])


def test_scale_of_ones_reproduces_the_original_sae_exactly():
    torch.manual_seed(0)
    base = StandardSAE(StandardSAEConfig(d_in=6, d_sae=10, apply_b_dec_to_input=False))
    with torch.no_grad():
        base.b_enc.normal_()
        base.b_dec.normal_()
    scaled = ScaledTrainingSAE(ScaledTrainingSAEConfig(d_in=6, d_sae=10, apply_b_dec_to_input=False))
    scaled.load_start(base, activation_scale=1.0)
    x = torch.randn(20, 6)
    assert torch.equal(scaled(x), base(x))


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="Valid methods: Baseline, Scale"):
        ScaledTrainingSAEConfig(d_in=2, d_sae=2, finetune_method="Bias")


def test_scale_finetuning_recovers_a_known_shrinkage(tmp_data):
    """An SAE whose encoder halves every true activation: the fitted scale must be 2."""
    gen = torch.Generator().manual_seed(0)
    features = torch.linalg.qr(torch.randn(16, 16, generator=gen))[0][:3]
    acts = (torch.rand(8192, 3, generator=gen) < 0.3).float() * (1 + torch.rand(8192, 3, generator=gen))
    store = write_store(acts @ features)
    base = StandardSAE(StandardSAEConfig(d_in=16, d_sae=3, apply_b_dec_to_input=False))
    with torch.no_grad():
        base.W_enc.copy_(0.5 * features.T)
        base.W_dec.copy_(features)
        base.b_enc.zero_()
        base.b_dec.zero_()
    base.cfg.metadata.activation_scaling_factor = 1.0
    base_dir = tmp_data / "data" / "base_sae"
    base.save_model(base_dir)
    spec = SAESpec("scaled_finetune", store.spec, width=3, sparsity=0.0, n_tokens=256 * 300,
                   lr=1e-2, batch_size=256, init_from="base_sae", epochs=10,
                   options=(("finetune_method", "Scale"), ("apply_b_dec_to_input", False)))
    tuned = get_sae(spec, store)
    scale = suppression.decoder_scale(tuned.W_dec, base.W_dec)
    assert scale == pytest.approx(np.full(3, 2.0), abs=1e-2)
    assert SAE.load_from_disk(spec.path()).cfg.architecture() == "standard"


@pytest.mark.parametrize("p", [0.02, 0.4])
def test_single_feature_example_learns_m_minus_cd_over_2_whatever_p(p):
    learned = suppression.train_single_feature(p=p, m=1.0, c=0.05, d=16, steps=200)
    assert learned == pytest.approx(suppression.predicted_activation(1.0, 0.05, 16), abs=2e-3)
    assert suppression.train_single_feature(p=p, m=0.3, c=0.05, d=16, steps=200) == 0.0


def test_unit_norm_decoder_gradient_has_no_parallel_component():
    torch.manual_seed(0)
    sae = UnitNormTrainingSAE(UnitNormTrainingSAEConfig(d_in=5, d_sae=7, l1_coefficient=0.1))
    sae.training_forward_pass(step_input(torch.randn(16, 5), l1=0.1)).loss.backward()
    rows = torch.nn.functional.normalize(sae.W_dec.detach(), dim=1)
    assert (sae.W_dec.grad * rows).sum(1).abs().max() < 1e-6
    assert sae.W_dec.grad.abs().max() > 1e-4


def test_partial_correlation_and_frequency_jump():
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=2000), rng.normal(size=2000)
    y = x + 0.1 * rng.normal(size=2000)
    assert suppression.partial_correlation(y, x, z) > 0.99
    assert abs(suppression.partial_correlation(y, z, x)) < 0.1
    freq = np.concatenate([np.zeros(5), np.full(10, 1e-6), np.full(20, 1e-2), [2e-2]])
    threshold, decades = suppression.frequency_jump(freq, 1_000_000)
    assert threshold == pytest.approx(1e-2) and decades == pytest.approx(4.0)


def test_never_active_latents_are_the_dead_side_of_the_jump():
    """FS-9 once dropped never-active latents, so on 32k tokens with no near-dead latents the
    largest gap was log10(2), one firing to two; the dead side now counts, at half a firing."""
    n = 1_000_000
    freq = np.concatenate([np.zeros(500), np.full(3, 1 / n), np.logspace(-4, -1, 200)])
    threshold, decades = suppression.frequency_jump(freq, n)
    assert threshold == pytest.approx(1e-4) and decades == pytest.approx(2.0)  # 1e-6 up to 1e-4
    threshold, decades = suppression.frequency_jump(np.concatenate([np.zeros(5), [1 / n, 2 / n, 3 / n]]), n)
    assert decades == pytest.approx(np.log10(2))  # never active up to one firing: no jump


def test_dataset_stats_count_every_row_once(sparse_store):
    """Firings over a store's rows, however its batches are drawn, equal ``latent_stats`` on the same rows."""
    store, _ = sparse_store
    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=16, d_sae=8))
    whole = suppression.latent_stats(sae, store.tensor())
    counted = suppression.dataset_stats(sae, store, 10 * store.n_tokens)  # at most one pass
    assert counted.n_tokens == store.n_tokens == whole.n_tokens
    np.testing.assert_allclose(counted.frequency, whole.frequency)
    np.testing.assert_allclose(counted.strength, whole.strength, rtol=1e-5)


def test_fractional_reduction():
    assert suppression.fractional_reduction(10.0, 7.0) == pytest.approx(0.3)
    assert suppression.fractional_reduction(40.0, 35.0, perfect=20.0) == pytest.approx(0.25)


def test_finetune_spec_drops_the_penalty_except_for_baseline(sparse_store):
    store, _ = sparse_store
    from sae_failures.engine.specs import cache_relpath, standard_spec

    base = standard_spec(store.spec, n_tokens=1024, batch_size=256, d_model=16)
    for method in METHODS:
        spec = suppression.finetune_spec(base, method, n_tokens=512, batch_size=64, stored_tokens=store.n_tokens)
        assert spec.sparsity == (base.sparsity if method == "Baseline" else 0.0)
        assert spec.init_from == cache_relpath(base)
        assert dict(spec.options) == {"finetune_method": method, "apply_b_dec_to_input": False}
        assert (spec.lr_decay_frac, spec.checkpoint_tokens, spec.batch_size) == (0.0, (256,), 64)


def test_a_finetune_reads_its_convergence_over_the_last_doubling(sparse_store, tmp_data):
    """The fine-tunes once decayed their learning rate to 0 over the last fifth, the very span
    the convergence check compared, so it could not see a run still moving. At a constant rate
    the halfway snapshot is the run of half the length, bit for bit, and the held-out change
    between the two is what the rule reads."""
    import dataclasses

    from sae_failures.engine.specs import standard_spec

    store, _ = sparse_store
    base = standard_spec(store.spec, n_tokens=1024, batch_size=256, d_model=16)
    get_sae(base, store)
    spec = suppression.finetune_spec(base, "Decoder", n_tokens=2048, batch_size=64, stored_tokens=store.n_tokens)
    assert spec.epochs == -(-2048 // store.n_tokens)
    get_sae(spec, store)
    half = get_sae(dataclasses.replace(spec, n_tokens=1024, checkpoint_tokens=()), store)
    snapshots = load_checkpoints(spec)
    assert sorted(snapshots) == [1024, 2048]
    torch.testing.assert_close(snapshots[1024].W_dec, half.W_dec, rtol=0, atol=0)
    x = store.tensor()
    mse = [reconstruction_metrics(snapshots[t], x)["mse"] for t in (1024, 2048)]
    assert suppression.heldout_change(spec, x) == pytest.approx(mse[1] / mse[0] - 1)
    convergence = pd.DataFrame({"Decoder": [0.004, -0.02], "Scale": [0.001, 0.0]}, index=[3, 9])
    assert suppression.convergence_note(convergence, ["Scale"]).startswith("Scale fine-tunes converged")
    assert "NOT converged" in suppression.convergence_note(convergence, ["Scale", "Decoder"])
    assert "(Decoder, layer 9;" in suppression.convergence_note(convergence, ["Scale", "Decoder"])


def test_post_coefficient_maps_to_the_scaled_convention():
    """||y' - x'||^2 + lambda |f'| on x' = a x equals a^2 d times the post's loss on x."""
    torch.manual_seed(0)
    d, a, c = 12, 2.5, 0.01
    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=20, apply_b_dec_to_input=False))
    with torch.no_grad():
        sae.W_dec.copy_(torch.nn.functional.normalize(sae.W_dec, dim=1))
        sae.b_enc.normal_()
    x = torch.randn(64, d)
    f, y = sae.encode(x), sae(x)
    post = (y - x).pow(2).sum(-1).mean() / d + c * f.sum(-1).mean()
    scaled = StandardSAE(StandardSAEConfig(d_in=d, d_sae=20, apply_b_dec_to_input=False))
    scaled.load_state_dict({**sae.state_dict(), "b_enc": a * sae.b_enc, "b_dec": a * sae.b_dec})
    xs = a * x
    ours = (scaled(xs) - xs).pow(2).sum(-1).mean() + suppression.l1_from_post(c, a, d) * scaled.encode(xs).sum(-1).mean()
    assert ours.item() == pytest.approx((a**2 * d * post).item(), rel=1e-5)


def test_release_import_keeps_the_function_and_the_scaled_convention(sparse_store, monkeypatch):
    """A (mocked) sae-lens release lands in the cache as if trained here, and fine-tunes from there."""
    from sae_failures.engine import saes
    from sae_failures.engine.specs import release_spec

    store, _ = sparse_store
    torch.manual_seed(0)
    release = StandardSAE(StandardSAEConfig(d_in=16, d_sae=8))  # apply_b_dec_to_input=True
    with torch.no_grad():
        release.W_dec.mul_(3.0)  # rows far from unit norm
        release.b_enc.normal_()
        release.b_dec.normal_()
    monkeypatch.setattr(saes, "require_repo", lambda repo, what: None)
    monkeypatch.setattr(saes.SAE, "from_pretrained",
                        classmethod(lambda cls, rel, sae_id, device="cpu": release))
    x = store.tensor(256)
    expected = release(x)
    spec = release_spec("some-release", "blocks.0.hook_resid_post", store.spec, 8, 0.5, 256)
    imported = get_sae(spec, store)
    assert torch.allclose(imported(x), expected, atol=1e-5)
    scale = imported.cfg.metadata.activation_scaling_factor
    assert torch.allclose(imported.W_dec.norm(dim=1), torch.full((8,), 1 / scale), atol=1e-5)
    tuned = get_sae(suppression.finetune_spec(spec, "Scale", n_tokens=512, batch_size=128,
                                              stored_tokens=store.n_tokens), store)
    assert tuned.W_dec.shape == (8, 16)
    with pytest.raises(ValueError, match="width 8; the spec expects a standard SAE of width 32"):
        get_sae(release_spec("some-release", "other", store.spec, 32, 0.5, 256), store)
