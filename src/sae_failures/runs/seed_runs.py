"""Every language-model claim at more seeds: the notebooks themselves, rerun with ``seed=s``.

A seed run executes one of the language-model notebooks through papermill with its
``seed`` parameter set, so every claim is judged by the very cells and verdict functions
of the notebook that states it. Its executed copy, figures and ``claims.json`` are a cache
entry, ``data/seed_runs/<profile>/<notebook>/seed<s>-<key>/``, keyed as the notebook's study's
records are (``records.study_key``: its version, the engine's, the profile and the libraries).
Its claims are also recorded under ``results/`` (``records``), so a clone without ``data/``
keeps them. The SAEs a run trains are cached as any SAE (the seed is in their spec), so after
a version bump a rerun repeats the evaluation, not the training.

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
from tqdm import tqdm

from sae_failures.engine.cache import CacheCorruptedError, ensure_entry
from sae_failures.engine.claims import NO_EVIDENCE, rejudge
from sae_failures.engine.paths import data_dir
from sae_failures.engine.seeds import SeedCount
from sae_failures.profiles import LM_NOTEBOOKS, Profile, get_profile
from sae_failures.runs import records
from sae_failures.runs.execute import execute, notebooks
from sae_failures.studies import notebook_study

CLAIMS_FILE = "claims.json"


def seed_run_key(notebook: Path, settings: Profile) -> str:
    """What a seed run of ``notebook`` is keyed by: its study's (``records.study_key``)."""
    return records.study_key(notebook_study(notebook.stem), settings)


def seed_run_path(notebook: Path, profile: str, seed: int) -> Path:
    key = seed_run_key(notebook, get_profile(profile))
    return data_dir() / "seed_runs" / profile / notebook.stem / f"seed{seed}-{key}"


def _load_claims(entry: Path) -> dict:
    files = list(entry.glob(f"*/*/{CLAIMS_FILE}"))
    if len(files) != 1:
        raise CacheCorruptedError(f"{entry} holds {len(files)} {CLAIMS_FILE} files, expected 1")
    return json.loads(files[0].read_text())


def run_seed(notebook: Path, profile: str, seed: int) -> dict:
    """``notebook``'s claims.json at ``seed`` (as a dict): from its record (``records``), else
    from the executed run in ``data/``, else executed now."""
    def build(staged: Path) -> None:
        execute(notebook, staged / notebook.name, {"profile": profile, "seed": seed}, staged)

    return records.recorded("seed_runs", get_profile(profile), notebook.stem, seed, notebook_study(notebook.stem),
                            lambda: ensure_entry(seed_run_path(notebook, profile, seed), build, _load_claims))


def parse_source(text: str) -> ast.AST:
    """``ast.parse``, with IPython's ``%magic`` and ``!shell`` lines blanked first."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()]
    return ast.parse("\n".join(lines))


def default_seed(notebook: Path) -> int | None:
    """The ``seed = <int>`` of the notebook's parameters cell, if it has one."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.walk(parse_source(cell.source)):
                if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["seed"]
                        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)):
                    return node.value.value
    return None


def record_notebook_run(notebook: Path, profile: str, claims: dict) -> None:
    """A language-model notebook's own run (``make figures``, default parameters) is its seed
    run at its default seed: record it as one, so notebook 05 does not train it again."""
    seed = default_seed(notebook)
    if notebook.stem in LM_NOTEBOOKS and seed is not None:
        study = notebook_study(notebook.stem)
        records.write_record(records.record_path(profile, "seed_runs", notebook.stem, seed), "seed_runs", profile,
                             notebook.stem, seed, study, records.study_key(study, get_profile(profile)), claims)


def lm_notebooks(selected: Sequence[str] | None = None) -> list[Path]:
    """The language-model notebooks (``LM_NOTEBOOKS``), filtered by name prefix."""

    return [nb for nb in notebooks(list(selected) if selected else None) if nb.stem in LM_NOTEBOOKS]


def seed_outcomes(profile: str, seeds: Sequence[int], selected: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (claim, seed): the notebook, its verdict and what it measured, running what is
    missing. Each claim is judged by the rules now (``claims.rejudge``): a changed threshold
    re-reads the records."""
    chosen = lm_notebooks(selected)
    if not chosen:
        raise ValueError(f"No language-model notebook among {list(selected or [])}. Valid: {', '.join(LM_NOTEBOOKS)}.")
    rows = []
    for nb, seed in tqdm([(nb, s) for nb in chosen for s in seeds], desc="seed runs"):
        data = run_seed(nb, profile, seed)
        rows += [{"claim": c["id"], "seed": seed, "notebook": nb.stem, "verdict": c["verdict"],
                  "magnitude": c.get("magnitude", ""), "measured": c["measured"], "statement": c["statement"],
                  "paper_value": c["paper_value"], "git_commit": data["git_commit"]}
                 for c in map(rejudge, data["claims"])]
    return pd.DataFrame(rows).set_index(["claim", "seed"])


def seed_counts(outcomes: pd.DataFrame) -> dict[str, SeedCount]:
    """Per claim, in how many seeds it held (``reproduced``) and held in part (``partial``);
    seeds that could not judge it (``claims.NO_EVIDENCE``) are left out, and so are claims no
    seed could judge."""
    judged = outcomes[~outcomes.verdict.isin(NO_EVIDENCE)]
    return {claim: SeedCount.of_verdicts(list(group.verdict))
            for claim, group in judged.groupby(level="claim", sort=False)}
