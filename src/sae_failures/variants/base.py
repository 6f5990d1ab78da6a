"""Registration of this repository's variants with sae-lens."""

from __future__ import annotations

from typing import Any

from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY, register_sae_training_class
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig


def register(architecture: str, sae_class: type[TrainingSAE[Any]],
             config_class: type[TrainingSAEConfig]) -> None:
    """Register a training variant with sae-lens once (re-imports are harmless)."""
    if architecture not in SAE_TRAINING_CLASS_REGISTRY:
        register_sae_training_class(architecture, sae_class, config_class)
