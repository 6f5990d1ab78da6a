"""Smoke pins: a change that moves a study's numbers fails until its version is bumped; the bump
stales that study's records alone; a change that moves nothing stales nothing."""

from __future__ import annotations

import json

import pytest

from sae_failures.engine.claims import Claim
from sae_failures.profiles import PROFILES
from sae_failures.runs import pins, records
from sae_failures.runs.setup import start
from sae_failures.studies import STUDIES
from sae_failures.studies.quickstart import claims as quickstart
from sae_failures.studies.scale_and_seeds import experiment as scale


def smoke_run(rec: dict[str, float], gated_quantity: float = 0.25) -> None:
    """What `make nbval` leaves behind, in miniature: notebook 00's and 04's claims and a gated
    length record, written by the functions the notebooks and notebook 05 call."""
    start("quickstart", "smoke", "cpu").close({"layer": 12}, quickstart.qs2(rec))
    start("gated", "smoke", "cpu").close({"sites": ["resid 12"]}, Claim("GS-8", "s", "p", "-", "not_attempted",
                                                                       notes="needs a judge"))
    smoke = scale.on_this_machine(PROFILES["smoke"])
    row = {"claim": "GS-6", "seed": 0, "tokens": 8192, "quantity": gated_quantity, "verdict": "partial",
           "measured": "m", "heldout_ev": 0.5, "statement": "s", "paper_value": "p"}
    records.write_record(records.record_path("smoke", "lengths", "gated", 0), "lengths", "smoke", "gated", 0,
                         "gated", scale.family_key(smoke, "gated"), [row])


def all_keys() -> dict[str, str]:
    smoke = scale.on_this_machine(PROFILES["smoke"])
    return {study: records.study_key(study, smoke) for study in STUDIES}


def test_numbers_that_did_not_move_pass_and_stale_nothing(tmp_data):
    pin_file = tmp_data / "pins.json"
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95})
    pins.write_pins(pins.smoke_numbers(), pin_file)
    assert set(json.loads(pin_file.read_text())["studies"]) == {"quickstart", "gated"}
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95})  # the same numbers from code that was moved or renamed
    assert pins.check_pins(pins.smoke_numbers(), pin_file) == []


def test_a_moved_read_out_fails_until_its_study_is_bumped_and_the_bump_stales_that_study_alone(tmp_data, monkeypatch):
    pin_file = tmp_data / "pins.json"
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95})
    pins.write_pins(pins.smoke_numbers(), pin_file)
    before = all_keys()

    smoke_run({"l2_ratio": 0.9, "gamma": 0.97})  # a read-out (gamma) now measures something else
    assert pins.check_pins(pins.smoke_numbers(), pin_file) == [
        "quickstart: its smoke numbers moved (QS-2) under the same versions: bump VERSION in "
        "sae_failures/studies/quickstart/__init__.py (this stales its records), or engine.VERSION if every "
        "study moved, then run `make pin`"]

    monkeypatch.setattr("sae_failures.studies.quickstart.VERSION", 2)
    assert pins.check_pins(pins.smoke_numbers(), pin_file) == [
        "quickstart: study_version 1 -> 2 since the pins were written; run `make pin` to pin its numbers "
        "under the new versions (moved: QS-2)"]
    after = all_keys()
    assert [s for s in STUDIES if after[s] != before[s]] == ["quickstart"]  # its records alone go stale

    pins.write_pins(pins.smoke_numbers(), pin_file)
    assert pins.check_pins(pins.smoke_numbers(), pin_file) == []


def test_a_moved_length_row_names_its_family(tmp_data):
    pin_file = tmp_data / "pins.json"
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95})
    pins.write_pins(pins.smoke_numbers(), pin_file)
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95}, gated_quantity=0.2500001)
    assert pins.check_pins(pins.smoke_numbers(), pin_file)[0].startswith(
        "gated: its smoke numbers moved (lengths gated/seed0) under the same versions")


def test_a_study_missing_from_the_run_or_from_the_pins_is_named(tmp_data):
    pin_file = tmp_data / "pins.json"
    assert pins.check_pins({}, pin_file) == [f"no smoke pins at {pin_file}: run `make pin` after `make nbval`"]
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95})
    numbers = pins.smoke_numbers()
    pins.write_pins({"gated": numbers["gated"]}, pin_file)
    assert pins.check_pins(numbers, pin_file) == ["quickstart: not pinned; run `make pin`"]
    pins.write_pins(numbers, pin_file)
    assert pins.check_pins({"gated": numbers["gated"]}, pin_file) == [
        "quickstart: pinned, but the smoke run produced no numbers for it (did every notebook run?)"]
    with pytest.raises(ValueError, match="Unknown studies"):
        pins.write_pins({"bogus": {}}, pin_file)


def test_pins_made_on_another_kind_of_cpu_ask_to_be_remade_not_compared(tmp_data, monkeypatch):
    pin_file = tmp_data / "pins.json"
    smoke_run({"l2_ratio": 0.9, "gamma": 0.95})
    pins.write_pins(pins.smoke_numbers(), pin_file)
    monkeypatch.setattr(pins, "machine", lambda: "riscv64 NONE")
    problems = pins.check_pins(pins.smoke_numbers(), pin_file)
    assert len(problems) == 2 and "this is riscv64 NONE: floating-point results differ" in problems[0]


def test_the_committed_pins_cover_every_study_under_the_current_versions():
    pinned = json.loads(pins.PINS_FILE.read_text())["studies"]
    assert set(pinned) == set(STUDIES)
    for study, pin in pinned.items():
        assert {k: v for k, v in pin["versions"].items() if k not in ("libraries", "machine")} == {
            k: v for k, v in records.versions(study).items() if k != "libraries"}
