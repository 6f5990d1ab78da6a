"""What every notebook does first and last: ``start`` and ``Notebook.close``.

The first code cell of a notebook is papermill's ``parameters`` cell; the second calls
``start`` with its study's name, which gives the notebook's name (the study's ``NOTEBOOK``,
so figures land in ``figures/<profile>/<notebook>/``), the resolved profile, and ``save``,
which writes PNG and PDF and shows the figure. The last cell is ``close``: the claims table,
written to ``claims.json`` with the setup the study reports, and shown.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt

from sae_failures.engine.claims import Claim, ClaimsTable, ClaimsView
from sae_failures.engine.plotting import save_figure, setup_style
from sae_failures.engine.provenance import run_commit
from sae_failures.profiles import Profile, get_profile
from sae_failures.studies import STUDIES, versions


@dataclass(frozen=True)
class Notebook:
    study: str  # e.g. "suppression": the folder under sae_failures/studies/
    name: str  # e.g. "01_feature_suppression": figures land in figures/<profile>/<name>/
    profile: Profile

    def save(self, fig: plt.Figure, name: str) -> None:
        """Save ``fig`` as ``<name>.png`` and ``<name>.pdf``, then show it."""
        save_figure(fig, self.profile.name, self.name, name)
        plt.show()

    def close(self, setup: dict[str, Any], *claims: Claim, model: str | None = None) -> ClaimsView:
        """The notebook's claims table: ``claims`` measured under ``setup`` on ``model`` (default:
        the profile's), written to ``claims.json`` and returned for display in full."""
        table = ClaimsTable(self.name, self.profile.name, model or self.profile.model, setup=setup,
                            versions=versions())
        table.add(*claims)
        table.write()
        return table.view()


def start(study: str, profile: str | Profile, device: str = "auto") -> Notebook:
    """The notebook of ``study`` under ``profile`` (a profile or its name) on ``device`` (``auto``:
    cuda, then mps, then cpu), with the figure style set."""
    if study not in STUDIES:
        raise ValueError(f"Unknown study {study!r}. Valid: {', '.join(STUDIES)}.")
    setup_style()
    run_commit()  # pinned now: the code this run imported is what its claims credit
    name = importlib.import_module(f"sae_failures.studies.{study}").NOTEBOOK
    return Notebook(study, name, get_profile(profile, device) if isinstance(profile, str) else profile)
