"""What running one notebook needs: where the notebooks are, the kernel, and where figures go.

Both ``notebooks`` (``make figures``) and ``seed_runs`` execute notebooks; this module is what
they share, so that neither imports the other back.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from jupyter_client.manager import AsyncKernelManager

from sae_failures.engine.paths import REPO_ROOT, shown

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "python3"


class LocalKernelManager(AsyncKernelManager):
    """A kernel reached over IPC sockets beside its connection file rather than TCP ports, where
    the OS has them: the kernel is always on this machine, and ipykernel warns about
    unencrypted TCP in every log."""

    def _transport_default(self) -> str:
        return "ipc" if os.name == "posix" else "tcp"


class NotebooksFailed(RuntimeError):
    """One or more notebooks raised; the message has one line per notebook."""


def notebooks(selected: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, in order; ``selected`` filters by name prefix (e.g. "00").

    Every prefix must match a notebook: none is dropped silently.
    """
    found = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selected:
        return found
    unknown = [s for s in selected if not any(nb.name.startswith(s) for nb in found)]
    if unknown:
        raise ValueError(f"No notebook matches {', '.join(map(repr, unknown))}. "
                         f"Valid: {', '.join(nb.stem for nb in found)}.")
    return [nb for nb in found if any(nb.name.startswith(s) for s in selected)]


def echo_default() -> bool:
    """Whether a run shows its cells' own output as it comes: on a terminal, yes (the harvest's,
    each SAE's training and each evaluation's progress, redrawn in place); in a log file, whose
    reader sees every redraw of a bar as a line, only papermill's count of cells."""
    return sys.stderr.isatty()


def execute(notebook: Path, out: Path, parameters: dict[str, Any], figures: Path, echo: bool | None = None) -> None:
    """Run ``notebook`` through papermill into ``out``, its figures under ``figures``; with
    ``echo`` (default ``echo_default``), the kernel's stdout and stderr go on to this process's."""
    import papermill

    echo = echo_default() if echo is None else echo
    streams = {"stdout_file": sys.stdout, "stderr_file": sys.stderr} if echo else {}
    with figures_env(figures):
        papermill.execute_notebook(str(notebook), str(out), parameters=parameters, kernel_name=KERNEL_NAME,
                                   cwd=str(NOTEBOOK_DIR), progress_bar=not echo,
                                   kernel_manager_class=LocalKernelManager, **streams)
    relative_papermill_paths(out, notebook)


def relative_papermill_paths(executed: Path, source: Path) -> None:
    """papermill records the absolute input and output paths in the notebook's metadata; keep
    the source notebook's repository path instead, so a committed notebook names no machine."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    name = shown(source)
    nb.metadata.setdefault("papermill", {}).update(input_path=name, output_path=name)
    nbformat.write(nb, executed)


def figures_env(root: Path) -> contextlib.AbstractContextManager:
    """Point the kernel's ``figures_dir`` at ``root`` while a notebook runs."""
    return mock.patch.dict(os.environ, {"SAE_FAILURES_FIGURES": str(root)})
