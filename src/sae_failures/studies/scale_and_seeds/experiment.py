"""Notebook 05: every language-model claim over seeds and training length.

One 1M-token run per claim cannot say whether a verdict would survive another seed, nor
whether a claim that falls short fails or has an under-trained SAE. This study asks both.

- **Seeds.** ``seed_runs`` reruns the language-model notebooks at seeds 0 .. n-1; a claim's
  seed count is the number of runs that reproduced it (``seeds.SeedCount``).
- **Training length.** The claims that fell short at 1M tokens (``LENGTH_CLAIMS``) are
  measured again on SAEs trained far longer, through their notebooks' own read-outs and
  verdict functions, at fewer sweep points (``profiles.ScaleSizes``), by each paper's study
  (its ``lengths`` module). Every seed trains one long run per SAE, read at doubling budgets
  (``training_length``). Each claim yields one number per budget, ``LengthClaim.quantity``,
  plotted against tokens with the paper's value and the rule's threshold.
- **Decided or not.** A claim is decided when its seed count at the longest budget is
  one-sided and its quantity (mean over seeds) moved by less than the claim's tolerance
  over the last doubling, or moved away from the paper (``seeds.Decision``).

Every SAE and snapshot is cached in ``data/`` by its spec, and every (family, seed) part's
rows are recorded under ``results/`` (``records``: committed, keyed by the version of the
study that measures them, not by this one), so rerunning
the notebook costs minutes once every part has run, on any clone; ``make lengths`` runs one
part. The rules that read the rows (``LENGTH_CLAIMS``, ``decision``) live here, so changing
them re-reads the records without recomputing any.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sae_failures.engine.claims import NO_EVIDENCE, Claim, rejudge
from sae_failures.engine.devices import resolve_device
from sae_failures.engine.headline import headline, magnitude
from sae_failures.engine.seeds import Decision, SeedCount, TrainingTrend, tokens_label
from sae_failures.profiles import Profile
from sae_failures.runs import records
from sae_failures.runs.seed_runs import seed_counts
from sae_failures.studies import notebook_study
from sae_failures.studies.alignment import experiment as alignment
from sae_failures.studies.alignment import lengths as alignment_family
from sae_failures.studies.gated import experiment as gated_saes
from sae_failures.studies.gated import lengths as gated_family
from sae_failures.studies.suppression import experiment as suppression
from sae_failures.studies.suppression import lengths as suppression_family


@dataclass(frozen=True)
class LengthClaim:
    """What a claim's training-length curve plots, and the rule that reads it (fixed before the runs)."""

    family: str  # which part of the study measures it
    quantity: str  # the number per budget
    threshold: float  # where the claim's verdict rule draws its line on that number
    tolerance: float  # a smaller change over the last doubling counts as settled
    paper: float | None = None  # the paper's value, where it is a number
    effect: bool = False  # ``paper`` is an effect size the headline matches (``headline.magnitude``)

    @property
    def target(self) -> tuple[float, str]:
        """What "toward the paper" means: its number, or the rule's threshold where it gives a direction."""
        return (self.paper, "the paper's") if self.paper is not None else (self.threshold, "the rule's threshold")


FAMILIES = ("suppression", "alignment", "alignment_reference", "alignment_sweeps", "gated")
LENGTH_CLAIMS: dict[str, LengthClaim] = {
    "FS-4": LengthClaim("suppression", "smallest encoder-method L0 / base L0", suppression.FS4_BLOWUP, 0.1),
    "FS-8": LengthClaim("suppression", "|r(additive, strength)| - |r(scale, strength)|", 0.0, 0.02),
    "FS-9": LengthClaim("suppression", "smallest over layers of the largest gap in sorted log10 frequency (decades)",
                        suppression.FS9_JUMP_DECADES, 0.05),
    "AB-2": LengthClaim("alignment", "architectures bimodal near 0 and 1 (of 4)", 4.0, 0.5, paper=4.0),
    "AB-3": LengthClaim("alignment", "share of the standard SAE's low mode that is dead or rare",
                        alignment.AB3_LOW_INACTIVE, 0.02),
    "AB-4": LengthClaim("alignment_reference", "Pearson(alignment, MCS)", alignment.AB4_PEARSON, 0.02,
                        paper=alignment.AB4_PAPER_PEARSON,
                        effect=True),
    "AB-10": LengthClaim("alignment", "Ashman's D of the TopK SAE's alignment scores", 2.0, 0.1),
    "AB-7": LengthClaim("alignment_sweeps", "dead fraction of the aligned SAEs", 0.0, 0.01, paper=0.0),
    "AB-9": LengthClaim("alignment_sweeps", "aligned TopK's CE-recovered gain at the largest k",
                        alignment.AB9_CE_NO_DIFFERENCE, 0.002),
    "GS-3": LengthClaim("gated", "largest |Gated gamma - 1|", gated_saes.GS3_UNBIASED, 0.002, paper=0.01),
    "GS-4": LengthClaim("gated", "Gated minus baseline CE recovered, mean over points, worst site", 0.0, 0.005),
    "GS-6": LengthClaim("gated", "Gated minus untied W_mag (CE recovered at matched L0)",
                        -gated_saes.LENGTH_NOISE, 0.003, paper=0.0),
    "GS-7": LengthClaim("gated", "rescale & shift's share of the Gated gain", gated_saes.GS7_SMALL_PART, 0.05),
}


FAMILY_STUDIES = {"suppression": "suppression", "alignment": "alignment", "alignment_reference": "alignment",
                  "alignment_sweeps": "alignment", "gated": "gated"}
MEASURES: dict[str, Callable[[Profile, int], list[dict]]] = {
    "suppression": suppression_family.suppression_lengths, "alignment": alignment_family.alignment_lengths,
    "alignment_reference": alignment_family.alignment_reference_lengths,
    "alignment_sweeps": alignment_family.alignment_sweep_lengths, "gated": gated_family.gated_lengths}


def on_this_machine(settings: Profile) -> Profile:
    """``settings`` with its device resolved, as ``profiles.get_profile`` gives it: a record is
    keyed by the device it ran on, so ``PROFILES["offline"]`` (device ``auto``) must key as the
    notebooks' resolved profile does, not as a profile no record was made with."""
    return dataclasses.replace(settings, device=resolve_device(settings.device))


def family_study(family: str) -> str:
    """The study whose ``lengths`` module measures ``family`` (its records carry that study's key)."""
    if family not in FAMILY_STUDIES:
        raise ValueError(f"Unknown family {family!r}. Valid: {', '.join(FAMILIES)}.")
    return FAMILY_STUDIES[family]


def family_key(settings: Profile, family: str) -> str:
    """What a family's record is keyed by: its study's versions and the resolved profile."""
    return records.study_key(family_study(family), on_this_machine(settings))


def family_results(settings: Profile, family: str, seed: int) -> list[dict]:
    """One family's rows (claim, seed, tokens, quantity, verdict, ...) at one seed: from its
    record (``records``), else measured now and recorded; each judged by the rules now
    (``claims.rejudge``), so a changed threshold re-reads the record."""
    settings = on_this_machine(settings)
    rows = records.recorded("lengths", settings, family, seed, family_study(family),
                            lambda: MEASURES[family](settings, seed))
    return [rejudge(r) for r in rows]


def parts(settings: Profile) -> pd.DataFrame:
    """Every part of the profile's study (each seed run, each family at each seed): the state
    of its record (``records.record_state``) and the command that runs it."""
    settings = on_this_machine(settings)
    sizes, rows = settings.scale, []
    for name in sizes.seed_notebooks:
        study = notebook_study(name)
        rows += [{"part": f"seed run {name}", "seed": seed,
                  "state": records.record_state(records.record_path(settings.name, "seed_runs", name, seed),
                                                records.study_key(study, settings), study),
                  "run": f"make seeds PROFILE={settings.name} SEEDS='{seed}' NOTEBOOKS='{name[:2]}'"}
                 for seed in range(sizes.seeds)]
    rows += [{"part": f"lengths {family}", "seed": seed,
              "state": records.record_state(records.record_path(settings.name, "lengths", family, seed),
                                            family_key(settings, family), family_study(family)),
              "run": f"make lengths PROFILE={settings.name} FAMILY={family} SEEDS='{seed}'"}
             for family in FAMILIES for seed in range(sizes.seeds)]
    return pd.DataFrame(rows)


def length_results(settings: Profile, families: Sequence[str] = FAMILIES, seeds: Sequence[int] | None = None
                   ) -> pd.DataFrame:
    """Every family's rows at every seed (default: the profile's ``scale.seeds``)."""
    seeds = range(settings.scale.seeds) if seeds is None else seeds
    return pd.DataFrame([row for family in families for seed in seeds
                         for row in family_results(settings, family, seed)])


def trend(claim: str, rows: pd.DataFrame) -> TrainingTrend:
    """The claim's quantity, mean over seeds, at each budget."""
    mine = rows[rows.claim == claim].groupby("tokens").quantity.mean()
    spec = LENGTH_CLAIMS[claim]
    target, name = spec.target
    return TrainingTrend(tuple(int(t) for t in mine.index), tuple(float(v) for v in mine), spec.tolerance,
                         paper=target, target_name=name)


def judged_at_longest(claim: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The claim's rows at its longest budget whose SAEs could judge it (not ``claims.NO_EVIDENCE``)."""
    mine = rows[rows.claim == claim]
    longest = mine[mine.tokens == mine.tokens.max()]
    return longest[~longest.verdict.isin(NO_EVIDENCE)]


def decision(claim: str, rows: pd.DataFrame) -> Decision:
    """Seeds at the longest budget (those that could judge it), and the trend over budgets."""
    return Decision(SeedCount.of_verdicts(list(judged_at_longest(claim, rows).verdict)), trend(claim, rows))


def length_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per length claim: the quantity (mean over seeds) at each budget, seeds held at the
    longest, and the decision."""
    table = rows.groupby(["claim", "tokens"]).quantity.mean().unstack("tokens")
    table.columns = [tokens_label(t) for t in table.columns]
    order = [c for c in LENGTH_CLAIMS if c in table.index]
    table = table.loc[order]
    table.insert(0, "quantity", [LENGTH_CLAIMS[c].quantity for c in order])
    table["decision"] = [str(decision(c, rows)) if len(judged_at_longest(c, rows)) else "no seed could measure it"
                         for c in order]
    return table


def length_headline(claim: str, rows: pd.DataFrame) -> str:
    """A length claim's headline (``headline``): the longest budget's seeds, ``undecided`` unless
    decided, its magnitude against the paper's effect (mean over those seeds) where it has one."""
    decided, spec = decision(claim, rows), LENGTH_CLAIMS[claim]
    size = magnitude(decided.trend.values[-1], spec.paper) if spec.effect and spec.paper else ""
    return headline(decided.verdict, size, undecided=not decided.decided)


def seeds_headline(count: SeedCount, magnitudes: Sequence[str]) -> str:
    """A claim's headline from its seed runs: their count, and the magnitude most of them matched."""
    sizes = [m for m in magnitudes if isinstance(m, str) and m]  # a record made before magnitudes has none
    size = max(set(sizes), key=sizes.count) if sizes else ""
    return headline(count.verdict, size)


def claims(outcomes: pd.DataFrame, rows: pd.DataFrame) -> list[Claim]:
    """Every language-model claim the seed runs judged, with its seed count at the notebooks'
    sizes, and every length claim measured in ``rows``, which takes its verdict from the
    longest budget's seeds and says whether it is decided; each with its headline."""
    counts = seed_counts(outcomes)
    measured = [c for c in LENGTH_CLAIMS if c in set(rows.claim)]
    made = []
    for claim_id in dict.fromkeys([*counts, *measured]):
        count = counts.get(claim_id)
        at_notebook = f"{count} at the notebook's sizes" if count else "its notebook has no seed runs in this profile"
        if claim_id in measured and not len(judged_at_longest(claim_id, rows)):
            mine = rows[rows.claim == claim_id]
            last = mine[mine.tokens == mine.tokens.max()].iloc[0]
            made.append(Claim(claim_id, last.statement, last.paper_value, last.measured, last.verdict,
                              evidence="length_curves.png", notes=f"no seed's SAE could measure it at "
                              f"{tokens_label(last.tokens)} tokens (seed {last.seed}: {last.measured})",
                              seeds=f"{at_notebook}; none could measure it at the longest budget",
                              more_training="-", headline=last.verdict.replace("_", " ")))
        elif claim_id in measured:
            first = rows[rows.claim == claim_id].iloc[0]
            spec, decided = LENGTH_CLAIMS[claim_id], decision(claim_id, rows)
            curve = ", ".join(f"{tokens_label(t)} {v:.3g}" for t, v in zip(decided.trend.tokens, decided.trend.values,
                                                                       strict=True))
            made.append(Claim(claim_id, first.statement, first.paper_value,
                              f"{spec.quantity}: {curve} (mean of {decided.seeds.n} seeds)", decided.verdict,
                              evidence="length_curves.png",
                              seeds=f"{at_notebook}; {decided.seeds} at {tokens_label(decided.trend.tokens[-1])} tokens",
                              more_training=str(decided), headline=length_headline(claim_id, rows)))
        else:
            first = outcomes.loc[claim_id].iloc[0]
            made.append(Claim(claim_id, first.statement, first.paper_value,
                              "; ".join(f"seed {s}: {v}" for s, v in outcomes.loc[claim_id].verdict.items()),
                              count.verdict, evidence="seed_verdicts.png", seeds=at_notebook,
                              more_training="not in the length study (it reproduced in its notebook's run)",
                              headline=seeds_headline(count, list(outcomes.loc[claim_id].get("magnitude", [])))))
    return made


def setup(settings: Profile, seeds: list[int], outcomes: pd.DataFrame) -> dict[str, Any]:
    """What notebook 05's claims were read under: seeds, budgets, the rules and the seed runs' commits."""
    sizes = settings.scale
    return {"seeds": seeds, "seed_notebooks": list(sizes.seed_notebooks), "budgets": list(sizes.budgets),
            "sweep_budgets": list(sizes.sweep_budgets), "scale": {k: str(v) for k, v in vars(sizes).items()},
            "length_claims": {c: vars(spec) for c, spec in LENGTH_CLAIMS.items()},
            "seed_run_commits": sorted(set(outcomes.git_commit)), "train_tokens_stored": settings.train_tokens}
