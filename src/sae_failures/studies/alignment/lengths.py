"""AB-2, AB-3, AB-4, AB-7, AB-9, AB-10 (alignment-score bimodality) with longer training:
notebook 03's four architectures, its standard SAE against a 4x wider reference, and its
sweeps, each at every budget."""

from __future__ import annotations

import pandas as pd

from sae_failures.engine.devices import to_numpy
from sae_failures.engine.evaluation import evaluate_grid
from sae_failures.engine.length_rows import row
from sae_failures.engine.metrics import alignment_scores, reconstruction_metrics
from sae_failures.engine.sites import prepare_site, resid_site
from sae_failures.engine.training_length import budget_saes, doubling
from sae_failures.profiles import Profile
from sae_failures.studies.alignment import experiment as alignment


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
        rows.append(row(alignment.ab2(modes), seed, b, sum(alignment.ab2_bimodal(modes).values()), ev))
        membership = alignment.membership_table(latents)
        rows.append(row(alignment.ab3(membership), seed, b, membership.loc["standard"].low_mode_inactive, ev))
        by_checkpoint = {name: alignment.checkpoint_bimodality(
            {t: to_numpy(alignment_scores(sae)) for t, sae in saes[name].items() if t <= b})
            for name in alignment.AB10_ARCHITECTURES}
        rows.append(row(alignment.ab10(by_checkpoint), seed, b, by_checkpoint["topk"].ashman_d.iloc[-1], ev))
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
        pearson, pearson_live = alignment.mcs_pearson(latents)
        rows.append(row(alignment.ab4(pearson, pearson_live, reference.width), seed, b, pearson, ev))
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
        rows.append(row(alignment.ab7(frame, None, data.heldout.n_tokens), seed, b,
                         aligned.n_dead.sum() / (len(aligned) * study.width), ev))
        gain = alignment.topk_gain_table(evaluate_grid(data.model, data.hook, {k: s[b] for k, s in topk.items()},
                                                       x_eval, data.contexts, data.separator))
        rows.append(row(alignment.ab9(gain), seed, b, gain["ce_loss_recovered", "aligned - topk"][max(sizes.topk_ks)],
                         ev))
    return rows
