"""Notebook 05: every language-model claim over seeds and training length.

One 1M-token run per claim cannot say whether a verdict would survive another seed, nor
whether a claim that falls short fails or has an under-trained SAE. This study asks both.

- **Seeds.** ``seed_runs`` reruns the language-model notebooks at seeds 0 .. n-1; a claim's
  seed count is the number of runs that reproduced it (``seeds.SeedCount``).
- **Training length.** The claims that fell short at 1M tokens (``LENGTH_CLAIMS``) are
  measured again on SAEs trained far longer, through their notebooks' own read-outs and
  verdict functions, at fewer sweep points (``profiles.ScaleSizes``). Every seed trains one
  long run per SAE, read at doubling budgets (``training_length``). Each claim yields one
  number per budget, ``LengthClaim.quantity``, plotted against tokens with the paper's value
  and the rule's threshold.
- **Decided or not.** A claim is decided when its seed count at the longest budget is
  one-sided and its quantity (mean over seeds) moved by less than the claim's tolerance
  over the last doubling, or moved away from the paper (``seeds.Decision``).

Every SAE and snapshot is cached in ``data/`` by its spec, and every (family, seed) part's
rows are recorded under ``results/`` (``records``: committed, keyed by the code that
computes them), so rerunning the notebook costs minutes once every part has run, on any
clone; ``make lengths`` runs one part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from sae_failures import alignment, gated_saes, records, seed_runs, suppression
from sae_failures.claims import Claim
from sae_failures.devices import to_numpy
from sae_failures.evaluation import evaluate_grid
from sae_failures.metrics import alignment_scores, reconstruction_metrics
from sae_failures.profiles import Profile
from sae_failures.saes import get_sae, training_history
from sae_failures.seed_runs import seed_counts
from sae_failures.seeds import Decision, SeedCount, TrainingTrend
from sae_failures.sites import prepare_site, prepare_sites, resid_site
from sae_failures.specs import SAESpec
from sae_failures.training_length import budget_entry, budget_saes, doubling
from sae_failures.variants.scaled import ENCODER_METHODS


@dataclass(frozen=True)
class LengthClaim:
    """What a claim's training-length curve plots, and the rule that reads it (fixed before the runs)."""

    family: str  # which part of the study measures it
    quantity: str  # the number per budget
    threshold: float  # where the claim's verdict rule draws its line on that number
    tolerance: float  # a smaller change over the last doubling counts as settled
    paper: float | None = None  # the paper's value, where it is a number

    @property
    def target(self) -> tuple[float, str]:
        """What "toward the paper" means: its number, or the rule's threshold where it gives a direction."""
        return (self.paper, "the paper's") if self.paper is not None else (self.threshold, "the rule's threshold")


FAMILIES = ("suppression", "alignment", "alignment_reference", "alignment_sweeps", "gated")
LENGTH_CLAIMS: dict[str, LengthClaim] = {
    "FS-4": LengthClaim("suppression", "smallest encoder-method L0 / base L0", suppression.FS4_BLOWUP, 0.1),
    "FS-8": LengthClaim("suppression", "|r(additive, strength)| - |r(scale, strength)|", 0.0, 0.02),
    "FS-9": LengthClaim("suppression", "largest gap in sorted log10 frequency (decades)",
                        suppression.FS9_JUMP_DECADES, 0.05),
    "AB-2": LengthClaim("alignment", "architectures bimodal near 0 and 1 (of 4)", 4.0, 0.5, paper=4.0),
    "AB-3": LengthClaim("alignment", "share of the standard SAE's low mode that is dead or rare",
                        alignment.AB3_LOW_INACTIVE, 0.02),
    "AB-4": LengthClaim("alignment_reference", "Pearson(alignment, MCS)", alignment.AB4_PEARSON, 0.02, paper=0.65),
    "AB-10": LengthClaim("alignment", "Ashman's D of the standard SAE's alignment scores", 2.0, 0.1),
    "AB-7": LengthClaim("alignment_sweeps", "dead fraction of the aligned SAEs", 0.0, 0.01, paper=0.0),
    "AB-9": LengthClaim("alignment_sweeps", "aligned TopK's EV gain at the smallest k",
                        alignment.AB9_NO_DIFFERENCE, 0.002, paper=0.0),
    "GS-3": LengthClaim("gated", "largest |Gated gamma - 1|", gated_saes.GS3_UNBIASED, 0.002, paper=0.01),
    "GS-4": LengthClaim("gated", "Gated minus baseline CE recovered, mean over points, worst site", 0.0, 0.005),
    "GS-6": LengthClaim("gated", "Gated minus untied W_mag (CE recovered at matched L0)",
                        -gated_saes.GS6_NO_GAIN, 0.003, paper=0.0),
    "GS-7": LengthClaim("gated", "rescale & shift's share of the Gated gain", 0.5, 0.05),
}


def _row(claim: Claim, seed: int, tokens: int, quantity: float, heldout_ev: float) -> dict:
    return {"claim": claim.id, "seed": seed, "tokens": tokens, "quantity": float(quantity),
            "verdict": claim.verdict, "measured": claim.measured, "heldout_ev": float(heldout_ev),
            "statement": claim.statement, "paper_value": claim.paper_value}


def _scaled_tokens(budget: int, ratio: float, batch_size: int) -> int:
    """``ratio`` x ``budget`` in whole batches, at least one."""
    return max(batch_size, round(budget * ratio / batch_size) * batch_size)


def with_passes(spec: SAESpec, stored_tokens: int) -> SAESpec:
    """``spec`` allowed the passes over the stored activations its tokens need: a fine-tune
    given its notebook's share of a long budget outgrows one pass."""
    return dataclasses.replace(spec, epochs=max(spec.epochs, -(-spec.n_tokens // stored_tokens)))


def finetune_specs(settings: Profile, start: SAESpec, budget: int, stored_tokens: int) -> dict[str, SAESpec]:
    """Notebook 01's fine-tunes of the base SAE ``start`` (trained for ``budget`` tokens), each
    given ``finetune_tokens / train_tokens`` of the budget, notebook 01's ratio."""
    tokens = _scaled_tokens(budget, settings.suppression.finetune_tokens / settings.train_tokens, start.batch_size)
    return {m: with_passes(suppression.finetune_spec(start, m, tokens), stored_tokens)
            for m in (*ENCODER_METHODS, *suppression.DECODER_SIDE)}


def rescale_shift_at(study: gated_saes.GatedStudy, start: SAESpec, budget: int, stored_tokens: int) -> SAESpec:
    """GS-7's rescale & shift of the baseline ``start`` (trained for ``budget`` tokens), given
    notebook 04's share of the sweep tokens of the budget."""
    tokens = _scaled_tokens(budget, study.rescale_shift_tokens / study.sweep_tokens, start.batch_size)
    return with_passes(gated_saes.rescale_shift_spec(start, tokens), stored_tokens)


def suppression_lengths(settings: Profile, seed: int) -> list[dict]:
    """FS-4, FS-8, FS-9 at the shared layer: base SAE at each budget, fine-tunes from it
    (``finetune_specs``)."""
    layer = settings.default_layer
    data = prepare_site(settings, resid_site(settings, layer))
    base = suppression.base_spec(settings, data.train, data.model.cfg.d_model, seed, suppression.POST_L1)
    budgets = doubling(*settings.scale.budgets)
    x_eval, device = data.x_eval(), settings.device
    bases = budget_saes(base, budgets, data.train, device)
    rows = []
    for b in budgets:
        start = budget_entry(base, budgets, b, data.train, device)
        specs = finetune_specs(settings, start, b, data.train.n_tokens)
        tuned = {m: get_sae(spec, data.train, device=device) for m, spec in specs.items()}
        metrics = reconstruction_metrics(bases[b], x_eval)
        l0 = pd.DataFrame({name: [reconstruction_metrics(sae, x_eval)["l0"] if name != "Original" else metrics["l0"]]
                           for name, sae in {"Original": bases[b], **tuned}.items()}, index=[layer])
        convergence = pd.DataFrame({m: [suppression.last_change(training_history(s))] for m, s in specs.items()},
                                   index=[layer])
        blowup, _ = suppression.l0_changes(l0)
        ev = metrics["explained_variance"]
        rows.append(_row(suppression.fs4(l0, convergence), seed, b, blowup.min().min(), ev))
        scales = suppression.analyse_scales(bases[b], tuned["Decoder"], x_eval)
        gap8 = abs(scales.additive_correlations["pearson_strength"]) - abs(scales.scale_correlations["pearson_strength"])
        rows.append(_row(suppression.fs8(scales), seed, b, gap8, ev))
        frequency = suppression.latent_stats(bases[b], x_eval).frequency
        above, jump = suppression.frequency_jump(frequency)
        rows.append(_row(suppression.fs9({layer: (above, jump, int((frequency == 0).sum()))}), seed, b, jump, ev))
    return rows


def alignment_lengths(settings: Profile, seed: int) -> list[dict]:
    """AB-2, AB-3, AB-10 on notebook 03's four architectures."""
    prof = alignment.training_profile(settings)
    data = prepare_site(prof, resid_site(prof))
    study = alignment.study_config(prof.alignment, data.model.cfg.d_model)
    budgets = doubling(*settings.scale.budgets)
    x_eval, device = data.x_eval(), prof.device
    specs = alignment.architecture_specs(data.train.spec, prof, study.width, seed)
    saes = {name: budget_saes(spec, (0, *budgets), data.train, device) for name, spec in specs.items()}
    rows = []
    for b in budgets:
        latents = {name: alignment.latent_table(s[b], x_eval) for name, s in saes.items()}
        ev = reconstruction_metrics(saes["standard"][b], x_eval)["explained_variance"]
        modes = alignment.bimodality_table(latents)
        rows.append(_row(alignment.ab2(modes), seed, b, sum(alignment.ab2_bimodal(modes).values()), ev))
        membership = alignment.membership_table(latents)
        rows.append(_row(alignment.ab3(membership), seed, b, membership.loc["standard"].low_mode_inactive, ev))
        by_checkpoint = alignment.checkpoint_bimodality(
            {t: to_numpy(alignment_scores(sae)) for t, sae in saes["standard"].items() if t <= b})
        rows.append(_row(alignment.ab10(by_checkpoint), seed, b, by_checkpoint.ashman_d.iloc[-1], ev))
    return rows


def alignment_reference_lengths(settings: Profile, seed: int) -> list[dict]:
    """AB-4: notebook 03's standard SAE against its 4 x wider reference, both at ``seed`` and
    at every budget. A part of its own, so that each (family, seed) part needs nothing another
    seed trained, and the four architectures' part stays under two hours."""
    prof = alignment.training_profile(settings)
    data = prepare_site(prof, resid_site(prof))
    study = alignment.study_config(prof.alignment, data.model.cfg.d_model)
    budgets = doubling(*settings.scale.budgets)
    x_eval, device = data.x_eval(), prof.device
    standard_spec = alignment.architecture_specs(data.train.spec, prof, study.width, seed)["standard"]
    standard = budget_saes(standard_spec, (0, *budgets), data.train, device)
    reference = alignment.wide_reference(standard_spec, study.wide_factor)
    wide = budget_saes(reference, budgets, data.train, device)
    rows = []
    for b in budgets:
        ev = reconstruction_metrics(standard[b], x_eval)["explained_variance"]
        latents = alignment.latent_table(standard[b], x_eval).assign(
            mcs=alignment.max_cosine_similarity(standard[b].W_dec, wide[b].W_dec))
        rows.append(_row(alignment.ab4(latents, reference.width), seed, b, alignment.mcs_pearson(latents)[0], ev))
    return rows


def alignment_sweep_lengths(settings: Profile, seed: int) -> list[dict]:
    """AB-7 (standard vs aligned dead latents) and AB-9 (TopK vs aligned TopK) at notebook 03's
    width, the sweep budgets and the points ``ScaleSizes`` names."""
    prof, sizes = alignment.training_profile(settings), settings.scale
    data = prepare_site(prof, resid_site(prof))
    study = alignment.study_config(prof.alignment, data.model.cfg.d_model)
    budgets = doubling(*sizes.sweep_budgets)
    x_eval, device = data.x_eval(), prof.device
    common = dict(n_tokens=study.sweep_tokens, batch_size=prof.sae_batch_size, seed=seed, autocast=prof.sae_autocast)
    sweep = {key: budget_saes(spec, budgets, data.train, device) for key, spec in alignment.paired_sweep(
        data.train.spec, sizes.alignment_sweep_l1, [study.width], **common).items()}
    topk = {key: budget_saes(spec, budgets, data.train, device) for key, spec in alignment.paired_sweep(
        data.train.spec, {"topk": sizes.topk_ks, "aligned_topk": sizes.topk_ks}, [study.width], **common).items()}
    rows = []
    for b in budgets:
        frame = pd.DataFrame([{"variant": v, "width": w, "sparsity": s, **reconstruction_metrics(saes[b], x_eval)}
                              for (v, w, s), saes in sweep.items()])
        aligned = frame[frame.variant == "aligned"]
        ev = float(frame.explained_variance.mean())
        rows.append(_row(alignment.ab7(frame, None, data.heldout.n_tokens), seed, b,
                         aligned.n_dead.sum() / (len(aligned) * study.width), ev))
        gain = alignment.topk_gain_table(evaluate_grid(data.model, data.hook, {k: s[b] for k, s in topk.items()},
                                                       x_eval, data.contexts, data.separator))
        rows.append(_row(alignment.ab9(gain), seed, b, gain["explained_variance", "aligned - topk"][min(sizes.topk_ks)],
                         ev))
    return rows


def gated_lengths(settings: Profile, seed: int) -> list[dict]:
    """GS-3 and GS-4 at ``ScaleSizes.gated_sites``, GS-6 and GS-7 at notebook 04's ablation site;
    rescale & shift fits for notebook 04's share of the sweep tokens from each budget's baseline."""
    sizes, ablation_site = settings.scale, settings.gated.ablation_site
    labels = list(dict.fromkeys([*sizes.gated_sites, ablation_site]))
    data = prepare_sites(settings, [s for s in settings.gated.sites if s.label in labels])
    budgets = doubling(*sizes.sweep_budgets)
    device, frames = settings.device, {b: [] for b in budgets}
    for label, d in data.items():
        study = dataclasses.replace(gated_saes.study_config(settings.gated, d.train.d),
                                    baseline_l1=sizes.gated_baseline_l1, gated_l1=sizes.gated_l1)
        ablations = gated_saes.ABLATION_NAMES if label == ablation_site else ()
        specs = gated_saes.sweep_specs(d.train.spec, study, settings.sae_batch_size, settings.sae_autocast, seed,
                                       ablations=("Gated", *ablations))
        trained = {key: budget_saes(spec, budgets, d.train, device) for key, spec in specs.items()}
        for b in budgets:
            saes = {key: s[b] for key, s in trained.items()}
            if label == ablation_site:
                for (variant, l1), spec in specs.items():
                    if variant == "baseline":
                        start = budget_entry(spec, budgets, b, d.train, device)
                        rescaled = rescale_shift_at(study, start, b, d.train.n_tokens)
                        saes[gated_saes.RESCALE_SHIFT, l1] = get_sae(rescaled, d.train, device=device)
            frames[b].append(evaluate_grid(d.model, d.hook, saes, d.x_eval(), d.contexts, d.separator,
                                           levels=("variant", "sparsity")).assign(site=label))
    rows = []
    for b in budgets:
        results = pd.concat(frames[b], ignore_index=True)
        main = results[results.variant.isin(["baseline", "Gated"]) & results.site.isin(sizes.gated_sites)]
        ev = float(main.explained_variance.mean())
        gated = main[main.variant == "Gated"]
        rows.append(_row(gated_saes.gs3(main, list(sizes.gated_sites)), seed, b, gated.gamma.sub(1).abs().max(), ev))
        rows.append(_row(gated_saes.gs4(main), seed, b, gated_saes.frontier_comparison(main).mean_gain.min(), ev))
        readout = gated_saes.ablation_readout(results[results.site == ablation_site])
        rows.append(_row(gated_saes.gs6(readout, ablation_site), seed, b, readout.gains["untied W_mag"], ev))
        share = readout.rescale_shift_gain / readout.gated_gain if readout.gated_gain > 0 else float("nan")
        rows.append(_row(gated_saes.gs7(readout, ablation_site), seed, b, share, ev))
    return rows


MEASURES = {"suppression": suppression_lengths, "alignment": alignment_lengths,
            "alignment_reference": alignment_reference_lengths, "alignment_sweeps": alignment_sweep_lengths,
            "gated": gated_lengths}


def family_key(settings: Profile) -> str:
    """What a family's record is keyed by: this module's import closure and the profile."""
    return records.code_digest([f"import {__name__}"], settings)


def family_results(settings: Profile, family: str, seed: int) -> list[dict]:
    """One family's rows (claim, seed, tokens, quantity, verdict, ...) at one seed: from its
    record (``records``), else measured now and recorded."""
    if family not in MEASURES:
        raise ValueError(f"Unknown family {family!r}. Valid: {', '.join(FAMILIES)}.")
    return records.recorded("lengths", settings.name, family, seed, family_key(settings),
                            lambda: MEASURES[family](settings, seed))


def parts(settings: Profile) -> pd.DataFrame:
    """Every part of the profile's study (each seed run, each family at each seed): the state
    of its record (``records.record_state``) and the command that runs it."""
    from sae_failures.notebook_runner import NOTEBOOK_DIR

    sizes, rows = settings.scale, []
    for name in sizes.seed_notebooks:
        key = seed_runs.code_key(NOTEBOOK_DIR / f"{name}.ipynb", settings)
        rows += [{"part": f"seed run {name}", "seed": seed,
                  "state": records.record_state(records.record_path(settings.name, "seed_runs", name, seed), key),
                  "run": f"make seeds PROFILE={settings.name} SEEDS='{seed}' NOTEBOOKS='{name[:2]}'"}
                 for seed in range(sizes.seeds)]
    key = family_key(settings)
    rows += [{"part": f"lengths {family}", "seed": seed,
              "state": records.record_state(records.record_path(settings.name, "lengths", family, seed), key),
              "run": f"make lengths PROFILE={settings.name} FAMILY={family} SEEDS='{seed}'"}
             for family in FAMILIES for seed in range(sizes.seeds)]
    return pd.DataFrame(rows)


def length_results(settings: Profile, families: Sequence[str] = FAMILIES, seeds: Sequence[int] | None = None
                   ) -> pd.DataFrame:
    """Every family's rows at every seed (default: the profile's ``scale.seeds``)."""
    seeds = range(settings.scale.seeds) if seeds is None else seeds
    return pd.DataFrame([row for family in families for seed in seeds
                         for row in family_results(settings, family, seed)])


def trend(claim: str, rows: pd.DataFrame) -> TrainingTrend:
    """The claim's quantity, mean over seeds, at each budget."""
    mine = rows[rows.claim == claim].groupby("tokens").quantity.mean()
    spec = LENGTH_CLAIMS[claim]
    target, name = spec.target
    return TrainingTrend(tuple(int(t) for t in mine.index), tuple(float(v) for v in mine), spec.tolerance,
                         paper=target, target_name=name)


def decision(claim: str, rows: pd.DataFrame) -> Decision:
    """Seeds at the longest budget, and the trend over budgets."""
    mine = rows[rows.claim == claim]
    longest = mine[mine.tokens == mine.tokens.max()]
    return Decision(SeedCount.of(list(longest.verdict == "reproduced")), trend(claim, rows))


def _tokens(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def length_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per length claim: the quantity (mean over seeds) at each budget, seeds held at the
    longest, and the decision."""
    table = rows.groupby(["claim", "tokens"]).quantity.mean().unstack("tokens")
    table.columns = [_tokens(t) for t in table.columns]
    order = [c for c in LENGTH_CLAIMS if c in table.index]
    table = table.loc[order]
    table.insert(0, "quantity", [LENGTH_CLAIMS[c].quantity for c in order])
    table["decision"] = [str(decision(c, rows)) for c in order]
    return table


def claims(outcomes: pd.DataFrame, rows: pd.DataFrame) -> list[Claim]:
    """Every language-model claim the seed runs judged, with its seed count at the notebooks'
    sizes, and every length claim measured in ``rows``, which takes its verdict from the
    longest budget's seeds and says whether it is decided."""
    counts = seed_counts(outcomes)
    measured = [c for c in LENGTH_CLAIMS if c in set(rows.claim)]
    made = []
    for claim_id in dict.fromkeys([*counts, *measured]):
        count = counts.get(claim_id)
        at_notebook = f"{count} at the notebook's sizes" if count else "its notebook has no seed runs in this profile"
        if claim_id in measured:
            first = rows[rows.claim == claim_id].iloc[0]
            spec, decided = LENGTH_CLAIMS[claim_id], decision(claim_id, rows)
            curve = ", ".join(f"{_tokens(t)} {v:.3g}" for t, v in zip(decided.trend.tokens, decided.trend.values,
                                                                       strict=True))
            made.append(Claim(claim_id, first.statement, first.paper_value,
                              f"{spec.quantity}: {curve} (mean of {decided.seeds.n} seeds)", decided.verdict,
                              evidence="length_curves.png",
                              seeds=f"{at_notebook}; {decided.seeds} at {_tokens(decided.trend.tokens[-1])} tokens",
                              more_training=str(decided)))
        else:
            first = outcomes.loc[claim_id].iloc[0]
            made.append(Claim(claim_id, first.statement, first.paper_value,
                              "; ".join(f"seed {s}: {v}" for s, v in outcomes.loc[claim_id].verdict.items()),
                              count.verdict, evidence="seed_verdicts.png", seeds=at_notebook,
                              more_training="not in the length study (it reproduced in its notebook's run)"))
    return made
