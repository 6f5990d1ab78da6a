"""Registration of this repository's variants with sae-lens."""

from __future__ import annotations

from typing import Any

import torch
from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY, register_sae_training_class
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig


def register(architecture: str, sae_class: type[TrainingSAE[Any]],
             config_class: type[TrainingSAEConfig]) -> None:
    """Register a training variant with sae-lens once (re-imports are harmless)."""
    if architecture not in SAE_TRAINING_CLASS_REGISTRY:
        register_sae_training_class(architecture, sae_class, config_class)


class DerivedEncoder:
    """Mixin for variants whose encoder is computed from other parameters on every access.

    sae-lens's initialisation creates ``W_enc`` (and ``b_enc``) as parameters; the variant
    calls ``drop_derived_parameters`` after it, and from then on reading one of ``DERIVED``
    returns ``derived(name)``. Saving writes the derived tensors in their place and drops
    the variant's own parameters (``TRAINING_ONLY``), so the file is a plain sae-lens SAE.
    """

    DERIVED: tuple[str, ...] = ("W_enc",)
    TRAINING_ONLY: tuple[str, ...] = ()

    def derived(self, name: str) -> torch.Tensor:
        raise NotImplementedError

    def drop_derived_parameters(self) -> None:
        for name in self.DERIVED:
            delattr(self, name)
        self._derived_encoder = True

    def __getattr__(self, name: str) -> Any:
        # Reached only for names nn.Module does not hold.
        if self.__dict__.get("_derived_encoder", False) and name in self.DERIVED:
            return self.derived(name)
        return super().__getattr__(name)  # type: ignore[misc]

    def process_state_dict_for_saving_inference(self, state_dict: dict[str, Any]) -> None:
        for name in self.TRAINING_ONLY:
            state_dict.pop(name)
        for name in self.DERIVED:
            state_dict[name] = self.derived(name).detach().contiguous().clone()
        super().process_state_dict_for_saving_inference(state_dict)  # type: ignore[misc]
