"""Records: the committed results of notebook 05's parts, keyed by the code that computes them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from sae_failures import records


@dataclass(frozen=True)
class Sizes:
    tokens: int


def toy_package(root):
    """a imports b inside a function, b imports sub.x, c stands alone."""
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("def f():\n    from sae_failures import b\n    return b\n")
    (root / "b.py").write_text("import sae_failures.sub.x\n")
    (root / "c.py").write_text("y = 1\n")
    (root / "profiles.py").write_text("SIZES = 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "x.py").write_text("import os\n")
    return root


def test_the_closure_follows_lazy_and_nested_imports_and_nothing_else(tmp_path):
    pkg = toy_package(tmp_path / "pkg")
    closure = records.import_closure(["%matplotlib inline\nfrom sae_failures import a"], pkg)
    assert [p.relative_to(pkg).as_posix() for p in closure] == [
        "__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/x.py"]


def test_the_key_changes_with_imported_code_and_profile_values_only(tmp_path):
    pkg = toy_package(tmp_path / "pkg")
    source = ["from sae_failures import a, profiles"]
    key = records.code_digest(source, Sizes(10), pkg)
    (pkg / "c.py").write_text("y = 2\n")  # not imported
    (pkg / "profiles.py").write_text("SIZES = 1\nOTHER = 2\n")  # enters through its values
    assert records.code_digest(source, Sizes(10), pkg) == key
    assert records.code_digest(source, Sizes(20), pkg) != key
    (pkg / "sub" / "x.py").write_text("import sys\n")
    assert records.code_digest(source, Sizes(10), pkg) != key


def test_a_record_is_computed_once_then_served(tmp_data):
    calls = []

    def compute():
        calls.append(1)
        return [{"claim": "X-1", "quantity": 0.5}]

    first = records.recorded("lengths", "smoke", "family", 1, "k1", compute)
    again = records.recorded("lengths", "smoke", "family", 1, "k1", compute)
    assert first == again == [{"claim": "X-1", "quantity": 0.5}] and len(calls) == 1
    path = records.record_path("smoke", "lengths", "family", 1)
    assert path == tmp_data / "results" / "smoke" / "lengths" / "family" / "seed1.json"
    assert json.loads(path.read_text())["key"] == "k1"


def test_a_tampered_truncated_or_stale_record_is_recomputed_not_served(tmp_data, capsys):
    path = records.record_path("smoke", "lengths", "family", 0)
    records.recorded("lengths", "smoke", "family", 0, "k1", lambda: {"v": 1})

    record = json.loads(path.read_text())
    record["result"]["v"] = 2
    path.write_text(json.dumps(record))
    assert records.recorded("lengths", "smoke", "family", 0, "k1", lambda: {"v": 3}) == {"v": 3}
    assert "is corrupt (its result does not match its sha256)" in capsys.readouterr().err

    path.write_text(path.read_text()[:40])
    assert records.recorded("lengths", "smoke", "family", 0, "k1", lambda: {"v": 4}) == {"v": 4}
    assert "is corrupt" in capsys.readouterr().err

    assert records.recorded("lengths", "smoke", "family", 0, "k2", lambda: {"v": 5}) == {"v": 5}
    assert "is stale (made by other code: commit" in capsys.readouterr().err
    assert json.loads(path.read_text())["key"] == "k2"
    assert records.record_state(path, "k2") == "current" and records.record_state(path, "k1").startswith("stale")
    assert records.record_state(path.with_name("seed9.json"), "k2") == "missing"


def test_a_part_that_fails_leaves_no_record(tmp_data):
    def fails():
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        records.recorded("lengths", "smoke", "family", 0, "k1", fails)
    assert not records.record_path("smoke", "lengths", "family", 0).exists()
