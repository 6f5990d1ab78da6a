"""FS-4, FS-8, FS-9 (feature suppression) with longer training: notebook 01's base SAE at
each budget, notebook 01's fine-tunes of it at the shared layer, and FS-9 at every layer."""

from __future__ import annotations

import pandas as pd

from sae_failures.engine.length_rows import row
from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.saes import get_sae
from sae_failures.engine.sites import prepare_sites, resid_site
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.training_length import budget_entry, budget_saes, doubling
from sae_failures.profiles import Profile
from sae_failures.studies.suppression import experiment as suppression
from sae_failures.variants.scaled import ENCODER_METHODS


def finetune_specs(settings: Profile, start: SAESpec, stored_tokens: int) -> dict[str, SAESpec]:
    """Notebook 01's fine-tunes of the base SAE ``start``: the same tokens and batch whatever
    the base's budget, so that a longer-trained base is fine-tuned exactly as notebook 01's."""
    sizes = settings.suppression
    return {m: suppression.finetune_spec(start, m, sizes.finetune_tokens, sizes.finetune_batch, stored_tokens)
            for m in (*ENCODER_METHODS, *suppression.DECODER_SIDE)}


def suppression_lengths(settings: Profile, seed: int) -> list[dict]:
    """FS-4 and FS-8 at the shared layer (base SAE at each budget, fine-tunes from it:
    ``finetune_specs``), FS-9 over every layer of notebook 01 at each budget."""
    focus = settings.default_layer
    layers = sorted({*settings.suppression.layers, focus})
    prepared = prepare_sites(settings, [resid_site(settings, layer) for layer in layers])
    sites = {layer: prepared[f"resid {layer}"] for layer in layers}
    data, device = sites[focus], settings.device
    d_model = data.model.cfg.d_model
    base = {layer: suppression.base_spec(settings, sites[layer].train, d_model, seed, suppression.POST_L1)
            for layer in layers}
    budgets = doubling(*settings.scale.budgets)
    bases = {layer: budget_saes(base[layer], budgets, sites[layer].train, device) for layer in layers}
    x_eval = data.x_eval()
    rows = []
    for b in budgets:
        start = budget_entry(base[focus], budgets, b, data.train, device)
        specs = finetune_specs(settings, start, data.train.n_tokens)
        tuned = {m: get_sae(spec, data.train, device=device) for m, spec in specs.items()}
        metrics = reconstruction_metrics(bases[focus][b], x_eval)
        l0 = pd.DataFrame({name: [reconstruction_metrics(sae, x_eval)["l0"] if name != "Original" else metrics["l0"]]
                           for name, sae in {"Original": bases[focus][b], **tuned}.items()}, index=[focus])
        convergence = pd.DataFrame({m: [suppression.heldout_change(s, x_eval, device)] for m, s in specs.items()},
                                   index=[focus])
        blowup, _ = suppression.l0_changes(l0)
        ev = metrics["explained_variance"]
        rows.append(row(suppression.fs4(l0, convergence), seed, b, blowup.min().min(), ev))
        stats = {layer: suppression.dataset_stats(bases[layer][b], sites[layer].train,
                                                  settings.suppression.frequency_tokens) for layer in layers}
        scales = suppression.analyse_scales(bases[focus][b], tuned["Decoder"], stats[focus])
        gap8 = abs(scales.additive_correlations["pearson_strength"]) - abs(scales.scale_correlations["pearson_strength"])
        rows.append(row(suppression.fs8(scales.scale_correlations, scales.additive_correlations,
                                        suppression.convergence_note(convergence, ["Decoder"])), seed, b, gap8, ev))
        jumps = suppression.layer_jumps(stats)
        rows.append(row(suppression.fs9(jumps, stats[focus].n_tokens), seed, b,
                        min(jump for _, jump, _ in jumps.values()), ev))
    return rows
