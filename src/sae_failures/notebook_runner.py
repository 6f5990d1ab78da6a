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


def render_carriage_returns(text: str) -> str:
    """What a terminal shows for ``text``: each ``\\r`` returns to the line start and overwrites.

    tqdm redraws its bar with ``\\r``; a notebook file keeps every redraw, so a first run
    stores thousands of bar states. Lines that a ``\\r`` left blank (bars with
    ``leave=False``) are dropped; trailing padding is stripped.
    """
    shown = []
    for line in text.split("\n"):
        screen = ""
        for segment in line.split("\r"):
            screen = segment + screen[len(segment):]
        screen = screen.rstrip()
        if screen or "\r" not in line:
            shown.append(screen)
    return "\n".join(shown)


def collapse_streams(nb: nbformat.NotebookNode) -> None:
    """Merge each cell's consecutive stdout/stderr chunks into one, as the terminal would show it."""
    for cell in nb.cells:
        merged: list = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = render_carriage_returns(out.text)
        if "outputs" in cell:
            cell.outputs = [o for o in merged if o.output_type != "stream" or o.text.strip()]


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
        from sae_failures.network import require_network

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
        executed = nbformat.read(out, as_version=4)
        collapse_streams(executed)
        atomic_write_text(out, nbformat.writes(executed) + "\n")
        print(f"[{profile}] {nb.name} done in {timings[nb.stem]:.0f} s", flush=True)
        if update:
            commit_outputs(out, nb)
    timing_path = figures_dir(profile) / "timings.json"
    previous = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    atomic_write_text(timing_path, json.dumps({**previous, **timings}, indent=2) + "\n")
    return assemble(profile)
