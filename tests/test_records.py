"""Records: the committed results of notebook 05's parts, keyed by the versions that determine them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sae_failures.runs import records


@dataclass(frozen=True)
class Sizes:
    name: str
    tokens: int


SMOKE = Sizes("smoke", 10)
REPO = Path(__file__).resolve().parents[1]


def suppression_version() -> int:
    import sae_failures.studies.suppression

    return sae_failures.studies.suppression.VERSION


def test_the_key_follows_the_versions_the_profile_and_the_libraries(monkeypatch):
    key = records.study_key("suppression", SMOKE)
    assert records.study_key("suppression", SMOKE) == key
    assert records.study_key("suppression", Sizes("smoke", 20)) != key
    assert records.study_key("gated", SMOKE) != key
    monkeypatch.setattr("sae_failures.studies.suppression.VERSION", suppression_version() + 1)
    assert records.study_key("suppression", SMOKE) != key
    assert records.study_key("gated", SMOKE) == records.study_key("gated", SMOKE)
    monkeypatch.undo()
    import sae_failures.engine
    monkeypatch.setattr("sae_failures.engine.VERSION", sae_failures.engine.VERSION + 1)
    assert records.study_key("suppression", SMOKE) != key
    monkeypatch.undo()
    monkeypatch.setattr(records, "library_versions", lambda: {"torch": "other"})
    assert records.study_key("suppression", SMOKE) != key


def test_an_unknown_study_is_one_line_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown study 'bogus'\. Valid: quickstart, suppression"):
        records.study_key("bogus", SMOKE)


def keys_in_copy(package: Path) -> dict[str, str]:
    """``study_key`` of suppression and gated, computed by a fresh interpreter importing the package at ``package``."""
    code = ("from dataclasses import dataclass\n"
            "from sae_failures.runs import records\n"
            "@dataclass(frozen=True)\nclass Sizes:\n    name: str\n    tokens: int\n"
            "print(records.study_key('suppression', Sizes('smoke', 10)), records.study_key('gated', Sizes('smoke', 10)))")
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return dict(zip(("suppression", "gated"), out.stdout.split(), strict=True))


def test_a_pure_move_rename_or_comment_stales_nothing(tmp_path):
    here = {study: records.study_key(study, SMOKE) for study in ("suppression", "gated")}
    copy = tmp_path / "src" / "sae_failures"
    shutil.copytree(REPO / "src" / "sae_failures", copy, ignore=shutil.ignore_patterns("__pycache__"))
    training = copy / "engine" / "training.py"
    training.write_text("# a comment\n" + training.read_text().replace("def train_sae(", "def train_one_sae(")
                        .replace("train_sae(", "train_one_sae("))
    experiment = copy / "studies" / "suppression" / "experiment.py"
    experiment.rename(copy / "studies" / "suppression" / "readouts.py")
    for path in copy.rglob("*.py"):
        path.write_text(path.read_text().replace("studies.suppression import experiment",
                                                 "studies.suppression import readouts"))
    assert keys_in_copy(copy) == here  # moved, renamed, commented: the same keys
    init = copy / "studies" / "suppression" / "__init__.py"
    version = suppression_version()
    init.write_text(init.read_text().replace(f"VERSION = {version}", f"VERSION = {version + 1}"))
    bumped = keys_in_copy(copy)
    assert bumped["suppression"] != here["suppression"]  # a bump is what stales
    assert bumped["gated"] == here["gated"]  # and only its own study


def test_a_record_is_computed_once_then_served(tmp_data):
    calls = []

    def compute():
        calls.append(1)
        return [{"claim": "X-1", "quantity": 0.5}]

    first = records.recorded("lengths", SMOKE, "family", 1, "gated", compute)
    again = records.recorded("lengths", SMOKE, "family", 1, "gated", compute)
    assert first == again == [{"claim": "X-1", "quantity": 0.5}] and len(calls) == 1
    path = records.record_path("smoke", "lengths", "family", 1)
    assert path == tmp_data / "results" / "smoke" / "lengths" / "family" / "seed1.json"
    record = json.loads(path.read_text())
    assert record["key"] == records.study_key("gated", SMOKE) and record["versions"]["study"] == "gated"


def test_a_tampered_truncated_or_stale_record_is_recomputed_not_served(tmp_data, capsys, monkeypatch):
    path = records.record_path("smoke", "lengths", "family", 0)
    records.recorded("lengths", SMOKE, "family", 0, "gated", lambda: {"v": 1})

    record = json.loads(path.read_text())
    record["result"]["v"] = 2
    path.write_text(json.dumps(record))
    assert records.recorded("lengths", SMOKE, "family", 0, "gated", lambda: {"v": 3}) == {"v": 3}
    assert "is corrupt (its result does not match its sha256)" in capsys.readouterr().err

    path.write_text(path.read_text()[:40])
    assert records.recorded("lengths", SMOKE, "family", 0, "gated", lambda: {"v": 4}) == {"v": 4}
    assert "is corrupt" in capsys.readouterr().err

    import sae_failures.studies.gated

    version = sae_failures.studies.gated.VERSION
    monkeypatch.setattr("sae_failures.studies.gated.VERSION", version + 1)
    assert records.recorded("lengths", SMOKE, "family", 0, "gated", lambda: {"v": 5}) == {"v": 5}
    assert (f"smoke/lengths/family/seed0.json is stale (made under study_version {version} -> {version + 1}: commit"
            in capsys.readouterr().err)
    key = records.study_key("gated", SMOKE)
    assert json.loads(path.read_text())["key"] == key
    assert records.record_state(path, key) == "current" and records.record_state(path, "other").startswith("stale")
    assert records.record_state(path.with_name("seed9.json"), key) == "missing"


def test_a_part_that_fails_leaves_no_record(tmp_data):
    def fails():
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        records.recorded("lengths", SMOKE, "family", 0, "gated", fails)
    assert not records.record_path("smoke", "lengths", "family", 0).exists()
