"""Run the numbered notebooks through papermill for one profile (``make figures``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat

from sae_failures.claims import assemble
from sae_failures.paths import REPO_ROOT, atomic_write_text, figures_dir
from sae_failures.profiles import get_profile

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "python3"


def notebooks(selected: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, in order; ``selected`` filters by name prefix (e.g. "00")."""
    found = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selected:
        return found
    chosen = [nb for nb in found if any(nb.name.startswith(s) for s in selected)]
    if len(chosen) == 0:
        raise ValueError(f"No notebook matches {selected}. Valid: {', '.join(nb.stem for nb in found)}.")
    return chosen


def commit_outputs(executed: Path, committed: Path) -> None:
    """Copy an executed notebook over the committed one, minus papermill's injected parameters.

    The injected cell (``profile = "offline"``) would otherwise override the parameters
    cell's default when nbval runs the committed notebook in the smoke profile.
    """
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nbformat.write(nb, committed)


def run(profile: str, selected: list[str] | None = None, update_committed: bool | None = None
        ) -> Path:
    """Execute notebooks for ``profile``; write executed copies, figures and CLAIMS.md.

    Executed copies land in ``figures/<profile>/<stem>/<stem>.ipynb``. For the offline
    profile they are also copied over ``notebooks/`` so the committed notebooks carry
    the offline run's outputs.
    """
    import papermill

    prof = get_profile(profile)  # validates the name before anything runs
    if prof.needs_network:
        from sae_failures.model import require_network

        require_network(f"The {profile!r} profile")
    update = (profile == "offline") if update_committed is None else update_committed
    timings = {}
    for nb in notebooks(selected):
        out = figures_dir(profile, nb.stem) / nb.name
        print(f"[{profile}] running {nb.name} ...", flush=True)
        start = time.perf_counter()
        papermill.execute_notebook(
            str(nb), str(out), parameters={"profile": profile}, kernel_name=KERNEL_NAME,
            cwd=str(NOTEBOOK_DIR), progress_bar=True,
        )
        timings[nb.stem] = round(time.perf_counter() - start, 1)
        print(f"[{profile}] {nb.name} done in {timings[nb.stem]:.0f} s", flush=True)
        if update:
            commit_outputs(out, nb)
    timing_path = figures_dir(profile) / "timings.json"
    previous = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    atomic_write_text(timing_path, json.dumps({**previous, **timings}, indent=2) + "\n")
    return assemble(profile)
