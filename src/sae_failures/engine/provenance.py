"""What produced a number: git commit, library versions, time."""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
from importlib import metadata

from sae_failures.engine.paths import REPO_ROOT

# What decides a number. Figures and executed notebooks are what a run writes, so a run
# that regenerates them must not mark itself dirty.
CODE_PATHS = ("src", "requirements.txt", "pyproject.toml", "Makefile")


def git_commit() -> str:
    """Short commit, with ``-dirty`` when the code (``CODE_PATHS``) has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@functools.cache
def run_commit() -> str:
    """The commit of the code this process runs, read once at its first call
    (``notebook_setup.start``, in a notebook's first cell): a commit made while a long notebook
    runs is then not credited with its numbers, nor uncommitted edits made meanwhile."""
    return git_commit()


def library_versions() -> dict[str, str]:
    names = ["torch", "sae-lens", "transformer-lens", "transformers"]
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
