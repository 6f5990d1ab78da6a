""""Your turn" cells: a student changes one knob, writes a prediction, and a check says
whether the outcome shows the paper's mechanism.

Each study's ``your_turn`` module runs the experiment at the student's knob and judges the
prediction here: a number within a tolerance (``judge``) or one of a few words such as
"higher" / "lower" (``judge_choice``). With no prediction yet the check runs nothing and asks
for one, so a notebook still runs top to bottom (nbval, papermill) with the cells as committed.
The answers, with the reasoning, are each check's ``why``, shown after a prediction is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

ASK = "Write your prediction in `my_prediction`, then run this cell again."


@dataclass(frozen=True)
class Outcome:
    """What the check found: the student's prediction against what the experiment gave."""

    prediction: float | str | None
    observed: float | str | None  # None until there is a prediction to check
    tolerance: float | None  # None: a choice among words, right when it is the observed one
    why: str  # the mechanism, in a sentence or two
    seen: str = ""  # what the experiment measured, in words

    @property
    def right(self) -> bool | None:
        if self.prediction is None or self.observed is None:
            return None
        if self.tolerance is None:
            return self.prediction == self.observed
        return abs(self.prediction - self.observed) <= self.tolerance

    def text(self) -> str:
        if self.right is None:
            return ASK
        verdict = "Right" if self.right else "Not quite"
        if self.tolerance is None:
            found = f"you predicted {self.prediction!r}; the SAE gave {self.observed!r}"
        else:
            found = (f"you predicted {self.prediction:.3g}; the SAE gave {self.observed:.3g} "
                     f"(a prediction within {self.tolerance:g} of it counts as right)")
        seen = f" ({self.seen})" if self.seen else ""
        return f"{verdict}: {found}{seen}. {self.why}"

    def _repr_markdown_(self) -> str:
        return f"**{self.text()}**" if self.right is None else self.text()

    def __repr__(self) -> str:
        return self.text()


def judge(prediction: float | None, observe: Callable[[], float], tolerance: float, why: str) -> Outcome:
    """Run ``observe()`` only when there is a prediction to check it against."""
    if prediction is None:
        return Outcome(None, None, tolerance, why)
    if isinstance(prediction, bool) or not isinstance(prediction, int | float):
        raise ValueError(f"my_prediction must be a number, got {prediction!r}.")
    return Outcome(float(prediction), float(observe()), tolerance, why)


def judge_choice(prediction: str | None, observe: Callable[[], tuple[str, str]], choices: Sequence[str],
                 why: str) -> Outcome:
    """As ``judge``, for a prediction that is one of ``choices``; ``observe()`` returns the
    observed choice and what was measured, in words."""
    if prediction is None:
        return Outcome(None, None, None, why)
    if prediction not in choices:
        raise ValueError(f"my_prediction must be one of {', '.join(map(repr, choices))}, got {prediction!r}.")
    observed, seen = observe()
    return Outcome(prediction, observed, None, why, seen)


def compare(new: float, old: float, same_within: float) -> str:
    """"higher", "lower" or "same" (``new`` within ``same_within`` of ``old``, relative)."""
    if abs(new - old) <= same_within * abs(old):
        return "same"
    return "higher" if new > old else "lower"


DIRECTIONS = ("higher", "same", "lower")
