"""Scaled SAE for decoder fine-tuning against feature suppression (Wright & Sharkey 2024).

A per-latent scale s sits between encoder and decoder: y = W_d (s * f) + b_d. Starting
from a trained unit-norm SAE (s = 1), a *method* names the parameters that train;
everything else is frozen, and the sparsity term is dropped (the fine-tuning spec sets the L1
coefficient to 0) except for Baseline, which continues the original training.

Method sets. The post's table lost the last three rows; these are our reading: the
"Unrotated" methods train biases and scales but no weight matrix, so directions never
rotate.

| method            | trainable            |
|-------------------|----------------------|
| Baseline          | W_enc, b_enc, W_dec, b_dec (s fixed at 1, L1 kept) |
| Scale             | s                    |
| Unrotated Decoder | s, b_dec             |
| Decoder           | s, W_dec, b_dec      |
| Unrotated Encoder | s, b_enc             |
| Encoder           | s, W_enc, b_enc      |
| Unrotated All     | s, b_enc, b_dec      |

The base SAEs use the post's architecture f = ReLU(W_enc x + b_enc) (sae-lens option
``apply_b_dec_to_input=False``), so decoder-side methods cannot change which latents fire.
Saving folds s into W_dec, so the result is a plain sae-lens ``standard`` SAE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from sae_lens import SAE
from torch import nn
from typing_extensions import override

from sae_failures.variants.base import register
from sae_failures.variants.unit_norm import UnitNormTrainingSAE, UnitNormTrainingSAEConfig

ARCHITECTURE = "scaled_finetune"

METHODS: dict[str, tuple[str, ...]] = {
    "Baseline": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "Scale": ("scale",),
    "Unrotated Decoder": ("scale", "b_dec"),
    "Decoder": ("scale", "W_dec", "b_dec"),
    "Unrotated Encoder": ("scale", "b_enc"),
    "Encoder": ("scale", "W_enc", "b_enc"),
    "Unrotated All": ("scale", "b_enc", "b_dec"),
}
ENCODER_METHODS = ("Unrotated Encoder", "Encoder", "Unrotated All")


@dataclass
class ScaledTrainingSAEConfig(UnitNormTrainingSAEConfig):
    finetune_method: str = "Scale"

    def __post_init__(self) -> None:
        if self.finetune_method not in METHODS:
            raise ValueError(f"Unknown fine-tuning method {self.finetune_method!r}. "
                             f"Valid methods: {', '.join(METHODS)}.")
        super().__post_init__()

    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE


class ScaledTrainingSAE(UnitNormTrainingSAE):
    scale: nn.Parameter

    def __init__(self, cfg: ScaledTrainingSAEConfig, use_error_term: bool = False):
        super().__init__(cfg, use_error_term)
        self._freeze()

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        self.scale = nn.Parameter(torch.ones(self.cfg.d_sae, dtype=self.dtype, device=self.device))

    def _freeze(self) -> None:
        trainable = METHODS[self.cfg.finetune_method]
        for name, param in self.named_parameters():
            param.requires_grad_(name in trainable)

    @torch.no_grad()
    def load_start(self, start: SAE[Any], activation_scale: float) -> None:
        """Copy a trained SAE's weights, un-folding the activation scale it was saved with."""
        if start.cfg.apply_b_dec_to_input != self.cfg.apply_b_dec_to_input:
            raise ValueError("The start SAE and the fine-tuning config disagree on apply_b_dec_to_input.")
        self.W_enc.copy_(start.W_enc / activation_scale)
        self.b_enc.copy_(start.b_enc)
        self.W_dec.copy_(start.W_dec * activation_scale)
        self.b_dec.copy_(start.b_dec * activation_scale)
        self.scale.fill_(1.0)

    @override
    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        return super().decode(feature_acts * self.scale)

    @override
    def process_state_dict_for_saving_inference(self, state_dict: dict[str, Any]) -> None:
        scale = state_dict.pop("scale")
        state_dict["W_dec"] = state_dict["W_dec"] * scale[:, None]


register(ARCHITECTURE, ScaledTrainingSAE, ScaledTrainingSAEConfig)
