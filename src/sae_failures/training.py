"""Train one SAE from any source of activation batches, with sae-lens's own training classes.

``train_sae`` builds the sae-lens training SAE a spec names (``build_training_sae``), scales
activations so that E||x|| = sqrt(d) (sae-lens's ``ActivationScaler``: sparsity
coefficients then mean the same across layers and models), starts b_dec at the data mean,
and runs sae-lens's ``SAETrainer`` step by step (Adam, gradient clipping, coefficient
warm-up, dead-latent tracking). The scale is folded back into the weights at the end, so
the SAE works on raw activations. The data come from a ``BatchSource``: the on-disk
``activations.ActivationStore`` today, a stream from the model tomorrow; the loop does not
know which. Caching lives in ``saes``; this module writes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch
from sae_lens import SAE
from sae_lens.config import SAETrainerConfig
from sae_lens.registry import get_sae_training_class
from sae_lens.saes.sae import TrainStepInput
from sae_lens.training.activation_scaler import ActivationScaler
from sae_lens.training.sae_trainer import SAETrainer
from tqdm.auto import tqdm

from sae_failures.specs import SAESpec, sparsity_field

NORM_ESTIMATE_BATCHES = 8
B_DEC_SAMPLE_BATCH, B_DEC_SAMPLE_BATCHES = 4096, 8  # rows averaged for b_dec's starting point


class BatchSource(Protocol):
    """Where training activations come from: width ``d``, ``n_tokens`` rows, seeded shuffled batches."""

    @property
    def d(self) -> int: ...

    @property
    def n_tokens(self) -> int: ...

    def batches(self, batch_size: int, seed: int, n_samples: int | None = None
                ) -> Iterator[torch.Tensor]: ...


def build_training_sae(spec: SAESpec, d_in: int, device: str = "cpu") -> Any:
    """A fresh sae-lens training SAE for ``spec`` (seeded) on ``device``."""
    sae_class, config_class = get_sae_training_class(spec.variant)
    valid = {f.name for f in dataclasses.fields(config_class)}
    options = dict(spec.options)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for variant {spec.variant!r}. "
                         f"Valid options: {', '.join(sorted(valid))}.")
    field_name = sparsity_field(config_class)
    kwargs: dict[str, Any] = {field_name: int(spec.sparsity) if field_name == "k" else spec.sparsity}
    warm_field = {"l1_coefficient": "l1_warm_up_steps", "l0_coefficient": "l0_warm_up_steps"}.get(field_name)
    if warm_field in valid:
        kwargs[warm_field] = spec.sparsity_warm_up_steps
    cfg = config_class(d_in=d_in, d_sae=spec.width, device=device, **kwargs, **options)
    cfg.metadata.hook_name = spec.activations.hook
    cfg.metadata.model_name = spec.activations.model
    cfg.metadata.context_size = spec.activations.context_size
    torch.manual_seed(spec.seed)
    return sae_class(cfg)


def activation_scale(d: int, provider: Iterator[torch.Tensor]) -> float:
    """sqrt(d) / E||x|| over the provider's next batches: the factor every SAE trains under.

    ``source.batches(spec.batch_size, spec.seed)`` gives exactly the factor ``train_sae`` uses.
    """
    scaler = ActivationScaler()
    scaler.estimate_scaling_factor(d, provider, NORM_ESTIMATE_BATCHES)
    return float(scaler.scaling_factor)


@torch.no_grad()
def init_b_dec_to_mean(sae: Any, source: BatchSource, scale: float, seed: int) -> None:
    """Start b_dec at the (scaled) data mean, as is standard.

    Residual streams have a large mean; from b_dec = 0 the first hundreds of steps are
    spent learning it and short runs end worse than predicting the mean (FVU > 1).
    """
    batch = min(B_DEC_SAMPLE_BATCH, source.n_tokens)  # a source smaller than one batch is averaged whole
    batches = source.batches(batch, seed=seed + 1, n_samples=B_DEC_SAMPLE_BATCHES * batch)
    sample = torch.cat(list(batches))
    sae.b_dec.data.copy_((sample.mean(0) * scale).to(sae.b_dec))


@torch.no_grad()
def snapshot(sae: Any, scale: float) -> Any:
    """A copy of a training SAE with the activation scale folded in, ready to save."""
    copied = copy.deepcopy(sae)
    copied.fold_activation_norm_scaling_factor(scale)
    copied.cfg.metadata.activation_scaling_factor = scale
    return copied


def train_sae(spec: SAESpec, source: BatchSource, device: str = "cpu", log_every: int = 25,
              on_checkpoint: Callable[[int, Any], None] | None = None, start: SAE | None = None
              ) -> tuple[Any, list[dict[str, float]]]:
    """Train ``spec`` on ``source``; returns the training SAE (raw-activation scale) and its loss history.

    ``start``: the trained SAE a fine-tune continues from (``spec.init_from``), in the
    scaled space it was trained in. ``device`` is where training runs; it is not part of
    the cache key. At each of ``spec.checkpoint_steps()``, ``on_checkpoint(tokens_seen,
    snapshot)`` receives a folded copy.
    """
    sae = build_training_sae(spec, source.d, device)
    provider = source.batches(spec.batch_size, seed=spec.seed)
    trainer = SAETrainer(
        SAETrainerConfig(
            total_training_samples=spec.n_tokens,
            train_batch_size_samples=spec.batch_size,
            lr=spec.lr,
            lr_scheduler_name="constant",
            lr_end=spec.lr,
            lr_decay_steps=int(spec.lr_decay_frac * spec.n_steps),
            adam_beta1=spec.adam_beta1,
            device=device,
            n_batches_for_norm_estimate=NORM_ESTIMATE_BATCHES,
            autocast=spec.autocast,
        ),
        sae,
        provider,
    )
    if start is not None:
        # Fine-tuning: continue in the start SAE's own scaled space.
        scale = float(start.cfg.metadata.activation_scaling_factor)
        if not hasattr(sae, "load_start"):
            raise ValueError(f"Variant {spec.variant!r} cannot start from another SAE.")
        sae.load_start(start, scale)
        trainer.activation_scaler.scaling_factor = scale
    else:
        trainer.activation_scaler.scaling_factor = activation_scale(source.d, provider)
        init_b_dec_to_mean(sae, source, trainer.activation_scaler.scaling_factor, spec.seed)
    history = []
    began = time.perf_counter()
    bar = tqdm(range(spec.n_steps), desc=f"train {spec.variant} w={spec.width} s={spec.sparsity:g}")
    checkpoint_steps = set(spec.checkpoint_steps())
    for step in bar:
        if on_checkpoint is not None and step in checkpoint_steps:
            on_checkpoint(step * spec.batch_size, snapshot(sae, trainer.activation_scaler.scaling_factor))
        out = trainer.step(next(provider))
        trainer.n_training_steps += 1
        if step % log_every == 0 or step == spec.n_steps - 1:
            row = {"step": step, "tokens": (step + 1) * spec.batch_size,
                   "l0": float((out.feature_acts > 0).float().sum(-1).mean())}
            row.update({k: v.item() for k, v in out.losses.items()})
            history.append(row)
            bar.set_postfix(mse=f"{row['mse_loss']:.3g}", l0=f"{row['l0']:.1f}")
    sae.fold_activation_norm_scaling_factor(trainer.activation_scaler.scaling_factor)
    trainer.set_final_sae_metadata()
    sae.cfg.metadata.activation_scaling_factor = float(trainer.activation_scaler.scaling_factor)
    sae.cfg.metadata.training_seconds = round(time.perf_counter() - began, 1)
    return sae, history


def fit_fixed_batch(sae: Any, x: torch.Tensor, l1: float, steps: int, lr: float) -> Any:
    """Adam on sae-lens's training loss for one fixed batch ``x``, trainable parameters only.

    The analytic one-latent examples (AB-1's one point, GS-2's shrinkage) train this way:
    no schedule, no clipping, nothing but the objective.
    """
    opt = torch.optim.Adam([p for p in sae.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        out = sae.training_forward_pass(TrainStepInput(
            sae_in=x, coefficients={"l1": l1}, dead_neuron_mask=None, n_training_steps=step,
            is_logging_step=False))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return sae
