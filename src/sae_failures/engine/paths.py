"""Where caches and figures live, and how files are written without leaving halves behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """Cache root: ``$SAE_FAILURES_DATA`` if set, else ``<repo>/data``."""
    root = Path(os.environ.get("SAE_FAILURES_DATA", REPO_ROOT / "data"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def shown(path: Path) -> str:
    """``path`` as a reader should see it in printed output: relative to the repository, or
    to ``$SAE_FAILURES_DATA``, never this machine's absolute path."""
    path = Path(path).resolve()
    for root, label in ((REPO_ROOT, ""), (data_dir().resolve(), "$SAE_FAILURES_DATA/")):
        if path.is_relative_to(root):
            return label + str(path.relative_to(root))
    return path.name


def figures_dir(profile: str, notebook: str | None = None) -> Path:
    """``figures/<profile>/[<notebook>]``, created on demand."""
    root = Path(os.environ.get("SAE_FAILURES_FIGURES", REPO_ROOT / "figures"))
    out = root / profile if notebook is None else root / profile / notebook
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it onto ``target`` only on success.

    Works for files and directories: an interrupted run leaves no half-written result. An
    existing target is replaced by renames only (moved into the staging folder, then the
    new one moved in), never deleted first, so a reader sees the old or the new, whole.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            os.replace(target, tmp / ".replaced")  # a directory cannot be renamed onto another
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(target: Path, text: str) -> None:
    with atomic_path(Path(target)) as tmp:
        tmp.write_text(text)
