"""The SAE training step: sae-lens's ``SAETrainer`` with the elementwise work fused.

On a CPU, half of sae-lens's step is spent outside its six matmuls: the sparsity penalty
and its gradient, the activation's backward, bf16 casts and the firing counts are each a
separate pass over a batch x width tensor. ``FusedSAETrainer`` keeps everything
``SAETrainer`` does (Adam and its schedules, gradient clipping at norm 1, coefficient
warm-up, firing statistics, saved trainer state) and changes how it is computed:

- the forward pass, its losses and the firing counts are compiled (``torch.compile``) into
  a few fused kernels, forward and backward; a 0-dim tensor carries each coefficient so a
  warm-up does not recompile;
- Adam runs as one fused kernel per parameter, and clipping over all gradients at once.

Compiled and eager steps agree to float rounding (tested for every variant the profiles
train). Compiling costs seconds, so a run compiles only when it is long enough to gain, and
never for a variant that compiles slower (``compiles``). Which step a run takes is part of its numbers: changing ``COMPILE_MIN_STEPS``
or what the step computes needs ``specs.CACHE_VERSION`` bumped.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.sae import TrainStepInput, TrainStepOutput
from sae_lens.training.sae_trainer import SAETrainer

# Measured on 2 cores at d 576, width 2304, batch 2048 (``make bench``): compiling costs 2-13 s
# once per variant and shape in a process (inductor's disk cache cold: 13 s; warm: 2-4 s) and
# saves 25-45 ms a step, so a single run gains from ~200 steps and every later run of the same
# shape gains from its first step.
COMPILE_MIN_STEPS = 200
# Steps that compile slower than they run eagerly (inductor's kernels for the gate's two
# pre-activations lose to eager ATen: 153 against 118 ms for ``gated_paper``): never compiled.
EAGER_VARIANTS = frozenset({"gated", "gated_paper", "gated_untied"})
RECOMPILE_LIMIT = 256  # graphs kept per step function: one per (variant, shape) a process trains

# sae-lens's TopK aux loss reads the dead-latent count as a Python int (``int(mask.sum())``):
# the graph breaks there by design, and dynamo's multi-line advice about it is noise in a log.
logging.getLogger("torch._dynamo.variables.tensor").setLevel(logging.ERROR)


def compiles(variant: str, n_steps: int) -> bool:
    """Whether a run of ``variant`` for ``n_steps`` takes the compiled step."""
    return variant not in EAGER_VARIANTS and n_steps >= COMPILE_MIN_STEPS


def forward_and_counts(sae: Any, step_input: TrainStepInput) -> tuple[TrainStepOutput, torch.Tensor]:
    """The training forward pass and, per latent, how many rows of the batch it fired on.

    Only ``loss`` keeps its graph: every other output is detached, or autograd would fill a
    batch x width gradient of zeros for each and the backward would read them.
    """
    out = sae.training_forward_pass(step_input)
    with torch.no_grad():
        fired = (out.feature_acts != 0).sum(0, dtype=torch.float32)
    detached = dataclasses.replace(
        out, sae_out=out.sae_out.detach(), feature_acts=out.feature_acts.detach(),
        hidden_pre=out.hidden_pre.detach(), losses={name: value.detach() for name, value in out.losses.items()})
    return detached, fired


_compiled_forward = torch.compile(forward_and_counts, dynamic=False)


class FusedSAETrainer(SAETrainer):
    """``SAETrainer`` whose step is compiled (``compile=True``) and whose Adam is fused."""

    def __init__(self, cfg: SAETrainerConfig, sae: Any, compile: bool):
        super().__init__(cfg, sae, iter(()))
        for group in self.optimizer.param_groups:  # the scheduler keeps this optimizer
            group.update(fused=True, foreach=False)
        self.compiled = compile

    def _train_step(self, sae: Any, sae_in: torch.Tensor) -> TrainStepOutput:
        sae.train()
        step_input = TrainStepInput(
            sae_in=sae_in, dead_neuron_mask=self.dead_neurons,
            coefficients={name: torch.tensor(value) for name, value in self.get_coefficients().items()},
            n_training_steps=self.n_training_steps, is_logging_step=False)
        with self.autocast_if_enabled:
            if self.compiled:
                with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT,
                                                fail_on_recompile_limit_hit=True):
                    out, fired = _compiled_forward(sae, step_input)
            else:
                out, fired = forward_and_counts(sae, step_input)
        with torch.no_grad():
            self.n_forward_passes_since_fired += 1
            self.n_forward_passes_since_fired[fired > 0] = 0
            self.act_freq_scores += fired
            self.n_frac_active_samples += self.cfg.train_batch_size_samples
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0, foreach=True)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.lr_scheduler.step()
        for scheduler in self.coefficient_schedulers.values():
            scheduler.step()
        return out
