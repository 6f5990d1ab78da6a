"""Training-length budgets read from one run per seed (notebook 05's "with more training").

A claim's SAE is trained once to the largest budget and snapshotted at the others. The
schedule makes each snapshot the SAE a run of exactly that length would give: the sparsity
warm-up is the notebook run's own, fixed in steps, and the learning rate stays constant (no
decay), so the run of b tokens and the first b tokens of a longer run are the same
computation on the same data order (``tests/test_saes.py`` checks it bit for bit). The
budgets double, so ``seeds.TrainingTrend`` can read the last doubling. Past one pass over
the stored activations the run repeats them (``SAESpec.epochs``); held-out metrics show
whether that overfits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sae_lens import SAE

from sae_failures.engine.activations import ActivationStore
from sae_failures.engine.cache import ensure_sae, write_history
from sae_failures.engine.saes import get_sae, load_checkpoints, training_history
from sae_failures.engine.specs import SAESpec


def doubling(first: int, last: int) -> tuple[int, ...]:
    """``first``, 2 x ``first``, ... up to ``last``, which must be ``first`` times a power of two."""
    budgets = [first]
    while budgets[-1] < last:
        budgets.append(2 * budgets[-1])
    if budgets[-1] != last:
        raise ValueError(f"{last:,} tokens is not {first:,} doubled a whole number of times.")
    return tuple(budgets)


def long_run(spec: SAESpec, budgets: Sequence[int], stored_tokens: int) -> SAESpec:
    """``spec`` trained to the largest budget with snapshots at the others, under the
    constant schedule that makes every snapshot equal a run of that length."""
    budgets = sorted(budgets)
    longest = budgets[-1]
    return dataclasses.replace(
        spec, n_tokens=longest, epochs=max(spec.epochs, -(-longest // stored_tokens)), lr_decay_frac=0.0,
        warm_up_steps=spec.sparsity_warm_up_steps, checkpoints=0, checkpoint_tokens=tuple(budgets[:-1]))


def budget_saes(spec: SAESpec, budgets: Sequence[int], store: ActivationStore, device: str = "cpu"
                ) -> dict[int, SAE]:
    """The SAE after each budget (tokens asked for -> SAE), from ``long_run``'s one cached run.
    A budget of 0 is the initialisation."""
    run = long_run(spec, budgets, store.n_tokens)
    get_sae(run, store, device=device)
    snapshots = load_checkpoints(run, device=device)
    return {b: snapshots[b // run.batch_size * run.batch_size] for b in sorted(budgets)}


def budget_spec(spec: SAESpec, budgets: Sequence[int], tokens: int, stored_tokens: int) -> SAESpec:
    """The run of ``tokens`` that ``long_run``'s snapshot at ``tokens`` is: the same schedule, stopped there."""
    return dataclasses.replace(long_run(spec, budgets, stored_tokens), n_tokens=tokens, checkpoint_tokens=())


def budget_entry(spec: SAESpec, budgets: Sequence[int], tokens: int, store: ActivationStore,
                 device: str = "cpu") -> SAESpec:
    """``budget_spec``, cached from the long run's snapshot (not trained again), so that a
    fine-tune can start from it (``SAESpec.init_from``). Returns the spec."""
    run, short = long_run(spec, budgets, store.n_tokens), budget_spec(spec, budgets, tokens, store.n_tokens)

    def build(staged) -> None:
        sae = budget_saes(spec, budgets, store, device)[tokens]
        sae.cfg.metadata.sae_failures_spec = short.to_dict()
        sae.save_model(staged)
        write_history(staged, [row for row in training_history(run) if row["tokens"] <= short.n_tokens])

    ensure_sae(short.path(), build, device)
    return short
