"""What notebook 01 trains and reads, per profile (``profiles`` holds the values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuppressionSizes:
    """Notebook 01 (feature suppression)."""

    toy_p: tuple[float, ...]  # FS-1 toy: firing probabilities
    toy_m: tuple[float, ...]  # FS-1 toy: feature strengths
    layers: tuple[int, ...]  # residual layers with a base SAE and every fine-tune
    finetune_tokens: int  # each fine-tune's tokens (halfway snapshot: ``experiment.heldout_change``)
    finetune_batch: int  # each fine-tune's batch: small batches buy the steps convergence takes
    frequency_tokens: int  # training tokens FS-9 and FS-7/FS-8 count firings over (one firing = 1 / this)
    l1_from_post: bool  # base SAEs at the post's c (a notebook parameter), else the standard L1
    train_tokens: int | None = None  # each base SAE's training tokens (None: the profile's train_tokens)
