"""The fused (compiled) SAE step against sae-lens's own ``SAETrainer.step``."""

from __future__ import annotations

import pytest
import torch
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
from sae_lens.training.sae_trainer import SAETrainer

from sae_failures.engine import step as fused
from sae_failures.engine.specs import ActivationSpec, SAESpec
from sae_failures.engine.training import build_training_sae

D, W, B, STEPS = 16, 48, 128, 6
ACTS = ActivationSpec("toy", "blocks.0.hook_resid_post", "random", "train", 2, B, "float32")
# Every variant the profiles train, with a coefficient that makes its sparsity term matter.
VARIANTS = [("standard", 0.5, ()), ("standard_unit_norm", 0.5, ()), ("topk", 6, ()), ("jumprelu", 0.05, ()),
            ("gated_paper", 0.5, ()), ("gated", 0.5, ()), ("aligned", 0.5, ()), ("aligned_topk", 6, ()),
            ("scaled_finetune", 0.0, (("finetune_method", "Decoder"), ("apply_b_dec_to_input", False)))]


def _config(autocast: bool) -> SAETrainerConfig:
    # A warm-up that moves the coefficient every step: the compiled step must not recompile for it.
    return SAETrainerConfig(total_training_samples=B * STEPS, train_batch_size_samples=B, lr=3e-3, lr_end=3e-3,
                            autocast=autocast)


def _pair(variant: str, sparsity: float, options: tuple):
    """Two identical training SAEs, each built afresh (a deep copy would drop the unit-norm
    variants' gradient hook)."""
    spec = SAESpec(variant, ACTS, W, sparsity, B * STEPS, batch_size=B, options=options, warm_up_steps=4)
    torch.manual_seed(1)
    base = StandardSAE(StandardSAEConfig(d_in=D, d_sae=W, apply_b_dec_to_input=False))
    with torch.no_grad():
        base.b_enc.normal_(0, 0.1)
    pair = []
    for _ in range(2):
        sae = build_training_sae(spec, D)
        if variant == "scaled_finetune":
            sae.load_start(base, activation_scale=1.0)
        pair.append(sae)
    return pair


def _train(trainer: SAETrainer, batches: list[torch.Tensor]) -> list[float]:
    trainer.activation_scaler.scaling_factor = 1.0
    losses = []
    for batch in batches:
        losses.append(trainer.step(batch).loss.item())
        trainer.n_training_steps += 1
    return losses


def _batches(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(B, D, generator=gen) * (1 + torch.rand(D, generator=gen)) + 0.3 for _ in range(STEPS)]


@pytest.mark.parametrize(("variant", "sparsity", "options"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_compiled_step_trains_the_sae_sae_lens_trains(variant, sparsity, options):
    ours, theirs = _pair(variant, sparsity, options)
    reference = SAETrainer(_config(False), theirs, iter(()))
    trainer = fused.FusedSAETrainer(_config(False), ours, compile=True)
    batches = _batches()
    assert _train(trainer, batches) == pytest.approx(_train(reference, batches), rel=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
    # The firing statistics behind dead-latent masks and auxiliary losses agree exactly.
    assert torch.equal(trainer.act_freq_scores, reference.act_freq_scores)
    assert torch.equal(trainer.n_forward_passes_since_fired, reference.n_forward_passes_since_fired)


def test_compiled_unit_norm_step_keeps_the_gradient_off_the_decoder_rows():
    """The projection is a hook on W_dec; the compiled backward must still run it (a
    compiled bound method ``sae.training_forward_pass`` does not: its rows keep a parallel
    component of ~0.3 of the gradient)."""
    ours, _ = _pair("standard_unit_norm", 0.5, ())
    trainer = fused.FusedSAETrainer(_config(False), ours, compile=True)
    trainer.activation_scaler.scaling_factor = 1.0
    trainer.optimizer.zero_grad = lambda: None  # keep the gradient to look at it
    for group in trainer.optimizer.param_groups:
        group["lr"] = 0.0  # and the rows it was projected against
    trainer.step(_batches()[0])
    rows = ours.W_dec.detach() / ours.W_dec.detach().norm(dim=1, keepdim=True)
    assert (ours.W_dec.grad * rows).sum(1).abs().max() < 1e-6


def test_bf16_compiled_step_stays_within_bf16_rounding_of_sae_lens():
    ours, theirs = _pair("standard_unit_norm", 0.5, ())
    batches = _batches(1)
    mine = _train(fused.FusedSAETrainer(_config(True), ours, compile=True), batches)
    reference = _train(SAETrainer(_config(True), theirs, iter(())), batches)
    assert mine == pytest.approx(reference, rel=2e-2)  # bf16 carries 8 bits: ~0.4% per rounding


def test_eager_fused_trainer_matches_sae_lens_step_for_step():
    ours, theirs = _pair("standard", 0.5, ())
    batches = _batches(2)
    assert _train(fused.FusedSAETrainer(_config(False), ours, compile=False), batches) == pytest.approx(
        _train(SAETrainer(_config(False), theirs, iter(())), batches), rel=1e-6)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-7)


def test_long_runs_compile_and_short_ones_and_gated_saes_do_not():
    assert fused.compiles("standard", fused.COMPILE_MIN_STEPS)
    assert not fused.compiles("standard", fused.COMPILE_MIN_STEPS - 1)
    assert not fused.compiles("gated_paper", 100 * fused.COMPILE_MIN_STEPS)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_only_the_loss_carries_a_graph_out_of_the_step(compile):
    """Every other output is detached: autograd would otherwise fill a batch x width zero
    gradient for each (2 ms apiece at the offline sizes) and the backward would read them."""
    sae, _ = _pair("standard", 0.5, ())
    trainer = fused.FusedSAETrainer(_config(False), sae, compile=compile)
    trainer.activation_scaler.scaling_factor = 1.0
    out = trainer.step(_batches()[0])
    assert not any(t.requires_grad for t in (out.sae_out, out.feature_acts, out.hidden_pre, *out.losses.values()))


def test_the_step_bench_times_every_path_and_reports_the_one_training_takes():
    from sae_failures.runs.bench import bench_sae_steps

    table = bench_sae_steps(d=8, width=16, batch=32, variants=(("standard", 1.0, ()), ("gated_paper", 1.0, ())),
                            repeats=1, steps=1)
    assert list(table.used) == ["compiled", "eager"]
    # Encoder and decoder, forward and backward: 6 products; the Gated SAE adds its magnitude
    # path and its auxiliary reconstruction (the gate's pre-activation is computed twice eagerly).
    assert list(table.matmuls) == [6, 12]
    for row in table.itertuples():
        used_ms = row.compiled_ms if row.used == "compiled" else row.eager_ms
        assert row.speedup == pytest.approx(row.sae_lens_ms / used_ms)
        assert row.ours / row.sae_lens == pytest.approx(row.speedup)
