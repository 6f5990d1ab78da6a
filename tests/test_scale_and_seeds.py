"""Notebook 05's read-outs on hand-made rows with known answers (the measurements themselves
run in the smoke notebook; their building blocks are tested in test_saes)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from sae_failures.engine.claims import VERDICTS
from sae_failures.engine.seeds import tokens_label
from sae_failures.engine.training_length import doubling
from sae_failures.profiles import PROFILES, get_profile
from sae_failures.studies.gated import lengths as gated_family
from sae_failures.studies.scale_and_seeds import experiment as scale
from sae_failures.studies.scale_and_seeds import plots as scale_plots
from sae_failures.studies.suppression import lengths as suppression_family


def length_rows(claim: str, values_by_seed: dict[int, list[float]], verdicts: dict[int, str],
                tokens=(1_000_000, 2_000_000, 4_000_000)) -> pd.DataFrame:
    return pd.DataFrame([{"claim": claim, "seed": seed, "tokens": t, "quantity": v, "heldout_ev": 0.9,
                          "verdict": verdicts[seed] if t == tokens[-1] else "not_reproduced", "measured": "-",
                          "statement": f"{claim} statement", "paper_value": "p"}
                         for seed, values in values_by_seed.items() for t, v in zip(tokens, values, strict=True)])


def outcomes(verdicts: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame([{"claim": c, "seed": s, "verdict": v, "measured": "-", "statement": f"{c} statement",
                          "paper_value": "p", "git_commit": "abc"}
                         for c, vs in verdicts.items() for s, v in enumerate(vs)]).set_index(["claim", "seed"])


def test_a_settled_quantity_with_one_sided_seeds_is_decided():
    # AB-4 (tolerance 0.02): mean over seeds 0.10, 0.30, 0.31 -> last doubling +0.01: settled
    rows = length_rows("AB-4", {0: [0.1, 0.3, 0.30], 1: [0.1, 0.3, 0.32], 2: [0.1, 0.3, 0.31]},
                       {0: "not_reproduced", 1: "not_reproduced", 2: "not_reproduced"})
    d = scale.decision("AB-4", rows)
    assert d.trend.values == pytest.approx((0.1, 0.3, 0.31)) and d.trend.tokens == (1_000_000, 2_000_000, 4_000_000)
    assert d.decided and d.verdict == "not_reproduced" and d.seeds.held == 0
    assert str(d).startswith("decided: 0/3 seeds") and "settled" in str(d)


def test_a_quantity_still_climbing_toward_the_paper_is_undecided():
    rows = length_rows("AB-4", {s: [0.1, 0.3, 0.5] for s in range(3)}, {s: "partial" for s in range(3)})
    d = scale.decision("AB-4", rows)
    assert not d.decided
    assert "still moving toward the paper's 0.65 at 4M tokens" in str(d)
    # a claim with only a direction in the paper is read against its rule's threshold
    fs9 = scale.decision("FS-9", length_rows("FS-9", {0: [0.3, 0.5, 0.8]}, {0: "not_reproduced"}))
    assert "toward the rule's threshold 1" in str(fs9)


def test_claims_join_seed_runs_and_length_study():
    seeds = outcomes({"QS-1": ["reproduced"] * 3, "AB-4": ["not_reproduced"] * 3,
                      "AB-5": ["not_attempted"] * 3, "FS-2": ["reproduced", "partial", "reproduced"]})
    rows = length_rows("AB-4", {s: [0.1, 0.3, 0.5] for s in range(3)}, {s: "reproduced" for s in range(3)})
    made = {c.id: c for c in scale.claims(seeds, rows)}
    assert list(made) == ["QS-1", "AB-4", "FS-2"]  # AB-5 could not be judged at any seed
    assert made["QS-1"].verdict == "reproduced" and made["QS-1"].seeds.startswith("3/3 seeds")
    assert made["FS-2"].verdict == "partial"  # 2/3 straddles 1/2
    ab4 = made["AB-4"]
    assert ab4.verdict == "reproduced"  # from the longest budget's seeds, not the 1M notebook runs
    assert ab4.seeds.startswith("0/3 seeds") and "3/3 seeds (90% Wilson 0.53-1.00) at 4M tokens" in ab4.seeds
    assert ab4.more_training.startswith("undecided") and "1M 0.1, 2M 0.3, 4M 0.5" in ab4.measured
    assert all(c.verdict in VERDICTS for c in made.values())


def test_length_table_orders_claims_and_names_budgets():
    rows = pd.concat([length_rows("GS-3", {0: [0.05, 0.04, 0.03]}, {0: "not_reproduced"}),
                      length_rows("FS-4", {0: [1.2, 1.4, 1.5]}, {0: "partial"})])
    table = scale.length_table(rows)
    assert list(table.index) == ["FS-4", "GS-3"]
    assert list(table.columns) == ["quantity", "1M", "2M", "4M", "decision"]


def test_every_profile_has_doubling_budgets_and_known_sweep_sites():
    for profile in PROFILES.values():
        sizes = profile.scale
        assert len(doubling(*sizes.budgets)) >= 2 and len(doubling(*sizes.sweep_budgets)) >= 2
        assert set(sizes.gated_sites) <= {s.label for s in profile.gated.sites}
        assert set(sizes.alignment_sweep_l1) == {"standard", "aligned"}
    offline = PROFILES["offline"].scale
    first, last = offline.budgets
    assert last >= 16_000_000 and last // first >= 16 and len(doubling(first, last)) >= 4  # at least four doublings past 1M
    first, last = offline.sweep_budgets
    assert last >= 4_000_000 and last // first >= 16 and offline.seeds >= 3
    with pytest.raises(ValueError, match="Unknown family 'bogus'"):
        scale.family_results(PROFILES["smoke"], "bogus", 0)


def test_parts_say_which_records_are_current_and_how_to_run_the_rest(tmp_data):
    from sae_failures.runs import records

    smoke = PROFILES["smoke"]
    table = scale.parts(smoke)
    assert len(table) == smoke.scale.seeds * (len(smoke.scale.seed_notebooks) + len(scale.FAMILIES))
    assert set(table.state) == {"missing"}
    path = records.record_path("smoke", "lengths", "gated", 0)
    records.write_record(path, "lengths", "smoke", "gated", 0, "gated", scale.family_key(smoke, "gated"), [])
    row = scale.parts(smoke).set_index(["part", "seed"]).loc[("lengths gated", 0)]
    assert row.state == "current" and row.run == "make lengths PROFILE=smoke FAMILY=gated SEEDS='0'"
    records.write_record(path, "lengths", "smoke", "gated", 0, "gated", "other", [])
    assert scale.parts(smoke).set_index(["part", "seed"]).loc[("lengths gated", 0)].state.startswith("stale")


def test_a_family_is_keyed_by_its_own_studys_version_only(monkeypatch):
    # One shared key made the GS-3 fix stale the suppression and alignment records too.
    smoke = PROFILES["smoke"]
    assert {f: scale.family_study(f) for f in scale.FAMILIES} == {
        "suppression": "suppression", "alignment": "alignment", "alignment_reference": "alignment",
        "alignment_sweeps": "alignment", "gated": "gated"}
    assert all(scale.MEASURES[f].__module__ == f"sae_failures.studies.{scale.family_study(f)}.lengths"
               for f in scale.FAMILIES)  # measured by the study whose version keys it
    before = {f: scale.family_key(smoke, f) for f in scale.FAMILIES}
    assert before["alignment"] == before["alignment_sweeps"] != before["gated"]
    import sae_failures.studies.gated

    monkeypatch.setattr("sae_failures.studies.gated.VERSION", sae_failures.studies.gated.VERSION + 1)
    after = {f: scale.family_key(smoke, f) for f in scale.FAMILIES}
    assert [f for f in scale.FAMILIES if after[f] != before[f]] == ["gated"]
    monkeypatch.setattr("sae_failures.studies.scale_and_seeds.VERSION", 2)  # its read-out rules change freely
    assert {f: scale.family_key(smoke, f) for f in scale.FAMILIES} == after
    with pytest.raises(ValueError, match=r"Unknown family 'bogus'\. Valid: suppression, alignment"):
        scale.family_key(smoke, "bogus")


def test_an_unresolved_profile_finds_the_records_of_the_resolved_one(monkeypatch):
    # PROFILES["offline"] has device "auto"; the notebooks' get_profile resolves it. Keyed
    # unresolved, every record read as stale and a recomputation started on device "auto".
    for name in ("SAE_FAILURES_DEVICE", "SAE_FAILURES_SCALE", "SAE_FAILURES_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    offline = PROFILES["offline"]
    assert offline.device == "auto"
    assert scale.family_key(offline, "gated") == scale.family_key(get_profile("offline"), "gated")
    assert scale.on_this_machine(offline) == get_profile("offline")


def test_fine_tunes_of_a_long_budget_may_repeat_the_stored_activations():
    # The first offline suppression part stopped at the 8M budget: its fine-tunes outgrew the 1M
    # stored tokens with epochs=1; GS-7's rescale & shift at 4M (2M tokens) would have too.
    from types import SimpleNamespace

    from sae_failures.engine.saes import _check_epochs
    from sae_failures.engine.specs import ActivationSpec, standard_spec
    from sae_failures.engine.training_length import budget_spec
    from sae_failures.studies.gated import experiment as gated_saes

    offline = PROFILES["offline"]
    stored = SimpleNamespace(n_tokens=offline.train_tokens)
    train = ActivationSpec("smollm2-135m-offline", "blocks.12.hook_resid_post", "brown", "train", 128,
                           offline.train_tokens, "bfloat16")
    base = standard_spec(train, offline.train_tokens, offline.sae_batch_size, 576, autocast=True)
    budgets = doubling(*offline.scale.budgets)
    start = budget_spec(base, budgets, budgets[-1], offline.train_tokens)
    tunes = suppression_family.finetune_specs(offline, start, offline.train_tokens)
    assert {(s.n_tokens, s.epochs) for s in tunes.values()} == {(2_097_152, 3)}
    for spec in tunes.values():
        _check_epochs(spec, stored)
    study = gated_saes.study_config(offline.gated, 576)
    rescaled = gated_family.rescale_shift_at(study, start, offline.scale.sweep_budgets[-1], offline.train_tokens)
    assert rescaled.n_tokens == 2_000_896 and rescaled.epochs == 3
    _check_epochs(rescaled, stored)


def test_a_fine_tune_is_the_same_whatever_its_base_budget():
    """The length study once gave each fine-tune notebook 01's share of its base's budget, so a
    base trained 16 x longer was fine-tuned 16 x longer: two things changed at once."""
    from sae_failures.engine.specs import ActivationSpec, standard_spec
    from sae_failures.engine.training_length import budget_spec

    offline = PROFILES["offline"]
    train = ActivationSpec("smollm2-135m-offline", "blocks.12.hook_resid_post", "brown", "train", 128,
                           offline.train_tokens, "bfloat16")
    base = standard_spec(train, offline.train_tokens, offline.sae_batch_size, 576, autocast=True)
    budgets = doubling(*offline.scale.budgets)
    shapes = {(s.n_tokens, s.batch_size, s.lr, s.lr_decay_frac)
              for b in (budgets[0], budgets[-1])
              for s in suppression_family.finetune_specs(offline, budget_spec(base, budgets, b, offline.train_tokens),
                                                         offline.train_tokens).values()}
    assert shapes == {(offline.suppression.finetune_tokens, offline.suppression.finetune_batch, 1e-3, 0.0)}


def test_length_curves_tick_the_budgets_read() -> None:
    """Sweep panels once drew matplotlib's minor log labels (3x10^5, 4x10^5, ...) on top of
    each other; each panel now ticks exactly its budgets, labelled as the text names them."""
    assert [tokens_label(t) for t in (250_000, 500_000, 1_000_000, 16_000_000)] == \
        ["250k", "500k", "1M", "16M"]
    budgets = [250_000, 500_000, 1_000_000, 2_000_000, 4_000_000]
    rows = pd.DataFrame([{"claim": "GS-6", "seed": s, "tokens": t, "quantity": 0.01 * s, "heldout_ev": 0.7}
                         for s in (0, 1) for t in budgets])
    fig = scale_plots.length_curves(rows)
    ax = next(a for a in fig.axes if a.get_title().startswith("GS-6:"))
    fig.canvas.draw()
    assert list(ax.get_xticks()) == budgets
    assert [t.get_text() for t in ax.get_xticklabels()] == ["250k", "500k", "1M", "2M", "4M"]
    assert not ax.xaxis.get_minorticklocs().size
    plt.close(fig)


def test_the_seed_grid_draws_every_verdict_in_its_own_colour() -> None:
    """The grid once raised KeyError on 'unmeasurable', a verdict added after its colour table."""
    fig = scale_plots.verdict_grid(outcomes({"AB-3": list(VERDICTS)}))
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(VERDICTS)
    colours = {tuple(h.get_facecolor()) for h in legend.legend_handles}
    assert len(colours) == len(VERDICTS)
    plt.close(fig)
