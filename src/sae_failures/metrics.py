"""Every metric of ``claims.md``'s "Common definitions", under the names used there.

Conventions: ``x`` and ``x_hat`` are ``(tokens, d)``; MSE sums over d and averages over
tokens (as sae-lens's training loss does); CE losses are in nats per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sae_lens import SAE
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from sae_failures.activations import sink_mask


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
        return Bimodality((m, m), (0.0, 0.0), (0.5, 0.5), float("nan"))
    gmm = GaussianMixture(n_components=2, random_state=seed).fit(x[:, None])
    order = np.argsort(gmm.means_.ravel())
    means, stds = gmm.means_.ravel()[order], np.sqrt(gmm.covariances_.ravel()[order])
    weights = gmm.weights_[order]
    g, k = skew(x, bias=False), kurtosis(x, fisher=True, bias=False)
    sarle = (g ** 2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    return Bimodality(tuple(means.tolist()), tuple(stds.tolist()), tuple(weights.tolist()), float(sarle))


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


@dataclass(frozen=True)
class CELosses:
    clean: float
    sae: float
    zero: float
    n_tokens: int

    @property
    def recovered(self) -> float:
        return ce_loss_recovered(self.clean, self.sae, self.zero)

    @property
    def perplexity_clean(self) -> float:
        return float(np.exp(self.clean))

    @property
    def perplexity_sae(self) -> float:
        return float(np.exp(self.sae))

    def to_dict(self) -> dict[str, float]:
        return {"ce_clean": self.clean, "ce_sae": self.sae, "ce_zero": self.zero,
                "ce_loss_recovered": self.recovered, "perplexity_clean": self.perplexity_clean,
                "perplexity_sae": self.perplexity_sae, "n_ce_tokens": self.n_tokens}


def _start_layer(hook: str) -> int:
    """The block a ``blocks.L.*`` hook sits in: every pass can start there from block L's
    input, the cached ``blocks.{L-1}.hook_resid_post`` (0 for any other hook: run it all)."""
    parts = hook.split(".")
    if len(parts) >= 3 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return 0


def ce_losses(model: HookedTransformer, sae: SAE, hook: str, contexts: np.ndarray,
              separator: int, batch_contexts: int = 16) -> CELosses:
    """Next-token loss clean, with ``hook`` replaced by the SAE's reconstruction, and zero-ablated.

    See ``ce_losses_for``, which shares the clean and zero-ablated passes among many SAEs.
    """
    return ce_losses_for(model, {"sae": sae}, hook, contexts, separator, batch_contexts)["sae"]


@torch.no_grad()
def ce_losses_for(model: HookedTransformer, saes: Mapping[str, SAE], hook: str,
                  contexts: np.ndarray, separator: int, batch_contexts: int = 16
                  ) -> dict[str, CELosses]:
    """CE losses of every SAE in ``saes`` spliced at ``hook``, on the same tokens.

    Splicing goes through TransformerLens ``run_with_hooks``. Separator and attention-sink
    positions (``sink_mask``) are left untouched, as they were never in the SAE's training
    data; losses average over positions whose target is not a separator. The clean and
    zero-ablated passes run once for all SAEs, and for a hook inside block L
    (``blocks.L.*``) the blocks before L run once per batch: every pass starts at
    block L from the cached residual (``start_at_layer``), which at layer 12 of 30 saves 40%
    of the compute.
    """
    totals = dict.fromkeys(["clean", "zero", *(f"sae:{name}" for name in saes)], 0.0)
    count = 0
    start_layer = _start_layer(hook)
    for start in tqdm(range(0, len(contexts), batch_contexts), desc=f"CE splice {hook}", leave=False):
        tokens = torch.from_numpy(contexts[start:start + batch_contexts]).long().to(model.cfg.device)
        prefix = tokens
        if start_layer:
            name = f"blocks.{start_layer - 1}.hook_resid_post"  # = block L's resid_pre
            _, cache = model.run_with_cache(tokens, names_filter=name, stop_at_layer=start_layer)
            prefix = cache[name]

        def splice(act: torch.Tensor, hook: object, mode: str, tokens: torch.Tensor = tokens
                   ) -> torch.Tensor:
            keep = ~sink_mask(act, tokens, separator)
            out = act.clone()
            if mode == "zero":
                out[keep] = 0
            else:
                sae = saes[mode.removeprefix("sae:")]
                out[keep] = sae(act[keep].to(sae.device, sae.dtype)).to(act.device, act.dtype)
            return out

        scored = (tokens[:, 1:] != separator).float()
        for mode in totals:
            hooks = [] if mode == "clean" else [
                (hook, lambda act, hook, mode=mode: splice(act, hook, mode))]
            loss = model.run_with_hooks(prefix, return_type="loss", loss_per_token=True, fwd_hooks=hooks,
                                        start_at_layer=start_layer or None, tokens=tokens)
            totals[mode] += float((loss.float() * scored).sum())
        count += int(scored.sum())
    clean, zero = totals["clean"] / count, totals["zero"] / count
    return {name: CELosses(clean=clean, sae=totals[f"sae:{name}"] / count, zero=zero, n_tokens=count)
            for name in saes}


def evaluate(model: HookedTransformer, hook: str, saes: Mapping[str, SAE], x_eval: torch.Tensor,
             contexts: np.ndarray, separator: int) -> pd.DataFrame:
    """One row per SAE: reconstruction metrics on ``x_eval`` and CE / perplexity spliced at ``hook``."""
    ce = ce_losses_for(model, saes, hook, contexts, separator)
    rows = [{"name": name, **reconstruction_metrics(sae, x_eval), **ce[name].to_dict()}
            for name, sae in saes.items()]
    return pd.DataFrame(rows).set_index("name")


def evaluate_grid(model: HookedTransformer, hook: str, saes: dict[tuple, SAE], x_eval: torch.Tensor,
                  contexts: np.ndarray, separator: int,
                  levels: tuple[str, ...] = ("variant", "width", "sparsity")) -> pd.DataFrame:
    """``metrics.evaluate`` over SAEs keyed by tuples; the tuple's parts become columns."""
    named = {" ".join(map(str, key)): sae for key, sae in saes.items()}
    frame = evaluate(model, hook, named, x_eval, contexts, separator)
    keys = pd.DataFrame(list(saes), columns=list(levels), index=list(named))
    return keys.join(frame).reset_index(drop=True)
