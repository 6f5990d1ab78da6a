"""The pieces the paper tier's rehearsal stands on: profile overrides, the local Hugging Face
cache the stand-ins write, the hub preflight, and the sparsity calibration (defect 9)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from sae_failures.engine import calibration
from sae_failures.engine.network import NetworkUnavailableError, cached_repo, require_repo
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.standins import HubRepo
from sae_failures.profiles import (
    OVERRIDES_ENV,
    PROFILES,
    CalibrationSizes,
    get_profile,
    with_overrides,
)


def test_overrides_resize_a_profile_and_say_so(monkeypatch):
    monkeypatch.setenv(OVERRIDES_ENV, "{train_tokens: 24000, gated.baseline_l1: [1.0, 4.0], calibration.probes: 2}")
    paper = get_profile("paper", "cpu")
    assert paper.train_tokens == 24_000 and paper.gated.baseline_l1 == (1.0, 4.0)
    assert paper.calibration.probes == 2 and paper.calibration.tokens == PROFILES["paper"].calibration.tokens
    assert paper.gated.gated_l1 == PROFILES["paper"].gated.gated_l1  # untouched fields stay
    assert paper.description.endswith("Overridden: train_tokens=24000, gated.baseline_l1=[1.0, 4.0], "
                                      "calibration.probes=2.")


def test_rehearsing_a_notebook_with_no_paper_branch_gets_one_line_and_touches_nothing(tmp_path, monkeypatch, capsys):
    from sae_failures.cli import main

    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_path))
    assert main(["rehearse", "--notebooks", "03", "02"]) == 2
    assert capsys.readouterr().err == ("error: Cannot rehearse ['02']: the rehearsed notebooks are "
                                       "00, 01, 03, 04.\n")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_override_gets_one_line_naming_what_is_valid():
    with pytest.raises(ValueError, match=r"Unknown profile field 'train_tokenz'.*Valid: .*train_tokens"):
        with_overrides(PROFILES["paper"], {"train_tokenz": 1})
    with pytest.raises(ValueError, match=r"train_tokens=\[1\]: expected an int like 50000000"):
        with_overrides(PROFILES["paper"], {"train_tokens": [1]})
    with pytest.raises(ValueError, match=r"corpus=3: expected a str like 'openwebtext'"):
        with_overrides(PROFILES["paper"], {"corpus": 3})
    with pytest.raises(ValueError, match="Unknown profile field 'name'"):
        with_overrides(PROFILES["paper"], {"name": "other"})


def test_the_rehearsal_overrides_are_valid_and_smoke_sized():
    from sae_failures.runs.rehearsal import overrides

    rehearsed = with_overrides(PROFILES["paper"], overrides())
    assert rehearsed.model == PROFILES["paper"].model and rehearsed.gated.sites == PROFILES["paper"].gated.sites
    assert rehearsed.eval_tokens == PROFILES["smoke"].eval_tokens and rehearsed.sae_batch_size == 256
    assert rehearsed.train_tokens == rehearsed.gated.sweep_tokens == 8 * rehearsed.sae_batch_size
    assert "llama-3-8b-it-res-jh" not in rehearsed.alignment.releases
    assert len(rehearsed.alignment.releases) == len(PROFILES["paper"].alignment.releases) - 1


def _hub(tmp_path, monkeypatch):
    hub = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_a_stand_in_repo_reads_back_through_huggingface_hub_offline(tmp_path, monkeypatch):
    """The layout ``HubRepo`` writes is the one huggingface_hub reads: blobs, snapshot links,
    refs/main, and .no_exist markers for files the repo lacks."""
    import huggingface_hub
    from huggingface_hub import try_to_load_from_cache

    hub = _hub(tmp_path, monkeypatch)
    staging = tmp_path / "staging"
    staging.mkdir()
    repo = HubRepo(hub, "org/tiny", absent=("config.json",))
    repo.add_json("sub/cfg.json", {"d_sae": 7}, staging)
    repo.write()
    path = huggingface_hub.hf_hub_download("org/tiny", "sub/cfg.json", cache_dir=hub)
    assert Path(path).read_text().count('"d_sae": 7') == 1
    assert try_to_load_from_cache("org/tiny", "config.json", cache_dir=hub) is huggingface_hub.file_download._CACHED_NO_EXIST
    assert cached_repo("org/tiny") and not cached_repo("org/other")
    require_repo("org/tiny", "A cached repo")  # no network needed
    with pytest.raises(NetworkUnavailableError, match=r"A missing repo \(org/other, not in the local Hugging Face cache\)"):
        require_repo("org/other", "A missing repo")


def test_the_paper_profile_lists_what_the_cache_lacks_before_running(tmp_path, monkeypatch):
    from sae_failures.runs.notebooks import hub_needs

    hub = _hub(tmp_path, monkeypatch)
    monkeypatch.setenv("SAE_FAILURES_OPENWEBTEXT", str(tmp_path))
    staging = tmp_path / "staging"
    staging.mkdir()
    for repo_id in ("EleutherAI/pythia-70m-deduped", "EleutherAI/pythia-160m-deduped"):
        repo = HubRepo(hub, repo_id)
        repo.add_json("config.json", {}, staging)
        repo.write()
    assert hub_needs(PROFILES["paper"]) == [
        "model NeelNanda/GELU_1L512W_C4_Code", "release pythia-70m-deduped-res-sm",
        "release llama-3-8b-it-res-jh", "release sae_bench_gemma-2-2b_topk_width-2pow12_date-1109"]
    assert hub_needs(PROFILES["offline"]) == []
    gelu = HubRepo(hub, "NeelNanda/GELU_1L512W_C4_Code")  # cached, but its tokenizer is another repo's
    gelu.add_json("config.json", {"tokenizer_name": "NeelNanda/gpt-neox-tokenizer-digits"}, staging)
    gelu.write()
    assert hub_needs(PROFILES["paper"])[0] == "tokenizer NeelNanda/gpt-neox-tokenizer-digits (of gelu-1l)"
    tokenizer = HubRepo(hub, "NeelNanda/gpt-neox-tokenizer-digits")
    tokenizer.add_json("tokenizer_config.json", {}, staging)
    tokenizer.write()
    assert hub_needs(PROFILES["paper"])[0] == "release pythia-70m-deduped-res-sm"
    monkeypatch.delenv("SAE_FAILURES_OPENWEBTEXT")
    assert hub_needs(PROFILES["paper"])[-1] == "dataset Skylion007/openwebtext"


def test_the_secant_lands_on_the_target_of_a_power_law():
    """L0 = A c^-s exactly: the first step assumes s = 1; from two probes the slope is exact."""
    def law(c: float) -> float:
        return 500.0 * c ** -1.7

    first = calibration.next_coefficient([(2.0, law(2.0))], 64.0)
    assert first == pytest.approx(2.0 * law(2.0) / 64.0, rel=1e-3)
    second = calibration.next_coefficient([(2.0, law(2.0)), (first, law(first))], 64.0)
    assert law(second) == pytest.approx(64.0, rel=1e-3)


def test_a_calibration_moves_the_grid_by_one_factor_keeping_its_spacing():
    cal = calibration.Calibration("standard", 2.0, 64.0, 0.15, ((2.0, 200.0), (4.0, 70.0), (5.0, 40.0)))
    assert cal.best == (4.0, 70.0) and cal.converged and cal.factor == 2.0
    assert cal.scale((1.5, 2.0, 3.0)) == (3.0, 4.0, 6.0)
    assert not dataclasses.replace(cal, tolerance=0.05).converged


def test_calibration_finds_the_coefficient_for_the_target_l0_and_caches_it(sparse_store, monkeypatch):
    """A real search on a store of 3 sparse features (L0 about 3.4 where the penalty is weak):
    from a reference far too weak for the target, the probes reach it, and a second call
    trains nothing."""
    store, _ = sparse_store
    x_eval = store.tensor(2048)
    spec = SAESpec("standard", store.spec, 8, 0.05, n_tokens=4096, batch_size=256, seed=0,
                   options=(("apply_b_dec_to_input", False),))
    sizes = CalibrationSizes(tokens=4096, probes=8, tolerance=0.2)
    found = calibration.calibrate(spec, store, x_eval, sizes, target_l0=2.0)
    first_l0 = found.probes[0][1]
    assert first_l0 > 2.0 * 1.2  # the reference alone misses the target
    assert found.converged and abs(found.best[1] / 2.0 - 1) <= 0.2
    assert found.factor > 1 and len(found.probes) <= 8
    assert math.isclose(found.scale((0.05,))[0], found.best[0], rel_tol=1e-3)

    trained = []
    monkeypatch.setattr(calibration, "get_saes", lambda *a, **k: trained.append(a) or None)
    again = calibration.calibrate(spec, store, x_eval, sizes, target_l0=2.0)
    assert again == found and trained == []


def test_calibrations_in_lockstep_search_as_each_alone(sparse_store, tmp_path, monkeypatch):
    """Searches run together (one pass over the data per round) make the probes each makes alone."""
    store, _ = sparse_store
    x_eval = store.tensor(2048)
    specs = {name: SAESpec(variant, store.spec, 8, sparsity, n_tokens=4096, batch_size=256,
                           options=(("apply_b_dec_to_input", False),))
             for name, variant, sparsity in (("weak", "standard", 0.05), ("strong", "standard", 5.0),
                                             ("jump", "jumprelu", 0.05))}
    sizes = CalibrationSizes(tokens=4096, probes=4, tolerance=0.2)
    together = calibration.calibrate_all(specs, store, x_eval, sizes, target_l0=2.0)
    assert len({len(c.probes) for c in together.values()}) > 1  # searches that stop at different rounds
    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_path / "alone"))
    for name, spec in specs.items():
        assert calibration.calibrate(spec, store, x_eval, sizes, target_l0=2.0) == together[name]


def test_the_offline_profiles_keep_smollm2_grids_and_the_paper_profile_calibrates():
    assert PROFILES["offline"].calibration is None and PROFILES["smoke"].calibration is None
    assert PROFILES["paper"].calibration is not None
    assert calibration.describe({}) == "SmolLM2's grid (this profile does not calibrate)"


def test_a_histogram_of_coinciding_scores_draws_instead_of_raising():
    """A tied or aligned release has every a_i = 1 to float precision: 80 bins over a few ulps
    made numpy raise (the rehearsal found it on the stand-in release)."""
    import numpy as np

    from sae_failures.studies.alignment.plots import bin_edges, release_histograms

    tied = (1 + np.random.default_rng(0).normal(0, 1e-7, 4096)).astype(np.float32)
    edges = bin_edges(tied, 80)
    assert len(edges) == 81 and edges[0] <= tied.min() and edges[-1] >= tied.max()
    assert np.allclose(bin_edges(np.array([0.0, 2.0]), 4), [0, 0.5, 1, 1.5, 2])
    fig = release_histograms({"tied": tied, "spread": np.linspace(-1, 1, 100)})
    assert [int(sum(p.get_height() for p in ax.patches)) for ax in fig.axes] == [4096, 100]


def test_gpu_check_projects_hours_from_the_rate_it_measured():
    """At the rate make estimate assumes, the projection is make estimate's; at half, twice it."""
    from sae_failures.runs.estimates import ASSUMED_FLOPS, notebook_costs
    from sae_failures.runs.gpu_check import Measured, checked_width, projected_hours

    paper = PROFILES["paper"]
    assert checked_width(paper, 512) == 6144  # notebook 04's baseline: 1.5 x 8 x 512
    at_estimate = Measured("cuda:0", "blocks.3.hook_resid_post", 6144, 10**6, 1.0, 5.0, ASSUMED_FLOPS)
    hours = projected_hours(at_estimate, paper)
    assert list(hours.index) == ["00", "01", "03", "04", "all"]
    assert hours["SCALE=1, here"].to_numpy() == pytest.approx(hours["SCALE=1, estimate"].to_numpy())
    assert hours.loc["04", "SCALE=1, estimate"] == pytest.approx(notebook_costs(paper).loc["04", "GPU-hours (estimate)"])
    half = projected_hours(dataclasses.replace(at_estimate, seconds=2.0), paper)
    assert half["SCALE=0.1, here"].to_numpy() == pytest.approx(2 * hours["SCALE=0.1, estimate"].to_numpy())
    assert hours.loc["all", "SCALE=0.1, estimate"] < hours.loc["all", "SCALE=1, estimate"] / 5
