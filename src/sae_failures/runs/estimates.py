"""What a profile's notebooks will cost before they run: tokens, FLOPs and GPU-hours per notebook.

A model of each notebook's training, read from the profile's sizes (so ``SCALE`` and
overrides show up): the SAEs it trains, their widths and tokens, and the streamed forward
passes that feed them (one per group of SAEs that train together, ``saes.get_saes``). Costs
are counted, not measured: 12 d x width FLOPs per training token for an SAE (forward and
backward through encoder and decoder; Gated 1.3 x for its extra gate), 2 x the parameters
of the blocks up to the hook per streamed token, divided by an assumed sustained rate. The
README's GPU table is ``cli estimate`` at SCALE 1 and 0.1; replace it by
``figures/paper/timings.json`` once a run has been timed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sae_failures.profiles import BASELINE_WIDTH_FACTOR, Profile, resolve
from sae_failures.variants.scaled import ENCODER_METHODS

# The paper profile's models: d_model, d_mlp, parameters per block (attention 4 d^2, MLP 2 d d_mlp).
MODELS = {"EleutherAI/pythia-70m-deduped": (512, 2048), "EleutherAI/pythia-160m-deduped": (768, 3072),
          "gelu-1l": (512, 2048)}
ASSUMED_FLOPS = 25e12  # sustained fp32 FLOP/s on one H100/H200-class GPU (about 40% of fp32 peak)
GATED_COST = 1.3  # a Gated SAE's step against a standard SAE of the same width
FINETUNE_METHODS = len(ENCODER_METHODS) + 3  # notebook 01's encoder-side methods and its 3 decoder-side ones


@dataclass(frozen=True)
class Training:
    """One group of SAEs drawing one stream: how many, how wide, how many tokens each."""

    model: str
    layer: int
    d: int  # the hook's width
    widths: tuple[int, ...]  # one entry per SAE
    tokens: int  # each SAE's training tokens (the stream runs this long)
    gated: bool = False

    @property
    def sae_flops(self) -> float:
        return sum(12 * self.d * w for w in self.widths) * self.tokens * (GATED_COST if self.gated else 1)

    @property
    def forward_flops(self) -> float:
        d_model, d_mlp = MODELS[self.model]
        return 2 * (4 * d_model**2 + 2 * d_model * d_mlp) * (self.layer + 1) * self.tokens


def _groups(profile: Profile) -> dict[str, list[Training]]:
    """Each notebook's training groups under ``profile`` (the paper profile's sites)."""
    pythia, d = profile.model, MODELS[profile.model][0]
    sup, align, gated, cal = profile.suppression, profile.alignment, profile.gated, profile.calibration
    base_tokens = sup.train_tokens or profile.train_tokens
    out: dict[str, list[Training]] = {"00": [Training(pythia, profile.default_layer, d, (4 * d,), profile.train_tokens)]}
    out["01"] = [g for layer in sup.layers for g in (
        Training(pythia, layer, d, (4 * d,), base_tokens),
        Training(pythia, layer, d, (4 * d,) * FINETUNE_METHODS, sup.finetune_tokens))]
    d_align = MODELS[align.model][0]
    width, widths = resolve(align.width, d_align), [resolve(w, d_align) for w in align.sweep_widths]
    probes = (cal.probes * cal.tokens) if cal else 0  # a calibration counted at its most probes
    out["03"] = [
        Training(align.model, align.layer, d_align, (width,) * 5, profile.train_tokens),  # 5 architectures
        Training(align.model, align.layer, d_align, (align.wide_factor * width,), profile.train_tokens),
        Training(align.model, align.layer, d_align,
                 tuple(w for v in align.sweep_l1.values() for w in widths for _ in v), align.sweep_tokens),
        Training(align.model, align.layer, d_align, (width,) * 4, align.sweep_tokens),  # AB-7's two inits
        Training(align.model, align.layer, d_align, (width,) * 2 * len(align.topk_ks), align.sweep_tokens),
        *([Training(align.model, align.layer, d_align, (width,) * 4, probes)] if cal else [])]
    out["04"] = []
    for site in gated.sites:
        model = site.model if site.model in MODELS else pythia
        site_d = MODELS[model][1] if "mlp.hook_post" in site.hook else MODELS[model][0]
        layer = int(site.hook.split(".")[1])
        g_width = resolve(gated.gated_width, site_d)
        b_width = round(BASELINE_WIDTH_FACTOR * g_width)
        ablations = 3 * len(gated.gated_l1) if site.label == gated.ablation_site else 0
        out["04"] += [Training(model, layer, site_d, (b_width,) * (len(gated.baseline_l1) + gated.spread_seeds),
                               gated.sweep_tokens),
                      Training(model, layer, site_d, (g_width,) * (len(gated.gated_l1) + ablations + gated.spread_seeds),
                               gated.sweep_tokens, gated=True)]
        if site.label == gated.ablation_site:
            out["04"].append(Training(model, layer, site_d, (b_width,) * len(gated.baseline_l1),
                                      gated.rescale_shift_tokens))
        if cal:
            out["04"].append(Training(model, layer, site_d, (b_width, g_width), probes))
    return out


def notebook_costs(profile: Profile) -> pd.DataFrame:
    """Per notebook: SAEs, training tokens, FLOPs and hours at ``ASSUMED_FLOPS`` (an estimate)."""
    rows = []
    for notebook, groups in _groups(profile).items():
        sae, forward = sum(g.sae_flops for g in groups), sum(g.forward_flops for g in groups)
        rows.append({"notebook": notebook, "SAEs": sum(len(g.widths) for g in groups),
                     "SAE training tokens": float(sum(len(g.widths) * g.tokens for g in groups)),
                     "streamed tokens": float(sum(g.tokens for g in groups)), "SAE FLOPs": float(sae),
                     "forward FLOPs": float(forward), "GPU-hours (estimate)": (sae + forward) / ASSUMED_FLOPS / 3600})
    return pd.DataFrame(rows).set_index("notebook")
