"""Committed results of notebook 05's expensive parts: what survives a machine without ``data/``.

A seed run of a notebook or one family's long runs at one seed takes up to two hours, and
``data/`` is a cache that a fresh clone, or a replaced machine, does not have. So each part
also writes its *result* (a seed run's claims, a family's rows: a few kilobytes) as a
record under ``results/<profile>/``, committed like the executed notebooks. The first
offline run can then be done in parts on different days and machines, and a clone
holding every record runs notebook 05 in minutes. A record is served only while nothing
that determines its numbers has changed:

- **Keyed by what determines the numbers** (``study_key``): the study's ``VERSION`` (in its
  folder's ``__init__``), the engine's ``VERSION`` and the harvest and training cache
  versions of ``engine.specs`` (which key every SAE the part trains), the resolved profile's
  values (every size, and the device) and the library versions. Not by source text: moving,
  renaming or commenting code stales nothing. A change that moves numbers is caught by the
  smoke pins (``runs.pins``), which fail until the study's version is bumped; the bump stales
  that study's records alone.
- **Checked on load.** A record carries the sha256 of its result. One that does not parse,
  lacks a field or fails its checksum is reported in one line and recomputed, never served.
- **Stale is recomputed.** A record made under other versions is named in one line, with
  what changed and the commit that made it, and replaced once the part has run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sae_failures import engine
from sae_failures.engine.paths import REPO_ROOT, atomic_write_text
from sae_failures.engine.provenance import library_versions, now_iso, run_commit
from sae_failures.engine.specs import CACHE_VERSION, HARVEST_VERSION

FIELDS = ("kind", "profile", "name", "seed", "key", "versions", "git_commit", "written", "sha256", "result")
T = TypeVar("T")


def records_dir(profile: str) -> Path:
    """``results/<profile>`` (``$SAE_FAILURES_RECORDS/<profile>`` if set)."""
    return Path(os.environ.get("SAE_FAILURES_RECORDS", REPO_ROOT / "results")) / profile


def record_path(profile: str, kind: str, name: str, seed: int) -> Path:
    return records_dir(profile) / kind / name / f"seed{seed}.json"


def study_version(study: str) -> int:
    """``VERSION`` of ``sae_failures.studies.<study>``; one line naming the valid studies otherwise."""
    from sae_failures.studies import STUDIES

    if study not in STUDIES:
        raise ValueError(f"Unknown study {study!r}. Valid: {', '.join(STUDIES)}.")
    return importlib.import_module(f"sae_failures.studies.{study}").VERSION


def versions(study: str) -> dict[str, Any]:
    """The version numbers a study's records are keyed by, and the libraries."""
    return {"study": study, "study_version": study_version(study), "engine_version": engine.VERSION,
            "harvest_version": HARVEST_VERSION, "cache_version": CACHE_VERSION, "libraries": library_versions()}


def study_key(study: str, settings: Any) -> str:
    """16 hex digits over ``versions(study)`` and ``settings`` (a resolved profile: its values)."""
    values = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
    blob = json.dumps({**versions(study), "profile": values}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _what_changed(record: dict, study: str | None) -> str:
    """The versions that differ between ``record`` and the code now, in words."""
    if study is None or not isinstance(record.get("versions"), dict):
        return "other versions or profile"
    now, then = versions(study), record["versions"]
    changed = [f"{k} {then.get(k)} -> {now[k]}" for k in now if then.get(k) != now[k]]
    return ", ".join(changed) or "the profile's values"


def _checksum(result: Any) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def _check(path: Path, key: str, study: str | None = None) -> tuple[str, dict | None]:
    """("missing" | "corrupt (why)" | "stale (what changed)" | "current", the record when current)."""
    if not path.exists():
        return "missing", None
    try:
        record = json.loads(path.read_text())
        missing = [f for f in FIELDS if f not in record]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        if _checksum(record["result"]) != record["sha256"]:
            raise ValueError("its result does not match its sha256")
    except (ValueError, TypeError) as err:  # json.JSONDecodeError is a ValueError
        return f"corrupt ({err})", None
    if record["key"] != key:
        return f"stale (made under {_what_changed(record, study)}: commit {record['git_commit']})", None
    return "current", record


def record_state(path: Path, key: str, study: str | None = None) -> str:
    """``missing``, ``corrupt (why)``, ``stale (...)`` or ``current``."""
    return _check(path, key, study)[0]


def read_record(path: Path, key: str, study: str | None = None) -> Any | None:
    """The record's result if it is whole and keyed ``key``; else ``None``, after one line
    saying why (a missing record says nothing)."""
    state, record = _check(path, key, study)
    if record is None:
        if state != "missing":
            print(f"records: {path.relative_to(records_dir(record_profile(path)).parent)} is {state}; "
                  "recomputing it", file=sys.stderr, flush=True)
        return None
    return record["result"]


def record_profile(path: Path) -> str:
    """The profile folder a record path sits in (``<profile>/<kind>/<name>/seed<s>.json``)."""
    return path.parents[2].name


def write_record(path: Path, kind: str, profile: str, name: str, seed: int, study: str, key: str,
                 result: Any) -> None:
    """Write the record whole or not at all (``atomic_write_text``), with the versions it was keyed by."""
    record = {"kind": kind, "profile": profile, "name": name, "seed": seed, "key": key, "versions": versions(study),
              "git_commit": run_commit(), "written": now_iso(), "sha256": _checksum(result), "result": result}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def recorded(kind: str, settings: Any, name: str, seed: int, study: str, compute: Callable[[], T]) -> T:
    """The part's result: from its record when that is whole and current for ``study`` under
    ``settings`` (a resolved profile), else computed and recorded."""
    key, path = study_key(study, settings), record_path(settings.name, kind, name, seed)
    result = read_record(path, key, study)
    if result is None:
        result = compute()
        write_record(path, kind, settings.name, name, seed, study, key, result)
        result = read_record(path, key, study)  # what is served is what was written
    return result
