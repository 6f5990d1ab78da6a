"""The one keyed cache behind activations, language-model SAEs and toy SAEs.

An entry is a folder (or file) under ``data/`` named by a hash of everything that
determines it (``config_key``). It is built into a staging sibling and renamed into place
only when complete (``ensure_entry``), so an interrupted run leaves nothing half-written,
and it is read back through loaders that turn unreadable files into a
``CacheCorruptedError`` naming the file. This module imports nothing of the language-model
stack, so the toy models of notebook 02 cache through it too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sae_lens import SAE

from sae_failures.paths import atomic_path

HISTORY_FILENAME = "training_history.json"


class CacheCorruptedError(RuntimeError):
    """A cache file exists but cannot be read; the message says which and what to do."""


def config_key(fields: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of ``fields`` as sorted JSON: the name of a cache entry."""
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_entry(path: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """``path`` once ``path / marker`` exists; otherwise ``build(staged)`` fills a staging
    folder that is renamed onto ``path`` only if ``build`` returns."""
    if not (path / marker).exists():
        with atomic_path(path) as staged:
            build(staged)
    return path


def load_sae(path: Path, device: str = "cpu") -> SAE:
    """A cached SAE through plain ``sae_lens.SAE.load_from_disk``, or one clear error."""
    try:
        return SAE.load_from_disk(path, device=device)
    except Exception as err:  # safetensors / json errors have no common base class
        raise CacheCorruptedError(
            f"Corrupted SAE cache {path}: {err}. Delete that folder and rerun to retrain."
        ) from err


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as err:
        raise CacheCorruptedError(
            f"Corrupted cache file {path}: {err}. Delete it and rerun to rebuild it."
        ) from err


def write_history(folder: Path, history: list[dict[str, float]]) -> None:
    """The loss history recorded while an SAE trained, next to the SAE."""
    (folder / HISTORY_FILENAME).write_text(json.dumps(history))


def read_history(folder: Path) -> list[dict[str, float]]:
    """The loss history saved in ``folder`` (empty if the SAE was not trained here)."""
    path = folder / HISTORY_FILENAME
    return json.loads(path.read_text()) if path.exists() else []
