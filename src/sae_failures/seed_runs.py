"""Every language-model claim at more seeds: the notebooks themselves, rerun with ``seed=s``.

A seed run executes one of the language-model notebooks through papermill with its
``seed`` parameter set, so every claim is judged by the very cells and verdict functions
of the notebook that states it. Its executed copy, figures and ``claims.json`` are a cache
entry, ``data/seed_runs/<profile>/<notebook>/seed<s>-<key>/``, keyed by the notebook's
code cells, the package modules they import and the profile: a seed run is served only to
the code that made it. Its claims are also recorded under ``results/`` (``records``), so a
clone without ``data/`` keeps them. The SAEs a run trains are cached as any SAE (the seed is in their spec), so
after a code change a rerun repeats the evaluation, not the training.

A seed fixes an SAE's initialisation and the order it reads the stored activations; the
activations, the evaluation tokens and the toy examples' data are the same for every seed.
A claim *holds* in a seed when that run's verdict is ``reproduced``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path

import nbformat
import pandas as pd
from tqdm.auto import tqdm

from sae_failures import records
from sae_failures.cache import CacheCorruptedError, ensure_entry
from sae_failures.paths import data_dir
from sae_failures.profiles import LM_NOTEBOOKS, Profile, get_profile
from sae_failures.seeds import SeedCount

CLAIMS_FILE = "claims.json"


def code_key(notebook: Path, settings: Profile, package: Path | None = None) -> str:
    """16 hex digits over the notebook's code cells, the package modules they import
    (``records.code_digest``) and the profile.

    Outputs and markdown are left out, so committing an executed notebook keeps its seed runs.
    """
    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    return records.code_digest(cells, settings, package)


def seed_run_path(notebook: Path, profile: str, seed: int) -> Path:
    return data_dir() / "seed_runs" / profile / notebook.stem / f"seed{seed}-{code_key(notebook, get_profile(profile))}"


def _load_claims(entry: Path) -> dict:
    files = list(entry.glob(f"*/*/{CLAIMS_FILE}"))
    if len(files) != 1:
        raise CacheCorruptedError(f"{entry} holds {len(files)} {CLAIMS_FILE} files, expected 1")
    return json.loads(files[0].read_text())


def run_seed(notebook: Path, profile: str, seed: int) -> dict:
    """``notebook``'s claims.json at ``seed`` (as a dict): from its record (``records``), else
    from the executed run in ``data/``, else executed now."""
    from sae_failures.notebook_runner import KERNEL_NAME, NOTEBOOK_DIR, figures_env

    def build(staged: Path) -> None:
        import papermill

        with figures_env(staged):
            papermill.execute_notebook(str(notebook), str(staged / notebook.name),
                                       parameters={"profile": profile, "seed": seed},
                                       kernel_name=KERNEL_NAME, cwd=str(NOTEBOOK_DIR), progress_bar=True)

    key = code_key(notebook, get_profile(profile))
    return records.recorded("seed_runs", profile, notebook.stem, seed, key,
                            lambda: ensure_entry(seed_run_path(notebook, profile, seed), build, _load_claims))


def default_seed(notebook: Path) -> int | None:
    """The ``seed = <int>`` of the notebook's parameters cell, if it has one."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.walk(records.parse_source(cell.source)):
                if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["seed"]
                        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)):
                    return node.value.value
    return None


def record_notebook_run(notebook: Path, profile: str, claims: dict) -> None:
    """A language-model notebook's own run (``make figures``, default parameters) is its seed
    run at its default seed: record it as one, so notebook 05 does not train it again."""
    seed = default_seed(notebook)
    if notebook.stem in LM_NOTEBOOKS and seed is not None:
        key = code_key(notebook, get_profile(profile))
        records.write_record(records.record_path(profile, "seed_runs", notebook.stem, seed), "seed_runs", profile,
                             notebook.stem, seed, key, claims)


def lm_notebooks(selected: Sequence[str] | None = None) -> list[Path]:
    """The language-model notebooks (``LM_NOTEBOOKS``), filtered by name prefix."""
    from sae_failures.notebook_runner import notebooks

    return [nb for nb in notebooks(list(selected) if selected else None) if nb.stem in LM_NOTEBOOKS]


def seed_outcomes(profile: str, seeds: Sequence[int], selected: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (claim, seed): the notebook, its verdict and what it measured, running what is missing."""
    chosen = lm_notebooks(selected)
    if not chosen:
        raise ValueError(f"No language-model notebook among {list(selected or [])}. Valid: {', '.join(LM_NOTEBOOKS)}.")
    rows = []
    for nb, seed in tqdm([(nb, s) for nb in chosen for s in seeds], desc="seed runs"):
        data = run_seed(nb, profile, seed)
        rows += [{"claim": c["id"], "seed": seed, "notebook": nb.stem, "verdict": c["verdict"],
                  "measured": c["measured"], "statement": c["statement"], "paper_value": c["paper_value"],
                  "git_commit": data["git_commit"]} for c in data["claims"]]
    return pd.DataFrame(rows).set_index(["claim", "seed"])


def seed_counts(outcomes: pd.DataFrame) -> dict[str, SeedCount]:
    """Per claim, in how many seeds it held (``reproduced``); claims no seed could judge are left out."""
    judged = outcomes[outcomes.verdict != "not_attempted"]
    return {claim: SeedCount.of(list(group.verdict == "reproduced"))
            for claim, group in judged.groupby(level="claim", sort=False)}
