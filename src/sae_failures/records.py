"""Committed results of notebook 05's expensive parts: what survives a machine without ``data/``.

A seed run of a notebook or one family's long runs at one seed takes up to two hours, and
``data/`` is a cache that a fresh clone, or a replaced machine, does not have. So each part
also writes its *result* (a seed run's claims, a family's rows: a few kilobytes) as a
record under ``results/<profile>/``, committed like the executed notebooks. The first
offline run can then be done in parts on different days and machines, and a clone
holding every record runs notebook 05 in minutes. A record is served only to the code
that made it:

- **Keyed by what computes it** (``code_digest``): the package modules the part can import
  (the static import closure of its entry points, so editing the CLI or the benchmarks
  keeps the records), the resolved profile (every size, and the device), and the library
  versions. ``profiles.py`` enters through the profile's values, not its text, so adding
  another profile keeps them.
- **Checked on load.** A record carries the sha256 of its result. One that does not parse,
  lacks a field or fails its checksum is reported in one line and recomputed, never served.
- **Stale is recomputed.** A record made by other code is named in one line, with the
  commit that made it, and replaced once the part has run again.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from sae_failures.paths import REPO_ROOT, atomic_write_text
from sae_failures.provenance import library_versions, now_iso, run_commit

PACKAGE = "sae_failures"
PACKAGE_DIR = REPO_ROOT / "src" / PACKAGE
# Its values enter the key instead (``code_digest``'s ``profile``).
LEFT_TO_THE_PROFILE = ("profiles.py",)
FIELDS = ("kind", "profile", "name", "seed", "key", "git_commit", "written", "sha256", "result")
T = TypeVar("T")


def records_dir(profile: str) -> Path:
    """``results/<profile>`` (``$SAE_FAILURES_RECORDS/<profile>`` if set)."""
    return Path(os.environ.get("SAE_FAILURES_RECORDS", REPO_ROOT / "results")) / profile


def record_path(profile: str, kind: str, name: str, seed: int) -> Path:
    return records_dir(profile) / kind / name / f"seed{seed}.json"


def _module_file(module: str, package_dir: Path) -> Path | None:
    """The file of ``module`` (dotted, under the package) if it is one of the package's."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST) -> set[str]:
    """Dotted names of the package's modules a parsed source imports, at any depth (function
    bodies included: a lazy import still runs), with ``from pkg import name`` read both ways."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] == PACKAGE}


def parse_source(text: str) -> ast.AST:
    """``ast.parse``, with IPython's ``%magic`` and ``!shell`` lines blanked first."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()]
    return ast.parse("\n".join(lines))


def import_closure(sources: Iterable[str], package_dir: Path | None = None) -> list[Path]:
    """The package's files that ``sources`` (code text) import, directly or through each other,
    each package ``__init__.py`` above them included (importing a module runs them)."""
    package_dir = package_dir or PACKAGE_DIR
    pending = set().union(*(_imported_modules(parse_source(s)) for s in sources))
    seen: dict[str, Path] = {}
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # the packages it sits in, then itself
            name = ".".join(parts[:depth])
            path = _module_file(name, package_dir)
            if path is None or name in seen:
                continue
            seen[name] = path
            pending |= _imported_modules(ast.parse(path.read_text()))
    return sorted(set(seen.values()))


def code_digest(sources: Iterable[str], profile: Any, package_dir: Path | None = None) -> str:
    """16 hex digits over the import closure of ``sources`` (minus ``LEFT_TO_THE_PROFILE``),
    ``sources`` themselves, ``profile`` (a dataclass: its values) and the library versions."""
    package_dir = package_dir or PACKAGE_DIR
    sources = list(sources)
    digest = hashlib.sha256()
    for path in import_closure(sources, package_dir):
        if path.relative_to(package_dir).as_posix() not in LEFT_TO_THE_PROFILE:
            digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for source in sources:
        digest.update(source.encode() + b"\0")
    values = dataclasses.asdict(profile) if dataclasses.is_dataclass(profile) else profile
    digest.update(json.dumps({"profile": values, "libraries": library_versions()}, sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()[:16]


def _checksum(result: Any) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def _check(path: Path, key: str) -> tuple[str, dict | None]:
    """("missing" | "corrupt (why)" | "stale (commit c)" | "current", the record when current)."""
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
        return f"stale (made by other code: commit {record['git_commit']}, key {record['key']}, now {key})", None
    return "current", record


def record_state(path: Path, key: str) -> str:
    """``missing``, ``corrupt (why)``, ``stale (...)`` or ``current``."""
    return _check(path, key)[0]


def read_record(path: Path, key: str) -> Any | None:
    """The record's result if it is whole and made by the code keyed ``key``; else ``None``,
    after one line saying why (a missing record says nothing)."""
    state, record = _check(path, key)
    if record is None:
        if state != "missing":
            print(f"records: {path} is {state}; recomputing it", file=sys.stderr, flush=True)
        return None
    return record["result"]


def write_record(path: Path, kind: str, profile: str, name: str, seed: int, key: str, result: Any) -> None:
    """Write the record whole or not at all (``atomic_write_text``)."""
    record = {"kind": kind, "profile": profile, "name": name, "seed": seed, "key": key,
              "git_commit": run_commit(), "written": now_iso(), "sha256": _checksum(result), "result": result}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def recorded(kind: str, profile: str, name: str, seed: int, key: str, compute: Callable[[], T]) -> T:
    """The part's result: from its record when that is whole and current, else computed and recorded."""
    path = record_path(profile, kind, name, seed)
    result = read_record(path, key)
    if result is None:
        result = compute()
        write_record(path, kind, profile, name, seed, key, result)
        result = read_record(path, key)  # what is served is what was written
    return result
