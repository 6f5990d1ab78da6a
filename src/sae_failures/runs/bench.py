"""``make bench``: throughput next to the same run's matmul roofline.

- SAE training: the step of every variant the profiles train, sae-lens's ``SAETrainer.step``
  next to this package's fused step (``engine.step``), as a fraction of the same run's matmul
  rate for the step's dtype and FLOPs (its matmuls, counted in one eager step, x 2 x batch x d
  x width). Goal for ours under bf16 autocast: >= 80%.
- Activation harvest: tokens/s of the LM forward up to the harvested layer, as a
  fraction of the model-dtype matmul throughput for its weight FLOPs (2 * params per token).
- Toy SAEs (notebook 02): SAE-samples/s of the stacked trainer against sae-lens's
  ``SAETrainer.step`` on one of the same SAEs. Goal: notebook 02's ~5.4G SAE-samples well
  inside its 15 minutes, i.e. >= 2x ``SAETrainer`` (measured: 2.4x on 20-feature setups,
  7x on 4-feature ones, where batches collapse to firing-pattern counts).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch

from sae_failures.engine.specs import ActivationSpec, SAESpec
from sae_failures.engine.training import build_training_sae


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops_per_s(m: int, k: int, n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    return 2 * m * k * n / _best_seconds(lambda: a @ b, repeats)


# Every variant the profiles train, at the offline sizes (d 576, 4 x d wide, batch 2048).
STEP_VARIANTS: tuple[tuple[str, float, tuple], ...] = (
    ("standard_unit_norm", 3.0, ()), ("standard", 3.0, ()), ("topk", 32, ()), ("jumprelu", 0.1, ()),
    ("gated_paper", 3.0, ()), ("gated", 10.0, ()), ("aligned", 3.0, ()),
    ("scaled_finetune", 0.0, (("finetune_method", "Decoder"), ("apply_b_dec_to_input", False))))

LONG_RUN_STEPS = 10_000  # the bench's SAEs are specified as long runs: their step is the one long runs take


def matmuls_per_step(step: Callable[[torch.Tensor], object], data: torch.Tensor) -> int:
    """How many matrix products one step runs (each (B,d)x(d,w)-sized in an SAE step): six for
    a standard SAE (encoder and decoder, forward and backward), more for a Gated SAE's second
    pre-activation and auxiliary reconstruction, fewer where a fine-tune freezes the encoder."""
    from torch.profiler import profile

    with profile() as prof:
        step(data)
    return sum(event.count for event in prof.key_averages() if event.key in ("aten::mm", "aten::addmm"))


def _step_trainers(variant: str, sparsity: float, options: tuple, d: int, width: int, batch: int,
                   autocast: bool) -> dict[str, Callable[[torch.Tensor], object]]:
    """sae-lens's ``SAETrainer.step`` and this package's fused step, eager and compiled, each
    on its own SAE built from one spec."""
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    from sae_failures.engine.step import FusedSAETrainer

    acts = ActivationSpec("bench", "blocks.0.hook_resid_post", "random", "train", 2, batch, "float32")
    spec = SAESpec(variant, acts, width, sparsity, batch * LONG_RUN_STEPS, batch_size=batch, autocast=autocast,
                   options=options)
    cfg = SAETrainerConfig(total_training_samples=spec.n_tokens, train_batch_size_samples=batch, lr_end=spec.lr,
                           autocast=autocast)
    base = StandardSAE(StandardSAEConfig(d_in=d, d_sae=width, apply_b_dec_to_input=False))
    trainers = {"sae_lens": lambda sae: SAETrainer(cfg, sae, iter(())),
                "eager": lambda sae: FusedSAETrainer(cfg, sae, compile=False),
                "compiled": lambda sae: FusedSAETrainer(cfg, sae, compile=True)}
    steps = {}
    for name, make in trainers.items():
        sae = build_training_sae(spec, d)
        if variant == "scaled_finetune":
            sae.load_start(base, activation_scale=1.0)
        trainer = make(sae)
        trainer.activation_scaler.scaling_factor = 1.0
        steps[name] = trainer.step
    return steps


def bench_sae_steps(d: int = 576, width: int = 2304, batch: int = 2048, autocast: bool = True,
                    variants: tuple[tuple[str, float, tuple], ...] = STEP_VARIANTS, repeats: int = 3,
                    steps: int = 5) -> pd.DataFrame:
    """Per variant, sae-lens's step and ours (eager and compiled; ``used`` is the one a long
    run takes, ``engine.step.compiles``) as fractions of the same run's matmul rate for the
    step's dtype (bf16 under autocast). Every path is warmed (and compiled) first; then the
    roofline and the steps take turns ``repeats`` times and each keeps its best, so a burst
    of load hurts none alone."""
    from sae_failures.engine.step import compiles

    dtype = torch.bfloat16 if autocast else torch.float32
    data = torch.randn(batch, d)
    paths = {variant: _step_trainers(variant, sparsity, options, d, width, batch, autocast)
             for variant, sparsity, options in variants}
    for trainers in paths.values():
        for step in trainers.values():
            step(data)
            step(data)
    matmuls = {variant: matmuls_per_step(trainers["eager"], data) for variant, trainers in paths.items()}
    best: dict[tuple[str, str], float] = {}
    roofline = 0.0
    for _ in range(repeats):
        # The step's shapes: (B,d)x(d,w) and (B,w)x(w,d), forward and backward.
        roofline = max(roofline, 0.5 * (matmul_flops_per_s(batch, d, width, dtype)
                                        + matmul_flops_per_s(batch, width, d, dtype)))
        for variant, trainers in paths.items():
            for name, step in trainers.items():
                seconds = _best_seconds(lambda step=step: step(data), steps)
                best[variant, name] = min(best.get((variant, name), float("inf")), seconds)
    rows = []
    for variant in paths:
        flops = matmuls[variant] * 2 * batch * d * width
        used = "compiled" if compiles(variant, LONG_RUN_STEPS) else "eager"
        rows.append({"variant": variant, "matmuls": matmuls[variant], "roofline_ms": 1e3 * flops / roofline,
                     **{f"{name}_ms": 1e3 * best[variant, name] for name in ("sae_lens", "eager", "compiled")},
                     "used": used, "ours": flops / best[variant, used] / roofline,
                     "sae_lens": flops / best[variant, "sae_lens"] / roofline,
                     "speedup": best[variant, "sae_lens"] / best[variant, used]})
    return pd.DataFrame(rows)


@torch.no_grad()
def bench_harvest(model_name: str = "smollm2-135m-offline", layer: int = 12, dtype: str = "bfloat16",
                  contexts: int = 32, context_size: int = 128) -> dict[str, float]:
    from sae_failures.engine.model import load_model

    model = load_model(model_name, dtype=dtype)
    tokens = torch.randint(100, model.cfg.d_vocab, (contexts, context_size))
    hook = f"blocks.{layer}.hook_resid_post"
    seconds = _best_seconds(lambda: model.run_with_cache(tokens, names_filter=hook,
                                                         stop_at_layer=layer + 1), 3)
    block_params = sum(p.numel() for b in model.blocks[: layer + 1] for p in b.parameters())
    flops = 2 * block_params * contexts * context_size
    d = model.cfg.d_model
    roofline = matmul_flops_per_s(contexts * context_size, d, model.cfg.d_mlp, getattr(torch, dtype))
    return {"tokens_per_s": contexts * context_size / seconds, "achieved_flops": flops / seconds,
            "roofline_flops": roofline, "fraction_of_roofline": flops / seconds / roofline}


def bench_toy_training(setup: str = "too_narrow", d_sae: int = 5, steps: int = 300) -> dict[str, float]:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    from sae_failures.engine.toy_data import build_dictionary, build_generator
    from sae_failures.engine.toy_training import ToyRun, train_group
    from sae_failures.studies.broken_latents import experiment as bl
    from sae_failures.studies.broken_latents.toy_worlds import get_setup

    runs = [ToyRun(get_setup(setup), arch, d_sae, seed, bl.L1, steps * bl.BATCH_SIZE, bl.LR, bl.BATCH_SIZE)
            for arch in ("untied", "tied") for seed in range(3)]
    start = time.perf_counter()
    train_group(runs, progress=False)
    stacked = len(runs) * steps * bl.BATCH_SIZE / (time.perf_counter() - start)
    sae = runs[0].build()
    trainer = SAETrainer(SAETrainerConfig(total_training_samples=steps * bl.BATCH_SIZE, lr=bl.LR, lr_end=bl.LR,
                                          train_batch_size_samples=bl.BATCH_SIZE), sae, iter(()))
    x = build_generator(get_setup(setup), seed=0).sample(bl.BATCH_SIZE) @ build_dictionary(get_setup(setup), 0).feature_vectors.detach()
    one = bl.BATCH_SIZE / _best_seconds(lambda: trainer.step(x), 20)
    return {"stacked": stacked, "sae_lens_one": one, "speedup": stacked / one}


def bench_streaming(layer: int = 3, batch: int = 2048, steps: int = 128, repeats: int = 2) -> dict[str, float]:
    """Tokens/s training one SAE from a stream of SmolLM2 activations: the package's path
    (``streaming.ActivationStream`` + ``training.train_saes``) against sae-lens's own
    ``LanguageModelSAETrainingRunner`` on the same model, contexts, hook, SAE and tokens, in
    the same process. Both include their norm estimate and forward passes; ours also its b_dec
    mean, sae-lens's its end-of-run evals (disabled here). sae-lens runs twice: with our
    mixing buffer's size (``BUFFER_BATCHES`` training batches, like with like) and with
    ``n_batches_in_buffer=16``, which it multiplies by the context size, not the batch (2k
    rows: one batch, barely mixed, but filled 16 x sooner). After a short untimed warm-up
    run, the three take turns ``repeats`` times and each keeps its best: the first runs in
    a process are slower, whichever path they belong to."""
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAEConfig

    from sae_failures.engine.model import OFFLINE_MODEL, load_model
    from sae_failures.engine.streaming import (
        BUFFER_BATCHES,
        CONTEXTS_PER_FORWARD,
        ActivationStream,
        ContextDataset,
    )
    from sae_failures.engine.training import train_saes

    model = load_model(OFFLINE_MODEL, dtype="bfloat16")
    d, context = model.cfg.d_model, 128

    def ours(n_tokens: int) -> None:
        acts = ActivationSpec(OFFLINE_MODEL, f"blocks.{layer}.hook_resid_post", "brown", "train", context, n_tokens,
                              "bfloat16", stream=True)
        train_saes([SAESpec("standard", acts, 4 * d, 1.0, n_tokens, batch_size=batch, autocast=True)],
                   ActivationStream(model, acts, d))

    def sae_lens(n_tokens: int, n_batches_in_buffer: int) -> None:
        acts = ActivationSpec(OFFLINE_MODEL, f"blocks.{layer}.hook_resid_post", "brown", "train", context, n_tokens,
                              "bfloat16", stream=True)
        cfg = LanguageModelSAERunnerConfig(
            # the same activation scaling as ours (E||x|| = sqrt(d), estimated on 8 batches)
            sae=StandardTrainingSAEConfig(d_in=d, d_sae=4 * d, l1_coefficient=1.0,
                                          normalize_activations="expected_average_only_in"), model_name=OFFLINE_MODEL,
            hook_name=acts.hook, context_size=context, is_dataset_tokenized=True, prepend_bos=False,
            training_tokens=n_tokens, train_batch_size_tokens=batch, store_batch_size_prompts=CONTEXTS_PER_FORWARD,
            n_batches_in_buffer=n_batches_in_buffer, autocast=True, n_batches_for_norm_estimate=8, n_eval_batches=0,
            logger=LoggingConfig(log_to_wandb=False), checkpoint_path=None, output_path=None, verbose=False)
        LanguageModelSAETrainingRunner(cfg, override_model=model, override_dataset=ContextDataset(model, acts)).run()

    tokens = batch * steps
    paths = {"ours": ours, "sae_lens_same_buffer": lambda n: sae_lens(n, BUFFER_BATCHES * batch // context),
             "sae_lens_small_buffer": lambda n: sae_lens(n, 16)}
    ours(batch * 2 * BUFFER_BATCHES)  # warm-up, untimed
    best = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, run in paths.items():
            start = time.perf_counter()
            run(tokens)
            best[name] = max(best[name], tokens / (time.perf_counter() - start))
    return best


def report() -> str:
    lines = ["SAE training step, d 576, width 2304, batch 2048: ms per step, and as a fraction of the "
             "same run's matmul rate for the step's dtype (goal for ours under bf16: >= 80%)"]
    for label, autocast in (("bf16 autocast (smoke, offline)", True), ("fp32 (paper)", False)):
        variants = STEP_VARIANTS if autocast else STEP_VARIANTS[:1]
        table = bench_sae_steps(autocast=autocast, variants=variants)
        lines.append(f"  {label}")
        lines.append(f"  {'variant':<20} {'matmuls':>12} {'sae-lens':>9} {'eager':>7} {'compiled':>9}   "
                     f"{'ours':>8} {'sae-lens':>9} {'speed-up':>9}")
        for r in table.itertuples():
            lines.append(f"  {r.variant:<20} {r.matmuls:>3} {r.roofline_ms:>6.1f}ms {r.sae_lens_ms:>7.1f}ms {r.eager_ms:>5.1f}ms "
                         f"{r.compiled_ms:>7.1f}ms   {r.ours:>8.0%} {r.sae_lens:>9.0%} {r.speedup:>8.2f}x"
                         f"{'  (eager: compiles slower)' if r.used == 'eager' else ''}")
    harvest = bench_harvest()
    lines += ["", f"Activation harvest (SmolLM2-135M bf16, to block 12): {harvest['tokens_per_s']:.0f} tokens/s, "
              f"{harvest['fraction_of_roofline']:.0%} of the bf16 matmul rate", ""]
    for setup, d_sae in (("too_narrow", 5), ("absorption", 4)):
        t = bench_toy_training(setup, d_sae)
        lines.append(f"Toy SAEs, {setup} (6 stacked): {t['stacked'] / 1e6:.1f}M SAE-samples/s; sae-lens SAETrainer, "
                     f"one SAE: {t['sae_lens_one'] / 1e6:.2f}M samples/s ({t['speedup']:.0f}x)")
    stream = bench_streaming()
    lines.append(f"Streamed training (SmolLM2 resid 3, one SAE 2304 wide, bf16, 262k tokens): ours "
                 f"{stream['ours']:.0f} tokens/s; sae-lens LanguageModelSAETrainingRunner, same 32k-row mixing buffer: "
                 f"{stream['sae_lens_same_buffer']:.0f} ({stream['ours'] / stream['sae_lens_same_buffer']:.2f}x), "
                 f"its 2k-row buffer: {stream['sae_lens_small_buffer']:.0f} "
                 f"({stream['ours'] / stream['sae_lens_small_buffer']:.2f}x)")
    return "\n".join(lines)
