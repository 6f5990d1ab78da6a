"""Recorded claims judged again: the codec round-trips what a rule read, and a changed threshold
re-reads the records of long runs without recomputing any."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from sae_failures.engine.claims import ClaimsTable, rejudge
from sae_failures.engine.codec import decode, encode
from sae_failures.engine.length_rows import row as length_row
from sae_failures.engine.splicing import CELosses
from sae_failures.profiles import PROFILES
from sae_failures.runs import pins, records, seed_runs
from sae_failures.studies.gated import experiment as gated
from sae_failures.studies.quickstart import claims as quickstart
from sae_failures.studies.scale_and_seeds import experiment as scale


def roundtrip(obj):
    return decode(json.loads(json.dumps(encode(obj))))


def test_the_codec_round_trips_what_rules_read_exactly():
    frame = pd.DataFrame({"variant": ["baseline", "Gated"], "l0": np.array([12.5, 30.25], dtype=np.float32),
                          "dead": [True, False], "n": np.array([3, 4])})
    multi = pd.DataFrame(np.arange(6.0).reshape(3, 2) / 7, index=pd.Index([16, 32, 128], name="k"),
                         columns=pd.MultiIndex.from_tuples([("explained_variance", "topk"), ("ce", "aligned - topk")]))
    values = [None, True, 3, 0.1 + 0.2, float("nan"), float("inf"), "text", np.float32(0.3), np.int64(7),
              (1, "a"), [1, (2, 3)], {3: 0.5, (1, "b"): [1]}, np.array([[1.5, -2.0]], dtype=np.float32),
              torch.tensor([0.25, 0.5]), frame, multi, frame.l0, pd.Series([1.0, 2.0], index=["a", "b"], name="s"),
              CELosses(3.0, 3.5, 7.0, 128)]
    for value in values:
        again = roundtrip(value)
        assert type(again) is type(value), value
        if isinstance(value, pd.DataFrame | pd.Series):
            pd.testing.assert_frame_equal(again, value) if isinstance(value, pd.DataFrame) else \
                pd.testing.assert_series_equal(again, value)
        elif isinstance(value, np.ndarray | torch.Tensor):
            assert again.dtype == value.dtype and again.shape == value.shape and bool((again == value).all())
        elif isinstance(value, float) and np.isnan(value):
            assert np.isnan(again)
        else:
            assert again == value and repr(again) == repr(value)


def test_a_rule_input_that_is_not_data_is_refused_by_name():
    with pytest.raises(TypeError, match="cannot record a Linear"):
        encode({"sae": torch.nn.Linear(2, 2)})


def qs1_claim(recovered: float) -> dict:
    table = ClaimsTable("00_quickstart", "smoke", "m")
    table.add(quickstart.qs1(CELosses(3.0, 7.0 - 4.0 * recovered, 7.0, 128), {"l0": 40.0, "fvu": 0.3}))
    return table.to_dict()["claims"][0]


def test_a_recorded_claim_is_judged_again_by_the_rule_as_it_is_now(monkeypatch):
    claim = qs1_claim(0.7)
    assert claim["rule"] == "sae_failures.studies.quickstart.claims.qs1" and claim["verdict"] == "partial"
    assert rejudge(claim) == claim  # the same rule and inputs give the same claim
    monkeypatch.setattr(quickstart, "QS1_RECOVERED", 0.6)
    assert rejudge(claim)["verdict"] == "reproduced"
    legacy = {k: v for k, v in claim.items() if k not in ("rule", "inputs")}
    assert rejudge(legacy) == legacy  # recorded before rules kept their inputs: served as it was


def test_a_changed_threshold_re_reads_seed_runs_and_length_records_without_recomputing(tmp_data, monkeypatch):
    smoke = scale.on_this_machine(PROFILES["smoke"])
    nb = seed_runs.lm_notebooks(["00"])[0]
    study = "quickstart"
    claims = {"notebook": nb.stem, "git_commit": "abc", "claims": [qs1_claim(0.7)]}
    records.write_record(records.record_path("smoke", "seed_runs", nb.stem, 0), "seed_runs", "smoke", nb.stem, 0,
                         study, records.study_key(study, smoke), claims)
    readout = gated.AblationReadout(
        gains=pd.Series({"decoder trained through aux": 0.01, "no r_mag": 0.02, "untied W_mag": -0.002}),
        gated_gain=0.05, rescale_shift_gain=0.01, rescale_shift_gamma=pd.Series([0.999, 1.001]))
    row = length_row(gated.gs7(readout, "resid 12"), 0, 8192, 0.2, 0.5)
    records.write_record(records.record_path("smoke", "lengths", "gated", 0), "lengths", "smoke", "gated", 0,
                         "gated", scale.family_key(smoke, "gated"), [row])
    monkeypatch.setattr("sae_failures.runs.seed_runs.execute", lambda *a: pytest.fail("recomputed a seed run"))
    monkeypatch.setitem(scale.MEASURES, "gated", lambda *a: pytest.fail("recomputed a length part"))

    before = (seed_runs.seed_outcomes("smoke", [0], ["00"]).loc[("QS-1", 0), "verdict"],
              scale.family_results(smoke, "gated", 0)[0]["verdict"])
    monkeypatch.setattr(quickstart, "QS1_RECOVERED", 0.6)
    monkeypatch.setattr(gated, "GS7_SMALL_PART", 0.1)
    after = (seed_runs.seed_outcomes("smoke", [0], ["00"]).loc[("QS-1", 0), "verdict"],
             scale.family_results(smoke, "gated", 0)[0]["verdict"])
    assert before[0] == "partial" and after[0] == "reproduced"
    assert before[1] != after[1]
    assert set(scale.parts(smoke).set_index(["part", "seed"]).state[[("seed run 00_quickstart", 0),
                                                                    ("lengths gated", 0)]]) == {"current"}


def test_the_smoke_check_names_a_claim_its_inputs_judge_otherwise(tmp_data):
    figures = tmp_data / "figures" / "smoke" / "00_quickstart"
    figures.mkdir(parents=True)
    claim = qs1_claim(0.7)
    (figures / "claims.json").write_text(json.dumps({"notebook": "00_quickstart", "claims": [claim], "setup": {}}))
    assert pins.rejudge_problems() == []
    claim["verdict"] = "reproduced"  # what the inputs do not say
    (figures / "claims.json").write_text(json.dumps({"notebook": "00_quickstart", "claims": [claim], "setup": {}}))
    assert pins.rejudge_problems() == ["00_quickstart QS-1: judged again from its recorded inputs, its verdict differ"]
