"""Stacked toy training: the same objective as sae-lens, members independent, cached SAEs reload."""

from __future__ import annotations

import pytest
import torch
from sae_lens import SAE

from sae_failures.engine.toy_data import build_dictionary, build_generator
from sae_failures.engine.toy_training import (
    PatternBatcher,
    ToyRun,
    _Stacked,
    aux_options,
    feature_space_losses,
    train_group,
)
from sae_failures.studies.broken_latents.toy_worlds import get_setup
from tests.test_tied import step_input


@pytest.mark.parametrize("architecture", ["untied", "tied", "tied_aux"])
def test_feature_space_loss_and_gradients_equal_sae_lens_on_explicit_inputs(architecture):
    run = ToyRun(get_setup("cooc_a"), architecture, 5, seed=1, l1_coefficient=3e-3, n_samples=64, batch_size=64,
                 options=(("aux_delay_samples", 0), ("aux_warmup_samples", 0)) if architecture == "tied_aux" else ())
    sae = run.build()
    with torch.no_grad():
        sae.b_dec.normal_()
    setup = get_setup("cooc_a")
    f = build_generator(setup, seed=3).sample(64)
    phi = build_dictionary(setup, 1).feature_vectors.detach()
    stacked = _Stacked.from_saes([sae], [run.tied])
    aux = architecture == "tied_aux"
    if aux:  # the sae-lens SAE reads its threshold from previous batches: give both the same one
        sae.running_max.update(torch.full((5,), 0.5 / 0.7))
    out = feature_space_losses(stacked, f.T[None], phi[None], torch.tensor([run.l1_coefficient]),
                               aux_coefficient=torch.tensor([10_000.0]) if aux else None,
                               thresholds=torch.full((1, 5), 0.5) if aux else None, with_constant=True)
    out["loss"].sum().backward()
    stacked.project_and_normalise_rows(after_step=False)  # what the sae-lens variant's gradient hook does
    reference = sae.training_forward_pass(step_input(f @ phi, run.l1_coefficient))
    reference.loss.backward()
    assert out["loss"].item() == pytest.approx(reference.loss.item(), rel=1e-5)
    assert out["mse"].item() == pytest.approx(reference.losses["mse_loss"].item(), rel=1e-5)
    scale = sae.W_dec.grad.abs().max()
    assert torch.allclose(stacked.W_dec.grad[0], sae.W_dec.grad, atol=1e-5 * scale)
    assert torch.allclose(stacked.b_dec.grad[0, 0], sae.b_dec.grad, atol=1e-5 * scale)
    if architecture == "untied":
        assert torch.allclose(stacked.W_enc.grad[0], sae.W_enc.grad, atol=1e-5 * scale)
    else:
        assert stacked.W_enc.grad.abs().max() == 0  # tied members never use the spare encoder


def test_members_train_independently_of_the_group_they_are_stacked_in():
    a = ToyRun(get_setup("too_wide"), "untied", 8, seed=0, l1_coefficient=1e-3, n_samples=8192, batch_size=512, lr=1e-2)
    b = ToyRun(get_setup("too_wide"), "tied", 8, seed=1, l1_coefficient=1e-3, n_samples=8192, batch_size=512, lr=1e-2)
    (alone,), _ = train_group([a], progress=False)
    (together, _), histories = train_group([a, b], progress=False)
    assert torch.allclose(alone.W_dec, together.W_dec, atol=1e-5)
    assert torch.allclose(alone.W_enc, together.W_enc, atol=1e-5)
    assert len(histories[0]) >= 16 and histories[0][-1]["samples"] == 8192
    assert histories[0][-1]["mse"] < histories[0][0]["mse"]  # it learned


def test_toy_saes_come_from_get_saes_cached_in_sae_lens_format(tmp_data, monkeypatch, capsys):
    from sae_failures.engine import saes as engine_saes

    runs = {arch: ToyRun(get_setup("single_latent"), arch, 1, seed=0, l1_coefficient=1e-3, n_samples=4096,
                         batch_size=512) for arch in ("untied", "tied")}
    saes = engine_saes.get_saes(runs)
    x = torch.randn(7, 20)
    for arch, run in runs.items():
        reloaded = SAE.load_from_disk(run.path())
        assert torch.allclose(reloaded.encode(x), saes[arch].encode(x))
        assert reloaded.cfg.metadata.sae_failures_spec["setup"] == "single_latent"
        assert engine_saes.training_history(run)[-1]["samples"] == 4096
    trained_alone = engine_saes.train_group
    monkeypatch.setattr(engine_saes, "train_group", lambda *a, **k: pytest.fail("retrained a cached run"))
    assert set(engine_saes.get_saes(runs)) == {"untied", "tied"}

    weights = runs["tied"].path() / "sae_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # corrupted on disk
    monkeypatch.setattr(engine_saes, "train_group", trained_alone)
    again = engine_saes.get_saes(runs)
    assert "does not match its checksum" in capsys.readouterr().err
    # retrained alone: the same SAE, up to the float rounding of the stacked computation
    assert torch.allclose(again["tied"].encode(x), saes["tied"].encode(x), atol=2e-3)


def test_aux_schedule_scales_with_the_sample_count():
    assert dict(aux_options(150_000_000)) == {"aux_delay_samples": 50_000_000, "aux_warmup_samples": 50_000_000}


def test_bad_runs_are_rejected_with_the_valid_choices():
    with pytest.raises(ValueError, match="Valid: untied, tied, tied_aux"):
        ToyRun(get_setup("absorption"), "gated", 4, 0, 1e-3, 4096)
    with pytest.raises(ValueError, match="Valid setups"):
        get_setup("nope")
    with pytest.raises(ValueError, match="A toy run's setup is a ToySetup, got 'absorption'"):
        ToyRun("absorption", "tied", 4, 0, 1e-3, 4096)
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['k'\]"):
        ToyRun(get_setup("absorption"), "tied", 4, 0, 1e-3, 4096, options=(("k", 3),)).build()
    with pytest.raises(ValueError, match="one shape"):
        train_group([ToyRun(get_setup("absorption"), "tied", 4, 0, 1e-3, 4096),
                     ToyRun(get_setup("too_wide"), "tied", 8, 0, 1e-3, 4096)])


def test_pattern_weighted_loss_equals_the_full_batch_loss():
    setup = get_setup("too_wide_cooc")
    generator = build_generator(setup, seed=0)
    batch = generator.sample(4096)
    batcher = PatternBatcher(generator.mean_firing_magnitudes)
    weights = batcher.weights(batch)
    assert weights.sum().item() == pytest.approx(1.0)
    assert torch.equal(batcher.patterns[:, (weights > 0)].T.unique(dim=0), batch.unique(dim=0))
    run = ToyRun(get_setup("too_wide_cooc"), "tied_aux", 8, seed=2, l1_coefficient=1e-2, n_samples=64, batch_size=64)
    phi = build_dictionary(setup, 2).feature_vectors.detach()[None]
    kwargs = dict(aux_coefficient=torch.tensor([100.0]), thresholds=torch.full((1, 8), 0.05), with_constant=True)
    grads = []
    for f, w in ((batch.T[None], None), (batcher.patterns[None], weights[None])):
        stacked = _Stacked.from_saes([run.build()], [True])
        out = feature_space_losses(stacked, f, phi, torch.tensor([1e-2]), weights=w, **kwargs)
        out["loss"].sum().backward()
        grads.append((out["loss"].item(), out["aux"].item(), out["l0"].item(), stacked.W_dec.grad.clone()))
    (full, aux_full, l0_full, g_full), (pat, aux_pat, l0_pat, g_pat) = grads
    assert pat == pytest.approx(full, rel=1e-5) and aux_pat == pytest.approx(aux_full, rel=1e-5)
    assert l0_pat == pytest.approx(l0_full, rel=1e-5)
    assert torch.allclose(g_pat, g_full, atol=1e-5 * g_full.abs().max())
