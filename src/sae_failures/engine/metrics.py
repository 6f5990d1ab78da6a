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

from sae_failures.engine.devices import to_numpy


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


EVAL_BATCH = 8192  # tokens per evaluation batch; memory holds one batch's latents, not all of them


@torch.no_grad()
def encode_decode(sae: SAE, x: torch.Tensor, batch_size: int = EVAL_BATCH
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and reconstructions of every row of ``x``, on the CPU: for small ``x`` only (both are
    held whole). Metrics over many tokens stream instead (``reconstruction_metrics``, ``latent_firing``)."""
    acts, recons = [], []
    for chunk in x.split(batch_size):
        f = sae.encode(chunk.to(sae.device))
        acts.append(f.cpu())
        recons.append(sae.decode(f).cpu())
    return torch.cat(acts), torch.cat(recons)


@torch.no_grad()
def latent_firing(sae: SAE, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Per latent: on how many rows of ``x`` it fires (> 0), and the sum of its activations there.

    Batch by batch on the SAE's device, so peak memory does not grow with the number of tokens.
    """
    count = total = None
    for chunk in x.split(batch_size):
        f = sae.encode(chunk.to(sae.device)).float()
        active = f > 0
        c, t = active.sum(0), (f * active).sum(0, dtype=torch.float64)
        count, total = (c, t) if count is None else (count + c, total + t)
    return to_numpy(count), to_numpy(total)


def firing_frequency(sae: SAE, x: torch.Tensor) -> np.ndarray:
    """Per latent: the fraction of rows of ``x`` on which it fires."""
    return latent_firing(sae, x)[0] / x.shape[0]


@torch.no_grad()
def reconstruction_metrics(sae: SAE, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """L0, MSE, FVU, explained variance, L2 ratio, gamma and dead fraction on ``x``.

    The same quantities as ``l0``, ``mse``, ``fvu``, ... on the whole of ``x``, accumulated batch by
    batch in float64 on the SAE's device: peak memory is one batch's, however many tokens.
    """
    sums = dict.fromkeys(("l0", "sq_err", "x_sq", "l2_ratio", "xhat_sq", "dot"), 0.0)
    x_sum = fired = None
    for chunk in x.split(batch_size):
        xc = chunk.to(sae.device)
        f = sae.encode(xc)
        xh, x64 = sae.decode(f).double(), xc.double()
        sums["l0"] += float((f != 0).sum())
        sums["sq_err"] += float((x64 - xh).pow(2).sum())
        sums["x_sq"] += float(x64.pow(2).sum())
        sums["l2_ratio"] += float((xh.norm(dim=-1) / x64.norm(dim=-1)).sum())
        sums["xhat_sq"] += float(xh.pow(2).sum())
        sums["dot"] += float((xh * x64).sum())
        part, on = x64.sum(0), (f != 0).any(0)
        x_sum, fired = (part, on) if x_sum is None else (x_sum + part, fired | on)
    n = x.shape[0]
    variance = sums["x_sq"] - float(x_sum.pow(2).sum()) / n  # E||x - mean||^2, times n
    dead = ~fired
    return {
        "l0": sums["l0"] / n,
        "mse": sums["sq_err"] / n,
        "fvu": sums["sq_err"] / variance,
        "explained_variance": 1.0 - sums["sq_err"] / variance,
        "l2_ratio": sums["l2_ratio"] / n,
        "gamma": sums["xhat_sq"] / sums["dot"],
        "dead_fraction": float(dead.float().mean()),
        "n_dead": int(dead.sum()),
        "n_eval_tokens": int(n),
    }
