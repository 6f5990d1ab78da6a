""""Your turn" cells: a student changes one knob, writes a prediction, and a check says
whether the outcome shows the paper's mechanism.

Each study's ``your_turn`` module runs the experiment at the student's knob and judges the
prediction here. With no prediction yet the check runs nothing and asks for one, so a
notebook still runs top to bottom (nbval, papermill) with the cells as committed. The
answers, with the reasoning, are each function's ``why``, shown after a prediction is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ASK = "Write your prediction in `my_prediction`, then run this cell again."


@dataclass(frozen=True)
class Outcome:
    """What the check found: the student's prediction against what the experiment gave."""

    prediction: float | None
    observed: float | None  # None until there is a prediction to check
    tolerance: float
    why: str  # the mechanism, in a sentence or two

    @property
    def right(self) -> bool | None:
        if self.prediction is None or self.observed is None:
            return None
        return abs(self.prediction - self.observed) <= self.tolerance

    def text(self) -> str:
        if self.right is None:
            return ASK
        verdict = "Right" if self.right else "Not quite"
        return (f"{verdict}: you predicted {self.prediction:.3g}; the SAE gave {self.observed:.3g} "
                f"(within {self.tolerance:g} counts). {self.why}")

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
