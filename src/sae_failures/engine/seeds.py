"""Verdicts read from many seeds and from training length, under rules fixed before any run.

A claim checked on n seeds was reproduced in k of them and partly reproduced (its own rule's
``partial``) in j more. Its verdict comes from 90% Wilson intervals: ``reproduced`` when the
interval of k / n lies wholly above 1/2, ``not_reproduced`` when that of (k + j) / n lies
wholly below (most seeds not even partly), ``partial`` otherwise: the seeds disagree too
much to say, or they agree on ``partial``, which stays partial rather than counting as a
failure. With 3 seeds only 3/3 and 0/3 are one-sided; with 10 seeds, 8/10 and 2/10 are.

A verdict is **decided** when its seed interval is one-sided and the claim's measured
quantity has settled with training: over the last doubling of training tokens it moved by
less than the claim's tolerance, or it moved away from the paper's value (more training
would not bring it closer). Otherwise it is **undecided**, and the trend says which way
the quantity is going. A claim read at one budget only is decided by its seeds alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import norm

CONFIDENCE = 0.9  # two-sided Wilson interval
THRESHOLD = 0.5  # the fraction of seeds a claim must (not) hold in


def wilson_interval(held: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of the proportion ``held / n``."""
    if n < 1 or not 0 <= held <= n:
        raise ValueError(f"A seed count needs 0 <= held <= n and n >= 1, got {held} of {n}.")
    z = float(norm.ppf(0.5 + confidence / 2))
    p, z2 = held / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class SeedCount:
    """In how many of ``n`` seeds a claim held (``held``), and in how many more it held in part."""

    held: int
    n: int
    partly: int = 0

    def __post_init__(self) -> None:
        wilson_interval(self.held + self.partly, self.n)  # the counts must fit in n

    @classmethod
    def of(cls, outcomes: Sequence[bool]) -> SeedCount:
        return cls(sum(bool(o) for o in outcomes), len(outcomes))

    @classmethod
    def of_verdicts(cls, verdicts: Sequence[str]) -> SeedCount:
        """From each seed's own verdict: ``reproduced`` held, ``partial`` held in part."""
        return cls(sum(v == "reproduced" for v in verdicts), len(verdicts), sum(v == "partial" for v in verdicts))

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.held, self.n)

    @property
    def one_sided(self) -> bool:
        """Whether the seeds settle the verdict one way (``reproduced`` or ``not_reproduced``)."""
        return self.verdict != "partial"

    @property
    def verdict(self) -> str:
        if self.interval[0] > THRESHOLD:
            return "reproduced"
        return "not_reproduced" if wilson_interval(self.held + self.partly, self.n)[1] < THRESHOLD else "partial"

    def __str__(self) -> str:
        lo, hi = self.interval
        partly = f" (+{self.partly} partial)" if self.partly else ""
        return f"{self.held}/{self.n} seeds{partly} ({CONFIDENCE:.0%} Wilson {lo:.2f}-{hi:.2f})"


@dataclass(frozen=True)
class TrainingTrend:
    """A claim's measured quantity at doubling training budgets, against the paper's value."""

    tokens: tuple[int, ...]  # increasing, each twice the one before
    values: tuple[float, ...]
    tolerance: float  # a change smaller than this over the last doubling counts as settled
    paper: float | None = None  # the paper's value, or the rule's threshold where the paper gives a direction
    target_name: str = "the paper's"  # what ``paper`` is, in words

    def __post_init__(self) -> None:
        if len(self.tokens) < 2 or len(self.tokens) != len(self.values):
            raise ValueError("A training trend needs one value per budget and at least two budgets.")
        if any(b != 2 * a for a, b in zip(self.tokens, self.tokens[1:], strict=False)):
            raise ValueError(f"Budgets must double from one to the next, got {list(self.tokens)}.")

    @property
    def last_change(self) -> float:
        return self.values[-1] - self.values[-2]

    @property
    def settled(self) -> bool:
        return abs(self.last_change) < self.tolerance

    @property
    def moving_away(self) -> bool:
        return self.paper is not None and abs(self.values[-1] - self.paper) > abs(self.values[-2] - self.paper)

    def __str__(self) -> str:
        span = f"{tokens_label(self.tokens[-2])} -> {tokens_label(self.tokens[-1])} tokens"
        change = f"{self.last_change:+.3g} over {span}"
        if self.settled:
            return f"settled ({change}, tolerance {self.tolerance:g})"
        if self.moving_away:
            return f"moving away from {self.target_name} {self.paper:g} ({change})"
        moving = f"still moving toward {self.target_name} {self.paper:g}" if self.paper is not None else "still changing"
        return f"{moving} at {tokens_label(self.tokens[-1])} tokens ({change})"


def tokens_label(n: float) -> str:
    """Budgets as the text calls them: 250k, 1M, 16M."""
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


@dataclass(frozen=True)
class Decision:
    seeds: SeedCount
    trend: TrainingTrend | None

    @property
    def verdict(self) -> str:
        return self.seeds.verdict

    @property
    def decided(self) -> bool:
        if not self.seeds.one_sided:
            return False
        return self.trend is None or self.trend.settled or self.trend.moving_away

    def __str__(self) -> str:
        state = "decided" if self.decided else "undecided"
        why = ["seed interval straddles 1/2"] if not self.seeds.one_sided else []
        why.append("one budget only" if self.trend is None else str(self.trend))
        return f"{state}: {self.seeds}; {'; '.join(why)}"
