"""Every metric of ``claims.md``'s "Common definitions", under the names used there.

Conventions: ``x`` and ``x_hat`` are ``(tokens, d)``; MSE sums over d and averages over
tokens (as sae-lens's training loss does); CE losses are in nats per token. Pure tensor
functions: splicing SAEs into the model is ``splicing``, a table of every metric per SAE
is ``evaluation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sae_lens import SAE


def l0(feature_acts: torch.Tensor) -> float:
    """Mean number of non-zero latents per token."""
    return float((feature_acts != 0).float().sum(-1).mean())


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean over tokens of ||x - x_hat||^2 (summed over d)."""
    return float((x - x_hat).pow(2).sum(-1).mean())


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained: E||x - x_hat||^2 / E||x - mean(x)||^2."""
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return 1.0 - fvu(x, x_hat)


def l2_ratio(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean over tokens of ||x_hat|| / ||x||."""
    return float((x_hat.norm(dim=-1) / x.norm(dim=-1)).mean())


def relative_reconstruction_bias(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """gamma = E||x_hat||^2 / E[x_hat . x]; 1 is unbiased, < 1 is shrinkage."""
    return float(x_hat.pow(2).sum() / (x_hat * x).sum())


def dead_latents(feature_acts: torch.Tensor) -> torch.Tensor:
    """Boolean mask of latents never active on these tokens."""
    return (feature_acts != 0).sum(0) == 0


def alignment_scores(sae: SAE) -> torch.Tensor:
    """a_i = W_enc[i, :] . W_dec[:, i] in the paper's orientation.

    sae-lens stores ``W_enc`` as ``(d_in, d_sae)`` and ``W_dec`` as ``(d_sae, d_in)``. For a
    Gated SAE the score is the magnitude path's, W_mag = exp(r_mag) W_enc: that path sets
    the size of the reconstruction (the gate only decides whether a latent fires).
    """
    scores = (sae.W_enc.detach().T * sae.W_dec.detach()).sum(-1)
    r_mag = getattr(sae, "r_mag", None)
    return scores * r_mag.detach().exp() if r_mag is not None else scores


@dataclass(frozen=True)
class Bimodality:
    """A 2-component Gaussian mixture (components ordered low, high) and Sarle's coefficient."""

    means: tuple[float, float]
    stds: tuple[float, float]
    weights: tuple[float, float]
    sarle: float
    in_high_mode: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0, bool))
    """Per value: True where the fitted mixture assigns it to its high-mean component."""

    @property
    def sarle_bimodal(self) -> bool:
        """Sarle's rule of thumb: b > 5/9 (the value of a uniform distribution) suggests two modes."""
        return self.sarle > 5 / 9

    @property
    def ashman_d(self) -> float:
        """Ashman's D = sqrt(2) |mu_1 - mu_0| / sqrt(s_0^2 + s_1^2); D > 2: the components separate."""
        spread = float(np.hypot(*self.stds))
        return float(np.sqrt(2) * abs(self.means[1] - self.means[0]) / spread) if spread > 0 else 0.0

    @property
    def bimodal(self) -> bool:
        """Both tests: Sarle's b > 5/9 and the mixture's components separated (Ashman's D > 2).

        Sarle's b alone also flags a single skewed mode; D alone can split one flat mode.
        """
        return self.sarle_bimodal and self.ashman_d > 2


def bimodality(values: np.ndarray | torch.Tensor, seed: int = 0) -> Bimodality:
    """Fit two Gaussians to ``values`` and compute Sarle's bimodality coefficient
    b = (g^2 + 1) / (k + 3 (n - 1)^2 / ((n - 2)(n - 3))), g the sample skewness and k the
    sample excess kurtosis (both bias-corrected)."""
    from scipy.stats import kurtosis, skew  # imported here: scikit-learn takes a second to import
    from sklearn.mixture import GaussianMixture

    x = np.asarray(values, dtype=np.float64).ravel()
    n = len(x)
    if n < 4:
        raise ValueError(f"bimodality needs at least 4 values, got {n}.")
    if np.ptp(x) == 0:  # one value (e.g. an SAE at initialisation): a single point mass
        m = float(x[0])
        return Bimodality((m, m), (0.0, 0.0), (0.5, 0.5), float("nan"), np.ones(n, bool))
    gmm = GaussianMixture(n_components=2, random_state=seed).fit(x[:, None])
    order = np.argsort(gmm.means_.ravel())
    means, stds = gmm.means_.ravel()[order], np.sqrt(gmm.covariances_.ravel()[order])
    weights = gmm.weights_[order]
    g, k = skew(x, bias=False), kurtosis(x, fisher=True, bias=False)
    sarle = (g ** 2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    in_high = gmm.predict(x[:, None]) == order[-1]
    return Bimodality(tuple(means.tolist()), tuple(stds.tolist()), tuple(weights.tolist()), float(sarle),
                      in_high)


def ce_loss_recovered(h_clean: float, h_sae: float, h_zero: float) -> float:
    """(H_zero - H_sae) / (H_zero - H_clean): 1 is perfect, 0 is no better than zero-ablation."""
    return (h_zero - h_sae) / (h_zero - h_clean)


@torch.no_grad()
def encode_decode(sae: SAE, x: torch.Tensor, batch_size: int = 8192
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and reconstructions of ``x``, in batches on the SAE's device, returned on the CPU."""
    acts, recons = [], []
    for chunk in x.split(batch_size):
        f = sae.encode(chunk.to(sae.device))
        acts.append(f.cpu())
        recons.append(sae.decode(f).cpu())
    return torch.cat(acts), torch.cat(recons)


def reconstruction_metrics(sae: SAE, x: torch.Tensor) -> dict[str, float]:
    """L0, MSE, FVU, explained variance, L2 ratio, gamma and dead fraction on ``x``."""
    f, x_hat = encode_decode(sae, x)
    dead = dead_latents(f)
    return {
        "l0": l0(f),
        "mse": mse(x, x_hat),
        "fvu": fvu(x, x_hat),
        "explained_variance": explained_variance(x, x_hat),
        "l2_ratio": l2_ratio(x, x_hat),
        "gamma": relative_reconstruction_bias(x, x_hat),
        "dead_fraction": float(dead.float().mean()),
        "n_dead": int(dead.sum()),
        "n_eval_tokens": int(x.shape[0]),
    }


