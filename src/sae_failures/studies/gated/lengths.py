"""GS-3, GS-4, GS-6, GS-7 (Gated SAEs) with longer training: notebook 04's sweeps and
ablations at every budget, with rescale & shift fitted from each budget's baseline."""

from __future__ import annotations

import dataclasses

import pandas as pd

from sae_failures.engine.evaluation import evaluate_grid
from sae_failures.engine.length_rows import row, scaled_tokens, with_passes
from sae_failures.engine.saes import get_sae
from sae_failures.engine.sites import prepare_sites
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.training_length import budget_entry, budget_saes, doubling
from sae_failures.profiles import Profile
from sae_failures.studies.gated import experiment as gated_saes


def rescale_shift_at(study: gated_saes.GatedStudy, start: SAESpec, budget: int, stored_tokens: int) -> SAESpec:
    """GS-7's rescale & shift of the baseline ``start`` (trained for ``budget`` tokens), given
    notebook 04's share of the sweep tokens of the budget."""
    tokens = scaled_tokens(budget, study.rescale_shift_tokens / study.sweep_tokens, start.batch_size)
    return with_passes(gated_saes.rescale_shift_spec(start, tokens), stored_tokens)


def gated_lengths(settings: Profile, seed: int) -> list[dict]:
    """GS-3 and GS-4 at ``ScaleSizes.gated_sites``, GS-6 and GS-7 at notebook 04's ablation site;
    rescale & shift fits for notebook 04's share of the sweep tokens from each budget's baseline."""
    sizes, ablation_site = settings.scale, settings.gated.ablation_site
    labels = list(dict.fromkeys([*sizes.gated_sites, ablation_site]))
    data = gated_saes.with_resolved_ce(settings, prepare_sites(settings, [s for s in settings.gated.sites
                                                                           if s.label in labels]))
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
        rows.append(row(gated_saes.gs3(main, list(sizes.gated_sites)), seed, b, gated.gamma.sub(1).abs().max(), ev))
        noise = pd.Series(gated_saes.LENGTH_NOISE, index=list(sizes.gated_sites))  # one seed read alone
        rows.append(row(gated_saes.gs4(main, noise), seed, b, gated_saes.frontier_comparison(main, noise).mean_gain.min(),
                        ev))
        readout = gated_saes.ablation_readout(results[results.site == ablation_site])
        rows.append(row(gated_saes.gs6(readout, ablation_site, gated_saes.LENGTH_NOISE), seed, b,
                        readout.gains["untied W_mag"], ev))
        share = readout.rescale_shift_gain / readout.gated_gain if readout.gated_gain > 0 else float("nan")
        rows.append(row(gated_saes.gs7(readout, ablation_site), seed, b, share, ev))
    return rows
