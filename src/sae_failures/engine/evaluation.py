"""One table row per SAE: reconstruction metrics on held-out activations and CE spliced into the model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from sae_lens import SAE
from transformer_lens import HookedTransformer

from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.splicing import ce_losses_for


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
    """``evaluate`` over SAEs keyed by tuples; the tuple's parts become columns."""
    named = {" ".join(map(str, key)): sae for key, sae in saes.items()}
    frame = evaluate(model, hook, named, x_eval, contexts, separator)
    keys = pd.DataFrame(list(saes), columns=list(levels), index=list(named))
    return keys.join(frame).reset_index(drop=True)
