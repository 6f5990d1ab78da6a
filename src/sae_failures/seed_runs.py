"""Every language-model claim at more seeds: the notebooks themselves, rerun with ``seed=s``.

A seed run executes one of the language-model notebooks through papermill with its
``seed`` parameter set, so every claim is judged by the very cells and verdict functions
of the notebook that states it. Its executed copy, figures and ``claims.json`` are a cache
entry, ``data/seed_runs/<profile>/<notebook>/seed<s>-<key>/``, keyed by the notebook's
code cells and every source file of the package: a seed run is served only to the code
that made it. The SAEs a run trains are cached as any SAE (the seed is in their spec), so
after a code change a rerun repeats the evaluation, not the training.

A seed fixes an SAE's initialisation and the order it reads the stored activations; the
activations, the evaluation tokens and the toy examples' data are the same for every seed.
A claim *holds* in a seed when that run's verdict is ``reproduced``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import nbformat
import pandas as pd
from tqdm.auto import tqdm

from sae_failures.cache import CacheCorruptedError, ensure_entry
from sae_failures.paths import REPO_ROOT, data_dir
from sae_failures.profiles import LM_NOTEBOOKS
from sae_failures.seeds import SeedCount

PACKAGE_DIR = REPO_ROOT / "src" / "sae_failures"
CLAIMS_FILE = "claims.json"


def package_digest(package: Path | None = None) -> str:
    """sha256 over the package's ``.py`` files: what every cached result computed by this code shares."""
    package = package or PACKAGE_DIR
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_key(notebook: Path, package: Path | None = None) -> str:
    """16 hex digits over the notebook's code cells and the package's ``.py`` files.

    Outputs and markdown are left out, so committing an executed notebook keeps its seed runs.
    """
    digest = hashlib.sha256(package_digest(package).encode())
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    return digest.hexdigest()[:16]


def seed_run_path(notebook: Path, profile: str, seed: int) -> Path:
    return data_dir() / "seed_runs" / profile / notebook.stem / f"seed{seed}-{code_key(notebook)}"


def _load_claims(entry: Path) -> dict:
    files = list(entry.glob(f"*/*/{CLAIMS_FILE}"))
    if len(files) != 1:
        raise CacheCorruptedError(f"{entry} holds {len(files)} {CLAIMS_FILE} files, expected 1")
    return json.loads(files[0].read_text())


def run_seed(notebook: Path, profile: str, seed: int) -> dict:
    """``notebook``'s claims.json at ``seed`` (as a dict): from the cache, else executed now."""
    from sae_failures.notebook_runner import KERNEL_NAME, NOTEBOOK_DIR, figures_env

    def build(staged: Path) -> None:
        import papermill

        with figures_env(staged):
            papermill.execute_notebook(str(notebook), str(staged / notebook.name),
                                       parameters={"profile": profile, "seed": seed},
                                       kernel_name=KERNEL_NAME, cwd=str(NOTEBOOK_DIR), progress_bar=False)

    return ensure_entry(seed_run_path(notebook, profile, seed), build, _load_claims)


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
