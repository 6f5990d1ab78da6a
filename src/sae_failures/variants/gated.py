"""The Gated SAE as the paper trains it (Rajamanoharan et al. 2024), and its ablations.

Encoder, with x' = x - b_dec:
    pi_gate = W_gate x' + b_gate,   f = 1[pi_gate > 0] * ReLU(W_mag x' + b_mag),
    W_mag = exp(r_mag) W_gate (weight sharing)
Loss: ||x - x_hat(f)||^2 + lambda ||ReLU(pi_gate)||_1 + ||x - x_hat_frozen(ReLU(pi_gate))||^2,
with x_hat_frozen using stop-gradient copies of W_dec and b_dec, and decoder rows at unit norm.

sae-lens's ``GatedTrainingSAE`` has the same encoder; this class differs where sae-lens does:
- the auxiliary reconstruction uses *detached* W_dec and b_dec (sae-lens lets it train the
  decoder: that is exactly the paper's first ablation, ``aux_trains_decoder=True``);
- decoder rows are held at unit norm and the L1 is the plain sum of ReLU(pi_gate) (sae-lens
  leaves the decoder free and weights the L1 by decoder norms; with unit rows they agree).
b_dec still gets gradient from both encoder terms through x' = x - b_dec, as in the paper's
pseudo-code: only the decoder *copies* inside x_hat_frozen are frozen.

Options (one class, not copies): ``aux_trains_decoder`` (ablation), ``train_r_mag=False``
(ablation: W_mag = W_gate), ``tie_mag=False`` (ablation: W_mag its own matrix), and
``rescale_shift_only`` (GS-7: start from a baseline SAE, freeze everything except a
per-latent rescale exp(r_mag) and shift b_mag of its pre-activation, no penalty). Tied
variants save as sae-lens ``gated``; the untied one as ``gated_untied``, registered here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from sae_lens import SAE
from sae_lens.registry import SAE_CLASS_REGISTRY, register_sae_class
from sae_lens.saes.gated_sae import (
    GatedSAE,
    GatedSAEConfig,
    GatedTrainingSAE,
    GatedTrainingSAEConfig,
)
from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig
from sae_lens.saes.sae import SAEConfig, TrainStepInput
from torch import nn
from typing_extensions import override

from sae_failures.variants.base import register
from sae_failures.variants.unit_norm import UnitNormDecoder

ARCHITECTURE = "gated_paper"
UNTIED_ARCHITECTURE = "gated_untied"


def gated_losses(x: torch.Tensor, pi_gate: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                 l1_coefficient: float, train_decoder: bool) -> dict[str, torch.Tensor]:
    """The sparsity and auxiliary terms: lambda ||ReLU(pi_gate)||_1 and
    ||x - (ReLU(pi_gate) W_dec + b_dec)||^2, the decoder detached unless ``train_decoder``."""
    gate = torch.relu(pi_gate)
    if not train_decoder:
        W_dec, b_dec = W_dec.detach(), b_dec.detach()
    aux = (gate @ W_dec + b_dec - x).pow(2).sum(-1).mean()
    # A 1-norm, equal to the sum for ReLU(pi_gate) and compiled far better (``variants.unit_norm``).
    return {"l1_loss": l1_coefficient * gate.norm(p=1, dim=-1).mean(), "auxiliary_reconstruction_loss": aux}


@torch.no_grad()
def gated_as_jumprelu(sae: GatedSAE) -> JumpReLUSAE:
    """GS-1: a weight-shared Gated SAE is a JumpReLU SAE.

    pi_gate > 0  <=>  exp(r_mag) (W_gate x' + b_gate) > 0  <=>  W_mag x' + b_mag > theta with
    theta = b_mag - exp(r_mag) b_gate; sae-lens's JumpReLU computes ReLU(z) 1[z > theta] with
    z = W_enc x' + b_enc, so W_enc = W_mag and b_enc = b_mag give the same latents.
    """
    cfg = JumpReLUSAEConfig(d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, dtype=sae.cfg.dtype,
                            device=sae.cfg.device, apply_b_dec_to_input=sae.cfg.apply_b_dec_to_input)
    jump = JumpReLUSAE(cfg)
    scale = sae.r_mag.exp()
    jump.W_enc.copy_(sae.W_enc * scale)
    jump.b_enc.copy_(sae.b_mag)
    jump.threshold.copy_(sae.b_mag - scale * sae.b_gate)
    jump.W_dec.copy_(sae.W_dec)
    jump.b_dec.copy_(sae.b_dec)
    return jump


@dataclass
class GatedUntiedSAEConfig(GatedSAEConfig):
    @override
    @classmethod
    def architecture(cls) -> str:
        return UNTIED_ARCHITECTURE


class GatedUntiedSAE(GatedSAE):
    """Inference Gated SAE whose magnitude path has its own W_mag (the untied ablation)."""

    W_mag: nn.Parameter

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        self.W_mag = nn.Parameter(self.W_enc.detach().clone())

    @override
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        sae_in = self.process_sae_in(x)
        active = (sae_in @ self.W_enc + self.b_gate > 0).to(self.dtype)
        magnitude = self.hook_sae_acts_pre(sae_in @ self.W_mag + self.b_mag)
        return self.hook_sae_acts_post(active * torch.relu(magnitude))


@dataclass
class PaperGatedTrainingSAEConfig(GatedTrainingSAEConfig):
    aux_trains_decoder: bool = False
    train_r_mag: bool = True
    tie_mag: bool = True
    rescale_shift_only: bool = False

    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE

    @override
    def get_inference_config_class(self) -> type[SAEConfig]:
        return GatedSAEConfig if self.tie_mag else GatedUntiedSAEConfig


class PaperGatedTrainingSAE(UnitNormDecoder, GatedTrainingSAE):
    cfg: PaperGatedTrainingSAEConfig  # type: ignore[assignment]

    def __init__(self, cfg: PaperGatedTrainingSAEConfig, use_error_term: bool = False):
        if cfg.rescale_shift_only and not (cfg.tie_mag and cfg.train_r_mag):
            raise ValueError("rescale_shift_only trains r_mag and b_mag of a tied Gated SAE; "
                             "it cannot be combined with tie_mag=False or train_r_mag=False.")
        super().__init__(cfg, use_error_term)
        if not cfg.train_r_mag:
            self.r_mag.requires_grad_(False)
        if cfg.rescale_shift_only:
            for name, param in self.named_parameters():
                param.requires_grad_(name in ("r_mag", "b_mag"))

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        if not self.cfg.tie_mag:
            self.W_mag = nn.Parameter(self.W_enc.detach().clone())

    def magnitude_weights(self) -> torch.Tensor:
        return self.W_enc * self.r_mag.exp() if self.cfg.tie_mag else self.W_mag

    @override
    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sae_in = self.process_sae_in(x)
        active = (sae_in @ self.W_enc + self.b_gate > 0).to(self.dtype)
        magnitude = self.hook_sae_acts_pre(sae_in @ self.magnitude_weights() + self.b_mag)
        return self.hook_sae_acts_post(active * torch.relu(magnitude)), magnitude

    @override
    def calculate_aux_loss(self, step_input: TrainStepInput, feature_acts: torch.Tensor,
                           hidden_pre: torch.Tensor, sae_out: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cfg.rescale_shift_only:  # GS-7: reconstruction only, the gate is frozen
            return {}
        pi_gate = self.process_sae_in(step_input.sae_in) @ self.W_enc + self.b_gate
        return gated_losses(step_input.sae_in, pi_gate, self.W_dec, self.b_dec,
                            step_input.coefficients["l1"], self.cfg.aux_trains_decoder)

    @torch.no_grad()
    def load_start(self, start: SAE[Any], activation_scale: float) -> None:
        """GS-7: this Gated SAE becomes the baseline ``start`` exactly (gate = magnitude =
        its pre-activation, r_mag = 0), in the scaled space it trains in."""
        if not self.cfg.rescale_shift_only:
            raise ValueError("Only rescale_shift_only Gated SAEs start from another SAE.")
        if start.cfg.apply_b_dec_to_input != self.cfg.apply_b_dec_to_input:
            raise ValueError("The start SAE and the Gated config disagree on apply_b_dec_to_input.")
        self.W_enc.copy_(start.W_enc / activation_scale)
        self.b_gate.copy_(start.b_enc)
        self.b_mag.copy_(start.b_enc)
        self.r_mag.zero_()
        self.W_dec.copy_(start.W_dec * activation_scale)
        self.b_dec.copy_(start.b_dec * activation_scale)

    @override
    @torch.no_grad()
    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        if not self.cfg.tie_mag:
            self.W_mag.mul_(scaling_factor)
        super().fold_activation_norm_scaling_factor(scaling_factor)


register(ARCHITECTURE, PaperGatedTrainingSAE, PaperGatedTrainingSAEConfig)
if UNTIED_ARCHITECTURE not in SAE_CLASS_REGISTRY:
    register_sae_class(UNTIED_ARCHITECTURE, GatedUntiedSAE, GatedUntiedSAEConfig)
