"""What every notebook does first: resolve the profile, set the figure style, save figures.

The first code cell of a notebook is papermill's ``parameters`` cell; the second calls
``start``, which returns the profile and a ``save`` that writes PNG and PDF under
``figures/<profile>/<notebook>/`` and shows the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt

from sae_failures.plotting import save_figure, setup_style
from sae_failures.profiles import Profile, get_profile
from sae_failures.provenance import run_commit


@dataclass(frozen=True)
class Notebook:
    name: str  # e.g. "01_feature_suppression": figures land in figures/<profile>/<name>/
    profile: Profile

    def save(self, fig: plt.Figure, name: str) -> None:
        """Save ``fig`` as ``<name>.png`` and ``<name>.pdf``, then show it."""
        save_figure(fig, self.profile.name, self.name, name)
        plt.show()


def start(name: str, profile: str | Profile, device: str = "auto") -> Notebook:
    """The notebook ``name`` under ``profile`` (a profile or its name) on ``device`` (``auto``: cuda,
    then mps, then cpu), with the figure style set."""
    setup_style()
    run_commit()  # pinned now: the code this run imported is what its claims credit
    return Notebook(name, get_profile(profile, device) if isinstance(profile, str) else profile)
