"""One call trains or loads an SAE from its full config, cached in sae-lens format.

Training uses sae-lens's own training classes and ``SAETrainer`` (Adam, gradient
clipping, coefficient warm-up, dead-latent tracking) fed by our memory-mapped store.
Activations are scaled so that E||x|| = sqrt(d) (sae-lens's ``ActivationScaler``), which
makes sparsity coefficients comparable across layers and models; the scale is folded
back into the weights before saving, so the saved SAE works on raw activations and
``sae_lens.SAE.load_from_disk`` loads it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE
from sae_lens.config import SAETrainerConfig
from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY, get_sae_training_class
from sae_lens.training.activation_scaler import ActivationScaler
from sae_lens.training.sae_trainer import SAETrainer
from tqdm.auto import tqdm

from sae_failures.activations import ActivationSpec, ActivationStore, CacheCorruptedError
from sae_failures.paths import atomic_path, data_dir

# The config field each family uses for its sparsity knob, in lookup order.
SPARSITY_FIELDS = ("l1_coefficient", "k", "l0_coefficient")
NORM_ESTIMATE_BATCHES = 8
HISTORY_FILENAME = "training_history.json"
CHECKPOINT_DIR = "checkpoints"
# Part of every cache key: bump when training code changes what a spec produces.
CACHE_VERSION = 2


@dataclass(frozen=True)
class SAESpec:
    """Everything that determines one trained SAE (and so its cache key)."""

    variant: str  # a sae-lens training architecture, ours included
    activations: ActivationSpec
    width: int
    sparsity: float  # L1 coefficient, k (TopK) or L0 coefficient (JumpReLU)
    n_tokens: int
    lr: float = 1e-3
    seed: int = 0
    batch_size: int = 4096
    sparsity_warm_up_frac: float = 0.05
    lr_decay_frac: float = 0.2
    adam_beta1: float = 0.9
    options: tuple[tuple[str, Any], ...] = field(default=())  # extra config fields
    init_from: str = ""  # cache path (relative to data/) of an SAE to start from: fine-tuning;
    # or "release:<release>/<sae_id>": import that sae-lens pretrained SAE instead of training
    autocast: bool = False  # bf16 matmuls in the SAE's forward/backward (fp32 weights and Adam)
    checkpoints: int = 0  # also save this many evenly spaced snapshots, the first at initialisation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        fields = self.to_dict()
        for name in ("autocast", "checkpoints"):  # specs keep the keys they had before these fields
            if not fields[name]:
                del fields[name]
        blob = json.dumps({**fields, "cache_version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def path(self) -> Path:
        a = self.activations
        name = f"{self.variant}-w{self.width}-s{self.sparsity:g}-n{self.n_tokens}-seed{self.seed}-{self.key()}"
        return data_dir() / "saes" / a.model.replace("/", "__") / a.hook / name

    @property
    def n_steps(self) -> int:
        return self.n_tokens // self.batch_size

    def checkpoint_steps(self) -> list[int]:
        """Steps before which a snapshot is taken: 0 (the initialisation) and evenly after it."""
        if self.checkpoints <= 0:
            return []
        return sorted({round(i * self.n_steps / self.checkpoints) for i in range(self.checkpoints)})


def known_variants() -> list[str]:
    return sorted(SAE_TRAINING_CLASS_REGISTRY)


def sparsity_field(config_class: type) -> str:
    names = {f.name for f in dataclasses.fields(config_class)}
    for name in SPARSITY_FIELDS:
        if name in names:
            return name
    raise ValueError(f"{config_class.__name__} has none of the sparsity fields {SPARSITY_FIELDS}.")


def build_training_sae(spec: SAESpec, d_in: int, device: str = "cpu") -> Any:
    """A fresh sae-lens training SAE for ``spec`` (seeded) on ``device``."""
    if spec.variant not in SAE_TRAINING_CLASS_REGISTRY:
        raise ValueError(f"Unknown SAE variant {spec.variant!r}. Valid variants: "
                         f"{', '.join(known_variants())}.")
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
        kwargs[warm_field] = int(spec.sparsity_warm_up_frac * spec.n_steps)
    cfg = config_class(d_in=d_in, d_sae=spec.width, device=device, **kwargs, **options)
    cfg.metadata.hook_name = spec.activations.hook
    cfg.metadata.model_name = spec.activations.model
    cfg.metadata.context_size = spec.activations.context_size
    torch.manual_seed(spec.seed)
    return sae_class(cfg)


def activation_scale(d: int, provider: Iterator[torch.Tensor]) -> float:
    """sqrt(d) / E||x|| over the provider's next batches: the factor every SAE trains under.

    ``store.batches(spec.batch_size, spec.seed)`` gives exactly the factor ``train_sae`` uses.
    """
    scaler = ActivationScaler()
    scaler.estimate_scaling_factor(d, provider, NORM_ESTIMATE_BATCHES)
    return float(scaler.scaling_factor)


@torch.no_grad()
def init_b_dec_to_mean(sae: Any, store: ActivationStore, scale: float, seed: int) -> None:
    """Start b_dec at the (scaled) data mean, as is standard.

    Residual streams have a large mean; from b_dec = 0 the first hundreds of steps are
    spent learning it and short runs end worse than predicting the mean (FVU > 1).
    """
    sample = torch.cat(list(store.batches(4096, seed=seed + 1, n_samples=8 * 4096)))
    sae.b_dec.data.copy_((sample.mean(0) * scale).to(sae.b_dec))


@torch.no_grad()
def snapshot(sae: Any, scale: float) -> Any:
    """A copy of a training SAE with the activation scale folded in, ready to save."""
    copied = copy.deepcopy(sae)
    copied.fold_activation_norm_scaling_factor(scale)
    copied.cfg.metadata.activation_scaling_factor = scale
    return copied


def train_sae(spec: SAESpec, store: ActivationStore, device: str = "cpu", log_every: int = 25,
              on_checkpoint: Callable[[int, Any], None] | None = None
              ) -> tuple[Any, list[dict[str, float]]]:
    """Train ``spec`` on ``store``; returns the training SAE (raw-activation scale) and its loss history.

    ``device`` is where training runs; it is not part of the cache key. At each of
    ``spec.checkpoint_steps()``, ``on_checkpoint(tokens_seen, snapshot)`` receives a folded copy.
    """
    if store.spec != spec.activations:
        raise ValueError("The store does not hold the activations named in the spec.")
    sae = build_training_sae(spec, store.d, device)
    provider = store.batches(spec.batch_size, seed=spec.seed)
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
    if spec.init_from:
        # Fine-tuning: continue in the start SAE's own scaled space.
        start_sae = load_cached(data_dir() / spec.init_from)
        scale = float(start_sae.cfg.metadata.activation_scaling_factor)
        if not hasattr(sae, "load_start"):
            raise ValueError(f"Variant {spec.variant!r} cannot start from another SAE.")
        sae.load_start(start_sae, scale)
        trainer.activation_scaler.scaling_factor = scale
    else:
        trainer.activation_scaler.scaling_factor = activation_scale(store.d, provider)
        init_b_dec_to_mean(sae, store, trainer.activation_scaler.scaling_factor, spec.seed)
    history = []
    start = time.perf_counter()
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
    sae.cfg.metadata.training_seconds = round(time.perf_counter() - start, 1)
    return sae, history


def get_sae(spec: SAESpec, store: ActivationStore | None = None, device: str = "cpu") -> SAE:
    """The inference SAE for ``spec``: from the cache, else trained (or imported) on ``device``."""
    path = spec.path()
    if not (path / "cfg.json").exists() and spec.init_from.startswith(RELEASE_PREFIX):
        import_release(spec, store or ActivationStore(spec.activations), device)
    elif not (path / "cfg.json").exists():
        store = store or ActivationStore(spec.activations)
        with atomic_path(path) as staged:

            def save_checkpoint(tokens: int, sae: Any) -> None:
                sae.save_inference_model(staged / CHECKPOINT_DIR / f"{tokens:012d}")

            sae, history = train_sae(spec, store, device, on_checkpoint=save_checkpoint)
            sae.cfg.metadata.sae_failures_spec = spec.to_dict()
            sae.save_inference_model(staged)
            (staged / HISTORY_FILENAME).write_text(json.dumps(history))
    return load_cached(path, device)


STANDARD_L1 = 3.0
RELEASE_PREFIX = "release:"


def release_spec(release: str, sae_id: str, activations: ActivationSpec, width: int,
                 sparsity: float, batch_size: int, seed: int = 0) -> SAESpec:
    """A zoo entry for a sae-lens pretrained SAE (paper profile: start fine-tuning from a release).

    ``sparsity`` is the L1 coefficient, in this repository's scaled convention, that the
    Baseline fine-tune continues with; sae-lens releases subtract b_dec from the input.
    """
    return SAESpec("standard_unit_norm", activations, width, sparsity, n_tokens=0,
                   batch_size=batch_size, seed=seed,
                   init_from=f"{RELEASE_PREFIX}{release}/{sae_id}",
                   options=(("apply_b_dec_to_input", True),))


@torch.no_grad()
def import_release(spec: SAESpec, store: ActivationStore, device: str = "cpu") -> None:
    """Download a release SAE and cache it in the form zoo SAEs have.

    Decoder rows are folded to unit norm (sae-lens ``fold_W_dec_norm``), then expressed in
    the scaled convention: latents multiplied by the store's activation scale a and rows
    divided by it, as if the SAE had been trained here. The function is unchanged.
    """
    from sae_failures.model import require_network

    release, sae_id = spec.init_from.removeprefix(RELEASE_PREFIX).split("/", 1)
    require_network(f"The sae-lens release {release!r}")
    sae = SAE.from_pretrained(release, sae_id, device=device)
    if sae.cfg.architecture() != "standard" or sae.cfg.d_sae != spec.width:
        raise ValueError(f"{release}/{sae_id} is a {sae.cfg.architecture()} SAE of width "
                         f"{sae.cfg.d_sae}; the spec expects a standard SAE of width {spec.width}.")
    if sae.cfg.apply_b_dec_to_input != dict(spec.options)["apply_b_dec_to_input"]:
        raise ValueError(f"{release}/{sae_id} has apply_b_dec_to_input="
                         f"{sae.cfg.apply_b_dec_to_input}; set the spec's option to match.")
    sae.fold_W_dec_norm()
    scale = activation_scale(store.d, store.batches(spec.batch_size, seed=spec.seed))
    sae.W_enc.mul_(scale)
    sae.b_enc.mul_(scale)
    sae.W_dec.div_(scale)
    sae.cfg.metadata.activation_scaling_factor = scale
    sae.cfg.metadata.sae_failures_spec = spec.to_dict()
    with atomic_path(spec.path()) as staged:
        sae.save_model(staged)


def standard_spec(activations: ActivationSpec, n_tokens: int, batch_size: int, d_model: int,
                  l1: float = STANDARD_L1, seed: int = 0, autocast: bool = False) -> SAESpec:
    """The repository's canonical standard SAE, shared by notebooks 00, 01 and 04's baseline.

    ReLU + L1 with unit-norm decoder rows, width 4x d_model, in the feature-suppression
    post's architecture f = ReLU(W_enc x + b_enc) (no b_dec subtracted from the input).
    ``l1 = 3`` puts L0 near the post's 13-80 range at SmolLM2 layer 12 (see notebook 00).
    """
    return SAESpec("standard_unit_norm", activations, width=4 * d_model, sparsity=l1,
                   n_tokens=n_tokens, batch_size=batch_size, lr=1e-3, seed=seed,
                   options=(("apply_b_dec_to_input", False),), autocast=autocast)


def cache_relpath(spec: SAESpec) -> str:
    """``spec``'s cache folder relative to data/, the form ``SAESpec.init_from`` takes."""
    return str(spec.path().relative_to(data_dir()))


def load_cached(path: Path, device: str = "cpu") -> SAE:
    try:
        return SAE.load_from_disk(path, device=device)
    except Exception as err:  # safetensors / json errors have no common base class
        raise CacheCorruptedError(
            f"Corrupted SAE cache {path}: {err}. Delete that folder and rerun to retrain."
        ) from err


def checkpoints(spec: SAESpec, device: str = "cpu") -> dict[int, SAE]:
    """The snapshots saved while ``spec`` trained, by tokens seen, the final SAE included."""
    if spec.checkpoints <= 0:
        raise ValueError(f"{spec.path().name} was specified without checkpoints (checkpoints=0).")
    folder = spec.path() / CHECKPOINT_DIR
    saved = {int(p.name): load_cached(p, device) for p in sorted(folder.iterdir())} if folder.exists() else {}
    if len(saved) != len(spec.checkpoint_steps()):
        raise CacheCorruptedError(f"{folder} holds {len(saved)} checkpoints, expected "
                                  f"{len(spec.checkpoint_steps())}. Delete {spec.path()} and rerun.")
    return {**saved, spec.n_steps * spec.batch_size: load_cached(spec.path(), device)}


def training_history(spec: SAESpec) -> list[dict[str, float]]:
    """Loss history recorded while ``spec`` was trained (empty if not trained here)."""
    path = spec.path() / HISTORY_FILENAME
    return json.loads(path.read_text()) if path.exists() else []
