"""Aligned training (Brzozowski 2025): every latent's alignment score is 1 by construction.

The alignment score of latent i is a_i = W_enc[i, :] . W_dec[:, i] (paper orientation); the
one-point toy argument says a latent that reconstructs perfectly has a_i = 1, and trained
SAEs split into a mode near 1 and a mode near 0 that holds the dead latents. Aligned
training parametrises the encoder so that a_i = 1 always (the paper's Appendix C):

    W_enc[i, :] = A[i, :] + alpha_i W_dec[:, i]^T,   alpha_i = (1 - A[i, :] . W_dec[:, i]) / ||W_dec[:, i]||^2

with the last coordinate of every A row fixed at 0 and not trained (the rows of W_enc
already live on an affine hyperplane, so nothing is lost: "compression for free"). The
decoder is free and the L1 is weighted by decoder norms, as in sae-lens's ``standard``;
``aligned_topk`` is the same reparametrisation on sae-lens's ``topk``. Saving writes the
derived W_enc, so the file is a plain sae-lens ``standard`` / ``topk`` SAE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sae_lens.saes.sae import SAEConfig
from sae_lens.saes.standard_sae import (
    StandardSAEConfig,
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
)
from sae_lens.saes.topk_sae import TopKSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig
from torch import nn
from typing_extensions import override

from sae_failures.variants.base import DerivedEncoder, register

ARCHITECTURE = "aligned"
TOPK_ARCHITECTURE = "aligned_topk"


def aligned_encoder(A: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """W_enc (d_in, d_sae) from A (d_in - 1, d_sae) and W_dec (d_sae, d_in): the paper's
    ``get_the_encoder_matrix``, with sae-lens's orientation."""
    appended = torch.cat([A, A.new_zeros(1, A.shape[1])])
    inner = (W_dec * appended.T).sum(-1)
    return appended + W_dec.T * (1 - inner) / W_dec.square().sum(-1)


class AlignedEncoder(DerivedEncoder):
    """W_enc is derived from the trainable A and W_dec on every forward pass."""

    TRAINING_ONLY = ("A",)
    A: nn.Parameter
    W_dec: nn.Parameter

    def initialize_weights(self) -> None:
        super().initialize_weights()  # type: ignore[misc]
        # Start from sae-lens's own initial encoder (W_enc = W_dec^T): A is its first d_in - 1 rows.
        self.A = nn.Parameter(self.W_enc.detach()[:-1].clone())
        self.drop_derived_parameters()

    def derived(self, name: str) -> torch.Tensor:
        return aligned_encoder(self.A, self.W_dec)

    @torch.no_grad()
    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        # enc -> s enc and dec -> dec / s keep a_i = 1; scaling A by s does exactly that.
        self.A.mul_(scaling_factor)
        self.W_dec.div_(scaling_factor)
        self.b_dec.div_(scaling_factor)  # type: ignore[attr-defined]
        self.cfg.normalize_activations = "none"  # type: ignore[attr-defined]


@dataclass
class AlignedTrainingSAEConfig(StandardTrainingSAEConfig):
    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE

    @override
    def get_inference_config_class(self) -> type[SAEConfig]:
        return StandardSAEConfig


@dataclass
class AlignedTopKTrainingSAEConfig(TopKTrainingSAEConfig):
    @override
    @classmethod
    def architecture(cls) -> str:
        return TOPK_ARCHITECTURE

    @override
    def get_inference_config_class(self) -> type[SAEConfig]:
        return TopKSAEConfig


class AlignedTrainingSAE(AlignedEncoder, StandardTrainingSAE):
    pass


class AlignedTopKTrainingSAE(AlignedEncoder, TopKTrainingSAE):
    pass


register(ARCHITECTURE, AlignedTrainingSAE, AlignedTrainingSAEConfig)
register(TOPK_ARCHITECTURE, AlignedTopKTrainingSAE, AlignedTopKTrainingSAEConfig)
