"""What determines a cached result: the activation spec and the SAE spec, and their keys.

A spec is a frozen dataclass; its ``key()`` hashes every field (``cache.config_key``) with
a version number that is bumped when the code that builds the entry changes what a spec
produces. Changing a key orphans every cache entry made under it, so fields added later
are left out of the key while they hold their default (``SAESpec.key``); a test pins
keys made before this module existed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sae_failures.engine.cache import config_key
from sae_failures.engine.paths import data_dir

# Part of every activation key: bump when harvesting code changes what a spec produces.
HARVEST_VERSION = 1
# Part of every SAE key: bump when training code changes what a spec produces.
CACHE_VERSION = 3
# SAESpec.init_from of an SAE imported from a sae-lens pretrained release.
RELEASE_PREFIX = "release:"
# The canonical standard SAE's L1 (notebooks 00 and 01; see ``standard_spec``).
STANDARD_L1 = 3.0
SPLITS = ("train", "heldout")
DTYPES = ("bfloat16", "float16", "float32", "int32")  # int32: packed token ids
# The config field each family uses for its sparsity knob, in lookup order.
SPARSITY_FIELDS = ("l1_coefficient", "k", "l0_coefficient")


def training_classes() -> dict[str, tuple[type, type]]:
    """sae-lens's training registry, with this repository's variants registered in it.

    Imported on first use, not with this module: a profile, a site or a claims table names
    no SAE class, and should not wait seconds for sae-lens and TransformerLens to load.
    """
    from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY

    import sae_failures.variants  # noqa: F401  (registers them)

    return SAE_TRAINING_CLASS_REGISTRY


def known_variants() -> list[str]:
    return sorted(training_classes())


def sparsity_field(config_class: type) -> str:
    names = {f.name for f in dataclasses.fields(config_class)}
    for name in SPARSITY_FIELDS:
        if name in names:
            return name
    raise ValueError(f"{config_class.__name__} has none of the sparsity fields {SPARSITY_FIELDS}.")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class ActivationSpec:
    """Everything that determines one hook point's stored activations."""

    model: str
    hook: str
    corpus: str
    split: str
    context_size: int
    n_tokens: int
    dtype: str  # model dtype of the forward pass; storage keeps it exactly
    stream: bool = False  # streamed from the model while training (``streaming``), never stored

    def __post_init__(self) -> None:
        _require(self.n_tokens >= 1, f"n_tokens must be a positive number of tokens, got {self.n_tokens}.")
        _require(self.context_size >= 2, f"context_size must be at least 2 (the separator and one token), "
                                         f"got {self.context_size}.")
        _require(self.split in SPLITS, f"Unknown split {self.split!r}. Valid splits: {', '.join(SPLITS)}.")
        _require(self.dtype in DTYPES, f"Unknown dtype {self.dtype!r}. Valid dtypes: {', '.join(DTYPES)}.")

    def to_dict(self) -> dict[str, Any]:
        """The fields, ``stream`` only when set: specs keep the keys they had before it."""
        fields = asdict(self)
        if not self.stream:
            del fields["stream"]
        return fields

    def key(self) -> str:
        return config_key({**self.to_dict(), "harvest_version": HARVEST_VERSION})

    def path(self) -> Path:
        safe_model = self.model.replace("/", "__")
        name = f"{self.hook}-{self.corpus}-{self.split}-ctx{self.context_size}-n{self.n_tokens}-{self.key()}"
        return data_dir() / "activations" / safe_model / name


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
    epochs: int = 1  # passes over the stored activations that training may make (n_tokens / stored)
    checkpoint_tokens: tuple[int, ...] = ()  # also snapshot after exactly these many tokens (replaces
    # ``checkpoints``' even spacing): the budgets of a training-length study read from one run
    warm_up_steps: int | None = None  # the sparsity warm-up in steps, instead of sparsity_warm_up_frac

    def __post_init__(self) -> None:
        """Reject a spec that cannot describe a trained SAE before anything is loaded or written."""
        _require(self.variant in training_classes(),
                 f"Unknown SAE variant {self.variant!r}. Valid variants: {', '.join(known_variants())}.")
        _require(self.width >= 1, f"width must be at least 1 latent, got {self.width}.")
        _require(self.batch_size >= 1, f"batch_size must be positive, got {self.batch_size}.")
        if self.is_release:
            _require(self.n_tokens == 0, "A release import trains nothing: its n_tokens must be 0.")
        else:
            _require(self.n_tokens >= self.batch_size,
                     f"n_tokens {self.n_tokens} is less than one batch of {self.batch_size}: "
                     "an SAE needs at least one training step.")
        _require(self.lr > 0 and math.isfinite(self.lr), f"lr must be positive, got {self.lr}.")
        _require(0 <= self.sparsity_warm_up_frac <= 1 and 0 <= self.lr_decay_frac <= 1,
                 "sparsity_warm_up_frac and lr_decay_frac are fractions of training, between 0 and 1.")
        _require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}.")
        _require(self.checkpoints >= 0, f"checkpoints must be 0 or more, got {self.checkpoints}.")
        _require(not (self.checkpoints and self.checkpoint_tokens),
                 "Give checkpoints (evenly spaced) or checkpoint_tokens (exact budgets), not both.")
        _require(all(t == 0 or self.batch_size <= t < self.n_tokens for t in self.checkpoint_tokens)
                 and list(self.checkpoint_tokens) == sorted(set(self.checkpoint_tokens)),
                 f"checkpoint_tokens must increase, each 0 (the initialisation) or at least one batch "
                 f"({self.batch_size}) and below n_tokens {self.n_tokens}, got {list(self.checkpoint_tokens)}.")
        _require(self.warm_up_steps is None or 0 <= self.warm_up_steps <= self.n_steps,
                 f"warm_up_steps must be between 0 and the run's {self.n_steps} steps, got {self.warm_up_steps}.")
        if sparsity_field(training_classes()[self.variant][1]) == "k":
            _require(float(self.sparsity).is_integer() and 1 <= self.sparsity <= self.width,
                     f"{self.variant} keeps k latents: sparsity must be a whole number from 1 to the width "
                     f"{self.width}, got {self.sparsity}.")
        else:
            _require(math.isfinite(self.sparsity) and self.sparsity >= 0,
                     f"sparsity (the {self.variant} penalty coefficient) must be 0 or more, got {self.sparsity}.")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "activations": self.activations.to_dict()}

    def key(self) -> str:
        fields = self.to_dict()
        defaults = {"autocast": False, "checkpoints": 0, "epochs": 1, "checkpoint_tokens": (),
                    "warm_up_steps": None}
        for name, default in defaults.items():  # specs keep the keys they had before these fields
            if fields[name] == default:
                del fields[name]
        return config_key({**fields, "cache_version": CACHE_VERSION})

    def path(self) -> Path:
        a = self.activations
        name = f"{self.variant}-w{self.width}-s{self.sparsity:g}-n{self.n_tokens}-seed{self.seed}-{self.key()}"
        return data_dir() / "saes" / a.model.replace("/", "__") / a.hook / name

    @property
    def n_steps(self) -> int:
        return self.n_tokens // self.batch_size

    @property
    def is_release(self) -> bool:
        return self.init_from.startswith(RELEASE_PREFIX)

    @property
    def sparsity_warm_up_steps(self) -> int:
        return self.warm_up_steps if self.warm_up_steps is not None else int(self.sparsity_warm_up_frac * self.n_steps)

    def checkpoint_steps(self) -> list[int]:
        """Steps before which a snapshot is taken: each of ``checkpoint_tokens`` (whole batches), or
        0 (the initialisation) and evenly after it."""
        if self.checkpoint_tokens:
            return [t // self.batch_size for t in self.checkpoint_tokens]
        if self.checkpoints <= 0:
            return []
        return sorted({round(i * self.n_steps / self.checkpoints) for i in range(self.checkpoints)})


def cache_relpath(spec: SAESpec) -> str:
    """``spec``'s cache folder relative to data/, the form ``SAESpec.init_from`` takes."""
    return str(spec.path().relative_to(data_dir()))


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


def release_spec(release: str, sae_id: str, activations: ActivationSpec, width: int,
                 sparsity: float, batch_size: int, seed: int = 0) -> SAESpec:
    """A cache entry for a sae-lens pretrained SAE (paper profile: start fine-tuning from a release).

    ``sparsity`` is the L1 coefficient, in this repository's scaled convention, that the
    Baseline fine-tune continues with; sae-lens releases subtract b_dec from the input.
    """
    return SAESpec("standard_unit_norm", activations, width, sparsity, n_tokens=0,
                   batch_size=batch_size, seed=seed,
                   init_from=f"{RELEASE_PREFIX}{release}/{sae_id}",
                   options=(("apply_b_dec_to_input", True),))


@dataclass(frozen=True)
class Site:
    """Where a study trains SAEs: a model's hook point, with the label figures use."""

    label: str
    model: str
    hook: str
