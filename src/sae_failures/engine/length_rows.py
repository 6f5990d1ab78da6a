"""What every family's measurement shares: the row it records, and long-budget specs."""

from __future__ import annotations

import dataclasses

from sae_failures.engine.claims import Claim
from sae_failures.engine.specs import SAESpec


def row(claim: Claim, seed: int, tokens: int, quantity: float, heldout_ev: float) -> dict:
    """One claim at one budget: its number, its verdict, and how it was judged (``claims.rejudge``
    judges it again under the rules of the code that reads it)."""
    return {"claim": claim.id, "seed": seed, "tokens": tokens, "quantity": float(quantity),
            "verdict": claim.verdict, "measured": claim.measured, "heldout_ev": float(heldout_ev),
            "statement": claim.statement, "paper_value": claim.paper_value, "rule": claim.rule,
            "inputs": claim.inputs}


def scaled_tokens(budget: int, ratio: float, batch_size: int) -> int:
    """``ratio`` x ``budget`` in whole batches, at least one."""
    return max(batch_size, round(budget * ratio / batch_size) * batch_size)


def with_passes(spec: SAESpec, stored_tokens: int) -> SAESpec:
    """``spec`` allowed the passes over the stored activations its tokens need: a fine-tune
    given its notebook's share of a long budget outgrows one pass."""
    return dataclasses.replace(spec, epochs=max(spec.epochs, -(-spec.n_tokens // stored_tokens)))
