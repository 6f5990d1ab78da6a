"""CE loss with an SAE spliced into the language model, through TransformerLens hooks.

The SAE's reconstruction replaces the hook point's activations (``run_with_hooks``), and
the next-token loss is compared with the clean model's and with zero-ablation's
(``metrics.ce_loss_recovered``). Separator and attention-sink positions are never spliced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from sae_lens import SAE
from tqdm import tqdm
from transformer_lens import HookedTransformer

from sae_failures.engine.activations import sink_mask
from sae_failures.engine.metrics import ce_loss_recovered


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
    clean, zero, spliced, count = _mean_losses(model, saes, hook, contexts, separator, batch_contexts)
    return {name: CELosses(clean=clean, sae=spliced[name], zero=zero, n_tokens=count) for name in saes}


def zero_ablation_cost(model: HookedTransformer, hook: str, contexts: np.ndarray, separator: int,
                       batch_contexts: int = 16) -> float:
    """H_zero - H_clean at ``hook`` on ``contexts`` (nats): the budget CE loss recovered divides by."""
    clean, zero, _, _ = _mean_losses(model, {}, hook, contexts, separator, batch_contexts)
    return zero - clean


@torch.no_grad()
def _mean_losses(model: HookedTransformer, saes: Mapping[str, SAE], hook: str, contexts: np.ndarray,
                 separator: int, batch_contexts: int) -> tuple[float, float, dict[str, float], int]:
    """Mean next-token loss clean, zero-ablated and with each SAE spliced, and the tokens scored."""
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
    return totals["clean"] / count, totals["zero"] / count, {name: totals[f"sae:{name}"] / count for name in saes}, count
