"""FS-4, FS-8, FS-9 (feature suppression) with longer training: notebook 01's base SAE at
each budget, and notebook 01's fine-tunes of it."""

from __future__ import annotations

import pandas as pd

from sae_failures.engine.length_rows import row, scaled_tokens, with_passes
from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.saes import get_sae, training_history
from sae_failures.engine.sites import prepare_site, resid_site
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.training_length import budget_entry, budget_saes, doubling
from sae_failures.profiles import Profile
from sae_failures.studies.suppression import experiment as suppression
from sae_failures.variants.scaled import ENCODER_METHODS


def finetune_specs(settings: Profile, start: SAESpec, budget: int, stored_tokens: int) -> dict[str, SAESpec]:
    """Notebook 01's fine-tunes of the base SAE ``start`` (trained for ``budget`` tokens), each
    given ``finetune_tokens / train_tokens`` of the budget, notebook 01's ratio."""
    tokens = scaled_tokens(budget, settings.suppression.finetune_tokens / settings.train_tokens, start.batch_size)
    return {m: with_passes(suppression.finetune_spec(start, m, tokens), stored_tokens)
            for m in (*ENCODER_METHODS, *suppression.DECODER_SIDE)}


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
        rows.append(row(suppression.fs4(l0, convergence), seed, b, blowup.min().min(), ev))
        scales = suppression.analyse_scales(bases[b], tuned["Decoder"], x_eval)
        gap8 = abs(scales.additive_correlations["pearson_strength"]) - abs(scales.scale_correlations["pearson_strength"])
        rows.append(row(suppression.fs8(scales.scale_correlations, scales.additive_correlations), seed, b, gap8, ev))
        frequency = suppression.latent_stats(bases[b], x_eval).frequency
        above, jump = suppression.frequency_jump(frequency)
        rows.append(row(suppression.fs9({layer: (above, jump, int((frequency == 0).sum()))}), seed, b, jump, ev))
    return rows
