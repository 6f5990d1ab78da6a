"""One headline verdict per claim: what CLAIMS.md counts and shows first.

A claim can be measured three ways: by its notebook's own run (seed 0), by that notebook
rerun at other seeds (``make seeds``), and, for the claims that fell short at the notebooks'
sizes, on SAEs trained far longer (notebook 05's length study). Each way has its own
verdict; the headline combines them by one rule, fixed before any run:

1. **The evidence is the longest training that measured the claim**: the length study's
   longest budget where the claim is in it, else the seed runs, else the notebook's one run.
   Its seeds combine as ``seeds.SeedCount``: a seed's own ``partial`` stays partial.
2. **undecided** where that evidence comes from the length study and the claim's quantity
   was still moving toward the paper's value (or the rule's threshold) over its last
   doubling of training, or its seeds were split: more training or more seeds could change it.
3. **direction only** replaces ``reproduced`` where the paper gives a number and the
   measured effect is outside a factor of ``MAGNITUDE_FACTOR`` of it (``magnitude``): the
   effect is there, at another size. A claim whose paper gives a direction only has no
   magnitude to match.
4. **unmeasurable** (this setup cannot measure the claim: no dead latents to place, no second
   mode to read) and **not attempted** (it needs what the repository does not have: an LLM
   judge, a larger model) pass through, with the reason in the claim's notes.
"""

from __future__ import annotations

import math

HEADLINES = {
    "reproduced": "held in the evidence, and where the paper gives a number, within a factor of 2 of it",
    "direction only": "held in direction, with an effect outside a factor of 2 of the paper's number",
    "partial": "held in part: the claim's own rule says partial, or the seeds disagree",
    "not reproduced": "did not hold",
    "undecided": "longer training was still moving the claim's quantity toward the paper, or its seeds split",
    "unmeasurable": "this setup cannot measure the claim (the notes say why)",
    "not attempted": "needs what this repository does not have (the notes say what)",
}
MAGNITUDE_FACTOR = 2.0
MATCHED, DIRECTION = "matched", "direction only"


def magnitude(measured: float, paper: float, factor: float = MAGNITUDE_FACTOR) -> str:
    """``matched`` when the effect ``measured`` has the paper's sign and lies within ``factor``
    of the paper's ``paper``, else ``direction only``. A paper value of 0 ("no difference") is
    no effect size to match: its rule sets no magnitude."""
    if paper == 0 or not math.isfinite(paper):
        raise ValueError(f"A magnitude needs the paper's nonzero effect size, got {paper!r}.")
    if not math.isfinite(measured):
        return DIRECTION
    ratio = measured / paper
    return MATCHED if 1 / factor <= ratio <= factor else DIRECTION


def headline(verdict: str, magnitude_: str = "", undecided: bool = False) -> str:
    """The headline of a claim whose combined evidence gave ``verdict`` (``claims.VERDICTS``),
    with the magnitude it matched (``magnitude``; empty where the paper gives no number) and
    whether the length study left it undecided."""
    if verdict in ("unmeasurable", "not_attempted"):
        return verdict.replace("_", " ")
    if undecided:
        return "undecided"
    if verdict == "reproduced" and magnitude_ == DIRECTION:
        return DIRECTION
    return verdict.replace("_", " ")


def counts(headlines: list[str]) -> dict[str, int]:
    """How many claims have each headline, in ``HEADLINES`` order (all of them, zeros included)."""
    unknown = sorted(set(headlines) - set(HEADLINES))
    if unknown:
        raise ValueError(f"Unknown headline(s) {unknown}. Valid: {', '.join(HEADLINES)}.")
    return {h: headlines.count(h) for h in HEADLINES}
