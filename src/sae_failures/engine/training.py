"""Train one SAE from any source of activation batches, with sae-lens's own training classes.

``train_sae`` builds the sae-lens training SAE a spec names (``build_training_sae``), scales
activations so that E||x|| = sqrt(d) (sae-lens's ``ActivationScaler``: sparsity
coefficients then mean the same across layers and models), starts b_dec at the data mean,
and runs sae-lens's ``SAETrainer`` step by step (Adam, gradient clipping, coefficient
warm-up, dead-latent tracking), its step fused and, for long runs, compiled (``step``). The scale is folded back into the weights at the end, so
the SAE works on raw activations. The data come from a ``BatchSource``: the on-disk
``activations.ActivationStore`` today, a stream from the model tomorrow; the loop does not
know which. Caching lives in ``saes``; this module writes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from sae_lens import SAE
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.sae import TrainStepInput
from sae_lens.training.activation_scaler import ActivationScaler
from tqdm import tqdm

from sae_failures.engine.paths import atomic_path
from sae_failures.engine.specs import SAESpec, sparsity_field, training_classes
from sae_failures.engine.step import FusedSAETrainer, compiles

NORM_ESTIMATE_BATCHES = 8
B_DEC_SAMPLE_BATCH, B_DEC_SAMPLE_BATCHES = 4096, 8  # rows averaged for b_dec's starting point
RESUME_STATE = "resume_state"  # the folder ``train_saes`` saves a group's state in


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
    sae_class, config_class = training_classes()[spec.variant]
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
def data_mean(source: BatchSource, seed: int) -> torch.Tensor:
    """The mean activation over a sample drawn with ``seed + 1``: where b_dec starts.

    A stream averages the first rows it serves instead (``ActivationStream.first_rows_mean``),
    at most its ``n_tokens``: rows the SAEs train on anyway, each forward pass run once. Drawn
    through a mixing buffer, which holds half of its rows back, the same sample cost 1.6 x its
    rows in forward passes, before training had begun.
    """
    batch = min(B_DEC_SAMPLE_BATCH, source.n_tokens)  # a source smaller than one batch is averaged whole
    n_samples = B_DEC_SAMPLE_BATCHES * batch
    first_rows_mean = getattr(source, "first_rows_mean", None)
    if first_rows_mean is not None:
        return first_rows_mean(min(n_samples, source.n_tokens))
    return torch.cat(list(source.batches(batch, seed=seed + 1, n_samples=n_samples))).mean(0)


@torch.no_grad()
def init_b_dec_to_mean(saes: Sequence[Any], source: BatchSource, scale: float, seed: int) -> None:
    """Start every SAE's b_dec at the (scaled) data mean, as is standard (the mean read once).

    Residual streams have a large mean; from b_dec = 0 the first hundreds of steps are
    spent learning it and short runs end worse than predicting the mean (FVU > 1).
    """
    mean = data_mean(source, seed)
    for sae in saes:
        sae.b_dec.data.copy_((mean * scale).to(sae.b_dec))


@torch.no_grad()
def snapshot(sae: Any, scale: float) -> Any:
    """A copy of a training SAE with the activation scale folded in, ready to save."""
    copied = copy.deepcopy(sae)
    copied.fold_activation_norm_scaling_factor(scale)
    copied.cfg.metadata.activation_scaling_factor = scale
    return copied


@dataclass
class _Run:
    """One SAE of a group: its spec, sae-lens training SAE and trainer, and loss history."""

    spec: SAESpec
    sae: Any
    trainer: FusedSAETrainer
    history: list[dict[str, float]] = field(default_factory=list)


def _trainer(spec: SAESpec, sae: Any, device: str) -> FusedSAETrainer:
    return FusedSAETrainer(
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
        compile=compiles(spec.variant, spec.n_steps),
    )


def check_group(specs: Sequence[SAESpec], starts: Sequence[SAE] | None) -> None:
    """One batch stream serves a group only if its SAEs agree on what they draw from it."""
    drawn = {(s.activations, s.batch_size, s.seed) for s in specs}
    if len(drawn) != 1:
        raise ValueError("SAEs trained together must share activations, batch_size and seed; got "
                         f"{len(drawn)} combinations.")
    if starts is not None and len(starts) != len(specs):
        raise ValueError(f"{len(specs)} specs but {len(starts)} start SAEs: give one per spec, or none.")


def save_resume_state(folder: Path, runs: Sequence[_Run], provider: Any, step: int) -> None:
    """Everything a killed group needs to go on exactly: each SAE's weights and sae-lens trainer
    state (optimizer, schedules, scaler, sparsity statistics), the batch stream's position and
    buffer, the global RNG. Written whole or not at all."""
    with atomic_path(folder / RESUME_STATE) as staged:
        staged.mkdir(parents=True)
        for i, run in enumerate(runs):
            torch.save(run.sae.state_dict(), staged / f"sae{i}.pt")
            run.trainer.save_trainer_state(staged / f"trainer{i}")
        torch.save({"step": step, "provider": provider.state_dict(), "rng": torch.get_rng_state(),
                    "histories": [run.history for run in runs]}, staged / "group.pt")


def load_resume_state(folder: Path, runs: Sequence[_Run], provider: Any) -> int:
    """Restore ``save_resume_state``'s group; returns the first step still to run."""
    state = torch.load(folder / RESUME_STATE / "group.pt", weights_only=False)
    for i, run in enumerate(runs):
        run.sae.load_state_dict(torch.load(folder / RESUME_STATE / f"sae{i}.pt"))
        run.trainer.load_trainer_state(folder / RESUME_STATE / f"trainer{i}")
        run.history = state["histories"][i]
    provider.load_state_dict(state["provider"])
    torch.set_rng_state(state["rng"])
    return int(state["step"]) + 1


def train_saes(specs: Sequence[SAESpec], source: BatchSource, device: str = "cpu", log_every: int = 25,
               on_checkpoint: Callable[[int, int, Any], None] | None = None,
               starts: Sequence[SAE] | None = None, resume: Path | None = None, resume_every: int = 0
               ) -> list[tuple[Any, list[dict[str, float]]]]:
    """Train ``specs`` together on one stream of batches; per spec, the training SAE (raw-activation
    scale) and its loss history.

    Every SAE steps on the same batch, so a group costs one pass over the data (one forward
    pass per batch for a stream) and each SAE is the one ``train_saes([spec])`` gives. The
    specs share activations, batch size and seed (``check_group``). ``starts``: the trained
    SAEs fine-tunes continue from (``spec.init_from``), one per spec, in the scaled space
    they were trained in. ``device`` is where training runs; it is not part of the cache
    key. Before each of ``spec.checkpoint_steps()``, ``on_checkpoint(index, tokens_seen,
    snapshot)`` receives a folded copy. ``resume``: a folder where, every ``resume_every``
    steps, the whole group's state is saved (the source's batches must have ``state_dict``),
    and from which a killed run goes on, ending with the SAEs an uninterrupted run gives.
    """
    check_group(specs, starts)
    first = specs[0]
    runs = [_Run(spec, sae := build_training_sae(spec, source.d, device), _trainer(spec, sae, device))
            for spec in specs]
    provider = source.batches(first.batch_size, seed=first.seed)
    if resume is not None and (resume / RESUME_STATE).exists():
        begin = load_resume_state(resume, runs, provider)
    else:
        begin = 0
        if starts is not None:
            for run, start in zip(runs, starts, strict=True):
                # Fine-tuning: continue in the start SAE's own scaled space.
                if not hasattr(run.sae, "load_start"):
                    raise ValueError(f"Variant {run.spec.variant!r} cannot start from another SAE.")
                scale = float(start.cfg.metadata.activation_scaling_factor)
                run.sae.load_start(start, scale)
                run.trainer.activation_scaler.scaling_factor = scale
        else:
            scale = activation_scale(source.d, provider)
            for run in runs:
                run.trainer.activation_scaler.scaling_factor = scale
            init_b_dec_to_mean([run.sae for run in runs], source, scale, first.seed)
    checkpoint_steps = [set(run.spec.checkpoint_steps()) for run in runs]
    began = time.perf_counter()
    total = max(spec.n_steps for spec in specs)
    desc = (f"train {first.variant} w={first.width} s={first.sparsity:g}" if len(specs) == 1 else
            f"train {len(specs)} SAEs together ({', '.join(sorted({s.variant for s in specs}))})")
    bar = tqdm(range(begin, total), desc=desc, initial=begin, total=total)
    for step in bar:
        batch = next(provider)
        for i, run in enumerate(runs):
            if step >= run.spec.n_steps:
                continue
            if on_checkpoint is not None and step in checkpoint_steps[i]:
                on_checkpoint(i, step * run.spec.batch_size, snapshot(run.sae, run.trainer.activation_scaler.scaling_factor))
            out = run.trainer.step(batch)
            run.trainer.n_training_steps += 1
            if step % log_every == 0 or step == run.spec.n_steps - 1:
                row = {"step": step, "tokens": (step + 1) * run.spec.batch_size,
                       "l0": float((out.feature_acts > 0).float().sum(-1).mean())}
                row.update({k: v.item() for k, v in out.losses.items()})
                run.history.append(row)
                if len(runs) == 1:
                    bar.set_postfix(mse=f"{row['mse_loss']:.3g}", l0=f"{row['l0']:.1f}")
        if resume is not None and resume_every and (step + 1) % resume_every == 0 and step + 1 < total:
            save_resume_state(resume, runs, provider, step)
    seconds = round(time.perf_counter() - began, 1)
    for run in runs:
        run.sae.fold_activation_norm_scaling_factor(run.trainer.activation_scaler.scaling_factor)
        run.trainer.set_final_sae_metadata()
        run.sae.cfg.metadata.activation_scaling_factor = float(run.trainer.activation_scaler.scaling_factor)
        run.sae.cfg.metadata.training_seconds = seconds
    return [(run.sae, run.history) for run in runs]


def train_sae(spec: SAESpec, source: BatchSource, device: str = "cpu", log_every: int = 25,
              on_checkpoint: Callable[[int, Any], None] | None = None, start: SAE | None = None
              ) -> tuple[Any, list[dict[str, float]]]:
    """``train_saes`` for one SAE: the training SAE (raw-activation scale) and its loss history."""
    callback = None if on_checkpoint is None else (lambda _, tokens, sae: on_checkpoint(tokens, sae))
    return train_saes([spec], source, device, log_every, callback, None if start is None else [start])[0]


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
