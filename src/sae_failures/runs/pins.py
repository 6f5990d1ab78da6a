"""Smoke pins: proof that a change moved numbers only where a study's version says so.

Records (``runs.records``) are keyed by version numbers, not by source text, so a change
that moves what a study measures must bump that study's ``VERSION`` (or the engine's), or
its committed records would be served to code that no longer computes them. The pins
check that: ``make test`` runs every notebook in the smoke profile, then compares each
study's smoke numbers with the ones pinned in ``tests/pins/smoke.json``:

- numbers equal: nothing moved; nothing is stale, whatever was moved or renamed;
- numbers moved, versions unchanged: fails, naming the study and its claims, until its
  ``VERSION`` is bumped (which stales its records alone) and the pins are rewritten
  (``make pin``);
- versions changed since the pins were written: fails until ``make pin`` records the new
  numbers under the new versions.

A study's numbers are what it measured in the smoke run: each claim's measurement, verdict
and notes and the notebook's setup (``figures/smoke/<notebook>/claims.json``), and the rows of
its training-length families (``results/smoke/lengths/<family>/seed<s>.json``), bit for bit.
Pins are made on one kind of CPU; floating-point results may differ on another, so the CPU is
pinned too and a run elsewhere is told to re-pin rather than compared.

The same comparison is the end-to-end check of determinism: in a fresh clone (CI) every smoke
SAE is trained afresh, so equal numbers mean the whole path, seeds to claims, gave bit for bit
what it gave when the pins were written.

The same run checks that every claim a ``@rule`` judged is judged the same again from the
inputs it recorded (``claims.rejudge``): what lets a changed threshold re-read the records
must reproduce them exactly first.
"""

from __future__ import annotations

import contextlib
import json
import platform
from pathlib import Path
from typing import Any

from sae_failures.engine.claims import JUDGED, rejudge
from sae_failures.engine.paths import REPO_ROOT, atomic_write_text, figures_dir
from sae_failures.runs import records
from sae_failures.studies import STUDIES, notebook_study

PIN_PROFILE = "smoke"
PINS_FILE = REPO_ROOT / "tests" / "pins" / f"{PIN_PROFILE}.json"
CLAIM_FIELDS = ("measured", "verdict", "notes")
ROW_FIELDS = ("claim", "seed", "tokens", "quantity", "verdict", "measured", "heldout_ev")
# provenance, not numbers: what differs between runs of the same code (versions are pinned apart)
SETUP_LEFT_OUT = ("libraries", "seed_run_commits")


def machine() -> str:
    """The CPU kind numbers were computed on: architecture, the vector kernels torch uses, and
    the processor's vendor, family, model and stepping (two hosts with the same kernels have
    given different bf16 harvests)."""
    import torch

    fields = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    cpu = "-".join(fields.get(k, "?") for k in ("vendor_id", "cpu family", "model", "stepping"))
    return f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()} {cpu}"


def _family_studies() -> dict[str, str]:
    from sae_failures.studies.scale_and_seeds.experiment import FAMILIES, family_study

    return {family: family_study(family) for family in FAMILIES}


def smoke_numbers(figures: Path | None = None, results: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per study, the numbers its smoke run produced (see the module's docstring).

    ``figures``: the profile's figures folder (default ``figures/smoke``); ``results``: its
    records folder (default ``results/smoke``). A study with nothing there is left out."""
    figures = figures or figures_dir(PIN_PROFILE)
    results = results or records.records_dir(PIN_PROFILE)
    numbers: dict[str, dict[str, Any]] = {}
    for path in sorted(figures.glob("[0-9][0-9]_*/claims.json")):
        data = json.loads(path.read_text())
        study = notebook_study(data["notebook"])
        numbers.setdefault(study, {})["claims"] = {
            c["id"]: {f: c.get(f, "") for f in CLAIM_FIELDS} for c in data["claims"]}
        numbers[study]["setup"] = {k: v for k, v in data["setup"].items() if k not in SETUP_LEFT_OUT}
    for family, study in _family_studies().items():
        for path in sorted((results / "lengths" / family).glob("seed*.json")):
            record = json.loads(path.read_text())
            rows = [{f: row[f] for f in ROW_FIELDS} for row in record["result"]]
            numbers.setdefault(study, {}).setdefault("lengths", {})[f"{family}/{path.stem}"] = rows
    return numbers


def _versions(study: str) -> dict[str, Any]:
    return {**records.versions(study), "machine": machine()}


def write_pins(numbers: dict[str, dict[str, Any]], path: Path = PINS_FILE) -> Path:
    """Pin ``numbers`` under the versions of the code now."""
    unknown = sorted(set(numbers) - set(STUDIES))
    if unknown:
        raise ValueError(f"Unknown studies {unknown}. Valid: {', '.join(STUDIES)}.")
    pins = {"profile": PIN_PROFILE,
            "studies": {s: {"versions": _versions(s), "numbers": numbers[s]} for s in STUDIES if s in numbers}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(pins, indent=1, sort_keys=True) + "\n")
    return path


def _moved(pinned: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs, in words: claim IDs, families, or the setup."""
    moved = [c for c in sorted(set(pinned.get("claims", {})) | set(now.get("claims", {})))
             if pinned.get("claims", {}).get(c) != now.get("claims", {}).get(c)]
    moved += [f"lengths {f}" for f in sorted(set(pinned.get("lengths", {})) | set(now.get("lengths", {})))
              if pinned.get("lengths", {}).get(f) != now.get("lengths", {}).get(f)]
    if pinned.get("setup") != now.get("setup"):
        moved.append("setup")
    return moved


def check_pins(numbers: dict[str, dict[str, Any]], path: Path = PINS_FILE) -> list[str]:
    """One line per problem (empty when every study's numbers match its pins)."""
    if not path.exists():
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        return [f"no smoke pins at {shown}: run `make pin` after `make nbval`"]
    pins = json.loads(path.read_text())["studies"]
    problems = []
    for study in STUDIES:
        now, pin = numbers.get(study), pins.get(study)
        if now is None and pin is None:
            continue
        if now is None:
            problems.append(f"{study}: pinned, but the smoke run produced no numbers for it (did every notebook run?)")
            continue
        if pin is None:
            problems.append(f"{study}: not pinned; run `make pin`")
            continue
        versions = _versions(study)
        changed = {k: (pin["versions"].get(k), v) for k, v in versions.items() if pin["versions"].get(k) != v}
        moved = _moved(pin["numbers"], now)
        if "machine" in changed:
            problems.append(f"{study}: pinned on a {changed['machine'][0]} CPU, this is {changed['machine'][1]}: "
                            "floating-point results differ between CPU kinds; run `make pin` here")
        elif changed:
            what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            problems.append(f"{study}: {what} since the pins were written; run `make pin` to pin its numbers "
                            "under the new versions" + (f" (moved: {', '.join(moved)})" if moved else ""))
        elif moved:
            problems.append(f"{study}: its smoke numbers moved ({', '.join(moved)}) under the same versions: "
                            f"bump VERSION in sae_failures/studies/{study}/__init__.py (this stales its records), "
                            "or engine.VERSION if every study moved, then run `make pin`")
    return problems


def rejudge_problems(figures: Path | None = None, results: Path | None = None) -> list[str]:
    """One line per recorded claim (the smoke run's claims.json files and length records) that its
    rule, given the inputs it recorded, judges otherwise than it was recorded."""
    figures = figures or figures_dir(PIN_PROFILE)
    results = results or records.records_dir(PIN_PROFILE)
    recorded = [(f"{p.parent.name} {c['id']}", c) for p in sorted(figures.glob("[0-9][0-9]_*/claims.json"))
                for c in json.loads(p.read_text())["claims"]]
    recorded += [(f"{p.parent.name}/{p.stem} {r['claim']} at {r['tokens']:,}", r)
                 for p in sorted(results.glob("lengths/*/seed*.json")) for r in json.loads(p.read_text())["result"]]
    problems = []
    for where, claim in recorded:
        again = rejudge(claim)
        differs = [k for k in JUDGED if k in claim and again[k] != claim[k]]
        if differs:
            problems.append(f"{where}: judged again from its recorded inputs, its {', '.join(differs)} differ")
    return problems
