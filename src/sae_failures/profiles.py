"""Run profiles: how big, on what model and corpus, on what hardware.

Notebooks take ``profile`` as a papermill parameter and read everything that scales
from here, so a profile means the same thing in every notebook.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: str  # key understood by sae_failures.model.load_model
    corpus: str  # key understood by sae_failures.corpus.load_corpus
    device: str
    model_dtype: str  # dtype of the language model's forward passes (harvest, CE splicing)
    context_size: int  # tokens per packed context, position 0 included
    train_tokens: int  # activations harvested for SAE training (position 0 excluded)
    eval_tokens: int  # held-out tokens for reconstruction metrics
    ce_tokens: int  # held-out tokens scored when splicing SAEs into the model (3+ passes each)
    sae_batch_size: int
    default_layer: int  # the residual layer every notebook shares
    resid_layers: tuple[int, ...]  # layers studied when a notebook sweeps depth
    needs_network: bool = False
    sae_autocast: bool = False  # train LM SAEs with bf16 matmuls (2.5x faster on this CPU)
    toy_samples_scale: float = 1.0  # toy SAEs (notebook 02) train on this fraction of the posts' samples
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: tiny token counts, real offline model and corpus, CPU, minutes.",
        model="smollm2-135m-offline",
        corpus="brown",
        device="cpu",
        model_dtype="bfloat16",
        context_size=64,
        train_tokens=24_000,
        eval_tokens=2_048,
        ce_tokens=1_024,
        sae_batch_size=1024,
        default_layer=12,
        resid_layers=(6, 12),
        sae_autocast=True,
        toy_samples_scale=0.02,
    ),
    "offline": Profile(
        name="offline",
        description="Default of `make figures`: real model (SmolLM2-135M) and corpus (Brown), CPU, no network.",
        model="smollm2-135m-offline",
        corpus="brown",
        device="cpu",
        model_dtype="bfloat16",
        context_size=128,
        train_tokens=1_000_000,
        eval_tokens=32_768,
        ce_tokens=8_192,
        sae_batch_size=2048,
        default_layer=12,
        resid_layers=(3, 9, 12, 18, 24, 29),
        sae_autocast=True,
    ),
    "paper": Profile(
        name="paper",
        description="The papers' models and data at scale: GPU and network (model and dataset hubs).",
        model="EleutherAI/pythia-70m-deduped",
        corpus="openwebtext",
        device="cuda",
        model_dtype="float32",
        context_size=128,
        # Stored on disk (d=512 fp32: 2 GB per million tokens); the papers' 100M+ token runs
        # would need streaming activations, which this profile does not do yet.
        train_tokens=10_000_000,
        eval_tokens=1_000_000,
        ce_tokens=131_072,
        sae_batch_size=4096,
        default_layer=3,
        resid_layers=(0, 1, 2, 3, 4, 5),
        needs_network=True,
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a clear error naming the valid ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        valid = ", ".join(PROFILES)
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {valid}.") from None
