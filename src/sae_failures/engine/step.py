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
train). Compiling costs seconds, so a run compiles only when it is long enough to gain
(``compiles``). Which step a run takes is part of its numbers: changing ``COMPILE_MIN_STEPS``
or what the step computes needs ``specs.CACHE_VERSION`` bumped.
"""

from __future__ import annotations

from typing import Any

import torch
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.sae import TrainStepInput, TrainStepOutput
from sae_lens.training.sae_trainer import SAETrainer

COMPILE_MIN_STEPS = 500  # ~10 s of compiling, gained back in a few hundred steps at the offline sizes
RECOMPILE_LIMIT = 256  # graphs kept per step function: one per (variant, shape) a process trains


def compiles(n_steps: int) -> bool:
    """Whether a run of ``n_steps`` takes the compiled step."""
    return n_steps >= COMPILE_MIN_STEPS


def forward_and_counts(sae: Any, step_input: TrainStepInput) -> tuple[TrainStepOutput, torch.Tensor]:
    """The training forward pass and, per latent, how many rows of the batch it fired on."""
    out = sae.training_forward_pass(step_input)
    with torch.no_grad():
        fired = (out.feature_acts.detach() != 0).sum(0, dtype=torch.float32)
    return out, fired


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
