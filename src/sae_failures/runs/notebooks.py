"""Run the numbered notebooks through papermill for one profile (``make figures``).

Each notebook runs with its outputs staged in a hidden folder: when it succeeds they
replace ``figures/<profile>/<notebook>/``; when it fails they go to
``figures/<profile>/failed/<notebook>/`` (the executed notebook holds the traceback) and
``CLAIMS.md`` says that the claims still shown for it come from an earlier run. One run
per profile at a time: a second waits for the first (a lock on the figures folder).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from sae_failures.engine.cache import entry_lock
from sae_failures.engine.claims import FAILED_DIR, FAILURE_FILE, assemble, update_readme
from sae_failures.engine.paths import REPO_ROOT, atomic_path, atomic_write_text, figures_dir
from sae_failures.engine.provenance import now_iso
from sae_failures.profiles import Profile, get_profile
from sae_failures.runs.execute import (
    NotebooksFailed,
    execute,
    notebooks,
)
from sae_failures.runs.seed_runs import record_notebook_run
from sae_failures.studies import versions


def notebook_parameters(nb: Path) -> list[str]:
    """The names the notebook's papermill ``parameters`` cell defines."""
    import papermill

    return list(papermill.inspect_notebook(str(nb)))


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["name=value", ...]`` -> {name: value}, each value read as YAML (``true``, ``3``, ``1e-3``, text)."""
    import yaml

    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"Bad parameter {pair!r}: write NAME=VALUE, e.g. start_from_release=pythia-70m-deduped-res-sm.")
        params[name] = yaml.safe_load(value) if value else ""
    return params


def params_for(chosen: list[Path], params: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Each notebook's share of ``params`` (the names its parameters cell defines).

    A name that none of the chosen notebooks defines is refused, naming what each one takes.
    """
    declared = {nb: notebook_parameters(nb) for nb in chosen}
    unknown = [name for name in params if not any(name in names for names in declared.values())]
    if unknown:
        takes = "; ".join(f"{nb.stem}: {', '.join(names)}" for nb, names in declared.items())
        raise ValueError(f"No chosen notebook has the parameter(s) {', '.join(unknown)}. Their parameters: {takes}.")
    return {nb: {k: v for k, v in params.items() if k in names} for nb, names in declared.items()}


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


def _failure_line(nb: Path, err: Exception, executed: Path) -> str:
    cell = getattr(err, "exec_count", None)
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    last = (str(evalue).strip().splitlines() or [""])[-1]
    where = f"in cell [{cell}]" if cell is not None else "before its first cell ran"
    return f"{nb.stem} failed {where}: {ename}: {last} (full traceback: {executed})"


def run_one(nb: Path, profile: str, root: Path, update_committed: bool, params: dict[str, Any] | None = None
            ) -> float:
    """Execute ``nb``; on success its outputs replace ``root/<stem>``, else they go to ``root/failed/<stem>``.

    Returns the seconds it took; raises ``NotebooksFailed`` with one line on failure.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{nb.stem}.", suffix=".running", dir=root))
    produced = staging / profile / nb.stem
    produced.mkdir(parents=True)
    out = produced / nb.name
    start = time.perf_counter()
    try:
        execute(nb, out, {"profile": profile, **(params or {})}, staging)
    except Exception as err:  # papermill's own error, a dead kernel, a missing kernel ...
        failed = root / FAILED_DIR / nb.stem
        executed = failed / nb.name
        (produced / FAILURE_FILE).write_text(json.dumps(
            {"notebook": nb.stem, "at": now_iso(), "error": _failure_line(nb, err, executed)}, indent=1))
        with atomic_path(failed) as staged:
            os.replace(produced, staged)
        shutil.rmtree(staging, ignore_errors=True)
        raise NotebooksFailed(_failure_line(nb, err, executed)) from err
    seconds = round(time.perf_counter() - start, 1)
    executed = nbformat.read(out, as_version=4)
    collapse_streams(executed)
    atomic_write_text(out, nbformat.writes(executed) + "\n")
    with atomic_path(root / nb.stem) as staged:
        os.replace(produced, staged)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(root / FAILED_DIR / nb.stem, ignore_errors=True)  # the failure is superseded
    if update_committed:
        commit_outputs(root / nb.stem / nb.name, nb)
    return seconds


# Notebooks a profile leaves out unless they are named, and why: notebook 05 repeats every other
# notebook at more seeds and with longer training (in the paper profile, hundreds of GPU-hours;
# in the classroom profile, more than a lesson's minutes).
ONLY_WHEN_NAMED = {
    "paper": ("05", "which `make estimate` does not count"),
    "classroom": ("05", "longer than the lesson the classroom profile is sized for"),
}


def hub_needs(prof: Profile) -> list[str]:
    """What ``prof`` would fetch from the hub that the local Hugging Face cache does not hold:
    checked before anything runs, so a machine without network fails at once, and one whose
    cache holds everything (a prepared GPU box, the rehearsal) runs offline."""
    from sae_lens.loading.pretrained_saes_directory import get_repo_id_and_folder_name
    from transformer_lens.loading_from_pretrained import get_official_model_name

    from sae_failures.engine.corpus import OPENWEBTEXT_REPO, openwebtext_local
    from sae_failures.engine.model import OFFLINE_MODEL
    from sae_failures.engine.network import cached_file, cached_repo

    models = {prof.model, prof.alignment.model, *(site.model for site in prof.gated.sites)} - {OFFLINE_MODEL}
    repos = {f"model {get_official_model_name(m)}": get_official_model_name(m) for m in sorted(models)}
    for m in sorted(models):  # a model whose config names another repo's tokenizer (GELU-1L's)
        config = cached_file(get_official_model_name(m), "config.json")
        tokenizer = json.loads(config.read_text()).get("tokenizer_name") if config is not None else None
        if tokenizer and tokenizer != get_official_model_name(m):
            repos[f"tokenizer {tokenizer} (of {m})"] = tokenizer
    for release, sae_id in prof.alignment.releases.items():
        repos[f"release {release}"] = get_repo_id_and_folder_name(release, sae_id)[0]
    missing = [what for what, repo in repos.items() if not cached_repo(repo)]
    if prof.corpus == "openwebtext" and openwebtext_local() is None:
        missing.append(f"dataset {OPENWEBTEXT_REPO}")
    return missing


def run(profile: str, selected: list[str] | None = None, update_committed: bool | None = None,
        params: dict[str, Any] | None = None) -> Path:
    """Execute notebooks for ``profile``; write executed copies, figures and CLAIMS.md.

    Executed copies land in ``figures/<profile>/<stem>/<stem>.ipynb``. For the offline
    profile they are also copied over ``notebooks/`` so the committed notebooks carry
    the offline run's outputs. A failed notebook does not stop the others; the run then
    raises ``NotebooksFailed`` naming each failure. ``params`` go to the notebooks that take
    them (``make figures PARAMS='start_from_release=...'``); a run with any is not copied
    over ``notebooks/``, since the committed notebooks carry the defaults' outputs.
    """
    prof = get_profile(profile)  # validates the name (and the device) before anything runs
    chosen = notebooks(selected)
    named, why = ONLY_WHEN_NAMED.get(profile, ("", ""))
    if not selected and (left := [nb for nb in chosen if nb.name[:2] == named]):
        chosen = [nb for nb in chosen if nb not in left]
        print(f"[{profile}] {', '.join(nb.stem for nb in left)} runs only when named (NOTEBOOKS=05): it reruns "
              f"the other notebooks at more seeds and trains their SAEs longer, {why}.", flush=True)
    shares = params_for(chosen, params or {})
    missing = hub_needs(prof)
    if missing:
        from sae_failures.engine.network import require_network

        require_network(f"The {profile!r} profile ({'; '.join(missing)})")
    update = (profile == "offline" and not params) if update_committed is None else update_committed
    root = figures_dir(profile)
    failures = []
    with entry_lock(root):
        for stale in root.glob(".*.running"):  # staging of a run that died
            shutil.rmtree(stale, ignore_errors=True)
        timings = {}
        for nb in chosen:
            print(f"[{profile}] running {nb.name} ...", flush=True)
            try:
                timings[nb.stem] = run_one(nb, profile, root, update, shares[nb])
                claims = root / nb.stem / "claims.json"
                if not shares[nb] and claims.exists():
                    record_notebook_run(nb, profile, json.loads(claims.read_text()))
                print(f"[{profile}] {nb.name} done in {timings[nb.stem]:.0f} s", flush=True)
            except NotebooksFailed as err:
                print(f"[{profile}] {err}", flush=True)
                failures.append(str(err))
        timing_path = root / "timings.json"
        previous = json.loads(timing_path.read_text()) if timing_path.exists() else {}
        atomic_write_text(timing_path, json.dumps({**previous, **timings}, indent=2) + "\n")
        table = assemble(profile, versions())
        if update:
            update_readme(REPO_ROOT / "README.md", versions())
    if failures:
        raise NotebooksFailed("\n".join(failures))
    return table
