"""The one keyed cache behind activations, token files, models, language-model SAEs and toy SAEs.

An entry is a folder under ``data/`` named by a hash of everything that determines it
(``config_key``). It is never served unless it is whole and unchanged:

- **Complete or absent.** An entry is built into a staging sibling, its ``manifest.json``
  (every file's size and sha256) is written last, and the folder is renamed into place.
  A folder without a manifest is an interrupted write, never a result.
- **Checked on load.** ``open_entry`` compares every file with the manifest (once per
  process) before the loader runs, and loaders reject unreadable files and non-finite
  weights. A corrupt entry is moved aside to ``data/corrupt/`` (nothing is deleted),
  reported in one line, and rebuilt by ``ensure_entry``.
- **One builder at a time.** ``entry_lock`` is an exclusive file lock per entry: a second
  run asking for an entry another run is building waits for it, then loads it. Staging
  folders left by a run that died are removed by the next run that takes the lock.

Entries written before manifests existed are adopted: if their loader accepts them, the
manifest is written then. This module imports nothing of the language-model stack, so the
toy models of notebook 02 cache through it too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from sae_failures.engine.paths import atomic_path, data_dir

if TYPE_CHECKING:
    from sae_lens import SAE

MANIFEST = "manifest.json"
LEGACY_MARKER = "cfg.json"  # what marked a complete SAE entry (language-model or toy) before manifests
HISTORY_FILENAME = "training_history.json"
CORRUPT_DIR = "corrupt"
_CHUNK = 1 << 22
_VERIFIED: set[tuple] = set()  # entries this process verified, with every file's size and mtime
T = TypeVar("T")


class CacheCorruptedError(RuntimeError):
    """A cache entry exists but is not what was written; the message names the file."""


def config_key(fields: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of ``fields`` as sorted JSON: the name of a cache entry."""
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _entry_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path) -> None:
    """Record every file's size and checksum; written last, it marks the entry complete."""
    files = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
             for p in _entry_files(folder)}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"files": files}, indent=1))
    os.replace(tmp, folder / MANIFEST)


def verify_manifest(folder: Path) -> str | None:
    """What is wrong with ``folder`` against its manifest (None when every file matches)."""
    manifest = folder / MANIFEST
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError) as err:
        return f"{MANIFEST} unreadable ({err})"
    present = _entry_files(folder)
    stamp = (str(folder.resolve()), manifest.stat().st_mtime_ns,
             tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in present))
    if stamp in _VERIFIED:  # unchanged since this process hashed it: hash each file once per run
        return None
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, {expected['bytes']} were written"
        if file_digest(path) != expected["sha256"]:
            return f"{name} does not match its checksum (its bytes changed after it was written)"
    extra = sorted({str(p.relative_to(folder)) for p in present} - set(files))
    if extra:
        return f"{extra[0]} was not part of the entry as written"
    _VERIFIED.add(stamp)
    return None


@contextlib.contextmanager
def entry_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the entry at ``path`` (waiting, with one line, if another run has it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"cache: waiting for another run that is building {path.name}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_staging(path: Path) -> None:
    """Delete staging folders of ``path`` that a dead run left (call with the entry's lock held)."""
    for staging in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(staging, ignore_errors=True)


def quarantine(path: Path, problem: str) -> Path:
    """Move a corrupt entry under ``data/corrupt/`` and say so in one line."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    try:
        relative = path.resolve().relative_to(data_dir().resolve())
    except ValueError:
        relative = Path(path.name)
    dest = data_dir() / CORRUPT_DIR / relative.parent / f"{relative.name}.{stamp}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, dest)
    print(f"cache: {problem}; moved it to {dest} and rebuilding", file=sys.stderr, flush=True)
    return dest


def open_entry(path: Path, load: Callable[[Path], T], legacy_marker: str | None = None) -> T:
    """``load(path)`` once the entry is verified; ``CacheCorruptedError`` naming the problem otherwise.

    ``legacy_marker``: the file whose presence meant "complete" before manifests existed;
    such an entry is adopted (its manifest written) if ``load`` accepts it.
    """
    if not (path / MANIFEST).exists():
        if legacy_marker is not None and (path / legacy_marker).exists():
            value = load(path)
            write_manifest(path)
            return value
        raise CacheCorruptedError(f"{path} is incomplete (no {MANIFEST}: a run stopped while writing it)")
    problem = verify_manifest(path)
    if problem is not None:
        raise CacheCorruptedError(f"{path}: {problem}")
    return load(path)


def ensure_entry(path: Path, build: Callable[[Path], None], load: Callable[[Path], T],
                 legacy_marker: str | None = None) -> T:
    """The entry at ``path``, loaded: verified if present, rebuilt if corrupt, built if absent.

    ``build(staged)`` fills a staging folder; only when it returns is the manifest written
    and the folder renamed onto ``path``. A freshly built entry that does not load raises.
    """
    with entry_lock(path):
        remove_stale_staging(path)
        if path.exists():
            try:
                return open_entry(path, load, legacy_marker)
            except CacheCorruptedError as err:
                quarantine(path, str(err))
        with atomic_path(path) as staged:
            staged.mkdir(parents=True, exist_ok=True)
            build(staged)
            write_manifest(staged)
        return open_entry(path, load)


def check_finite(tensors: dict[str, torch.Tensor], where: Path | str) -> None:
    """Reject non-finite values: a cached SAE or array holding NaN / inf is not served."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CacheCorruptedError(f"{where}: {name} holds non-finite values")


def load_sae(path: Path, device: str = "cpu") -> SAE:
    """An SAE through plain ``sae_lens.SAE.load_from_disk``, with finite weights, or one clear error."""
    from sae_lens import SAE  # here, not above: the cache's other entries need no SAE class

    try:
        sae = SAE.load_from_disk(path, device=device)
    except Exception as err:  # safetensors / json errors have no common base class
        raise CacheCorruptedError(f"{path}: unreadable SAE ({err})") from err
    check_finite(sae.state_dict(), path)
    return sae


def ensure_sae(path: Path, build: Callable[[Path], None], device: str = "cpu") -> SAE:
    """``ensure_entry`` for an SAE entry (built by ``build``; entries older than manifests adopted)."""
    return ensure_entry(path, build, lambda folder: load_sae(folder, device), LEGACY_MARKER)


def open_sae(path: Path, device: str = "cpu") -> SAE:
    """``open_entry`` for an SAE entry: verified, or ``CacheCorruptedError``."""
    return open_entry(path, lambda folder: load_sae(folder, device), LEGACY_MARKER)


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as err:
        raise CacheCorruptedError(f"{path}: unreadable array ({err})") from err


def write_history(folder: Path, history: list[dict[str, float]]) -> None:
    """The loss history recorded while an SAE trained, next to the SAE."""
    (folder / HISTORY_FILENAME).write_text(json.dumps(history))


def read_history(folder: Path) -> list[dict[str, float]]:
    """The loss history saved in ``folder`` (empty if the SAE was not trained here)."""
    path = folder / HISTORY_FILENAME
    return json.loads(path.read_text()) if path.exists() else []
