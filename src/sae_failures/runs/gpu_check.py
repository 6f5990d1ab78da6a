"""``make gpu-check``: what a GPU box will do with the paper profile, measured in minutes.

Before 10-100 GPU-hours go into ``make figures PROFILE=paper``, this loads what that run
loads (the hub's model, an sae-lens release and the OpenWebText stream), trains one SAE of
the paper's largest size at its commonest site from the stream, and prints the measured
tokens/s and memory next to ``make estimate``'s counts. Each notebook's projected hours are
its counted FLOPs divided by the FLOP rate this training reached, so the projection carries
the box's real speed, forward passes and all.

``make test`` runs it on the CPU against the rehearsal's stand-ins (``standins=True``) at a
size that takes seconds: the numbers mean nothing there; that every step runs is the test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pandas as pd
import torch

from sae_failures.engine.paths import data_dir
from sae_failures.profiles import (
    BASELINE_WIDTH_FACTOR,
    OVERRIDES_ENV,
    Profile,
    get_profile,
    resolve,
    scaled,
)
from sae_failures.runs.estimates import Training, notebook_costs

PROFILE = "paper"
RELEASE = "pythia-70m-deduped-res-sm"  # notebook 01's optional start; its SAE for the checked site
CHECK_TOKENS = 2**24  # about 17M tokens: a few minutes of one paper-sized SAE on an H100-class GPU
SCALES = (1.0, 0.1)


@dataclasses.dataclass(frozen=True)
class Measured:
    """One streamed training of the checked SAE: what it cost on this box."""

    device: str
    hook: str
    width: int
    tokens: int
    seconds: float
    peak_memory_gb: float | None  # GPU memory at its peak (None on a CPU)
    flops: float  # counted as ``make estimate`` counts them (SAE step and forward passes)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds

    @property
    def flop_rate(self) -> float:
        return self.flops / self.seconds


def checked_width(profile: Profile, d: int) -> int:
    """The widest SAE the paper profile trains on a residual stream of width ``d``: notebook 04's
    baseline (1.5 x the Gated width), where nearly all of its GPU-hours go."""
    return round(BASELINE_WIDTH_FACTOR * resolve(profile.gated.gated_width, d))


def projected_hours(measured: Measured, profile: Profile) -> pd.DataFrame:
    """Each notebook's hours at ``SCALES``: its counted FLOPs at the rate ``measured`` reached
    ("here"), next to ``make estimate``'s at its assumed rate; a last row sums them."""
    rows = {}
    for scale in SCALES:
        costs = notebook_costs(scaled(profile, scale))
        rows[f"SCALE={scale:g}, here"] = (costs["SAE FLOPs"] + costs["forward FLOPs"]) / measured.flop_rate / 3600
        rows[f"SCALE={scale:g}, estimate"] = costs["GPU-hours (estimate)"]
    hours = pd.DataFrame(rows)
    hours.loc["all"] = hours.sum()
    return hours


def measure(profile: Profile, tokens: int) -> Measured:
    """Load the model, the release and the stream, then train the checked SAE on ``tokens``."""
    from sae_failures.engine.saes import get_sae, load_release
    from sae_failures.engine.sites import prepare_site, resid_site
    from sae_failures.engine.specs import standard_spec

    site = resid_site(profile)
    print(f"gpu-check: loading {profile.model} and streaming {profile.corpus} for {site.hook} ...", flush=True)
    data = prepare_site(profile, site)
    release = load_release(RELEASE, site.hook, device=profile.device)
    print(f"gpu-check: sae-lens release {RELEASE} loaded ({release.cfg.d_sae} latents at {site.hook})", flush=True)
    d = data.model.cfg.d_model
    spec = dataclasses.replace(standard_spec(data.train.spec, tokens, profile.sae_batch_size, d,
                                             autocast=profile.sae_autocast), width=checked_width(profile, d))
    print(f"gpu-check: training one {spec.width}-wide SAE on {spec.n_tokens:,} streamed tokens "
          f"(batch {spec.batch_size}) ...", flush=True)
    if profile.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(profile.device)
    start = time.perf_counter()
    get_sae(spec, data.train, device=profile.device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(profile.device) / 2**30 if profile.device.startswith("cuda") else None
    counted = Training(profile.model, int(site.hook.split(".")[1]), d, (spec.width,), spec.n_tokens)
    return Measured(profile.device, site.hook, spec.width, spec.n_tokens, seconds, peak,
                    counted.sae_flops + counted.forward_flops)


@contextmanager
def scratch_data(work: Path) -> Iterator[None]:
    """Caches under ``work``, empty, so the check trains afresh and leaves no SAE behind."""
    shutil.rmtree(work, ignore_errors=True)
    try:
        with mock.patch.dict(os.environ, {"SAE_FAILURES_DATA": str(work)}):
            yield
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(measured: Measured, profile: Profile) -> str:
    memory = f"{measured.peak_memory_gb:.1f} GB at its peak" if measured.peak_memory_gb is not None else "n/a (CPU)"
    hours = projected_hours(measured, profile)
    return "\n".join([
        f"device {measured.device}; SAE {measured.width} wide at {measured.hook}, {measured.tokens:,} tokens "
        f"in {measured.seconds:.0f} s",
        f"  {measured.tokens_per_second:,.0f} tokens/s; {measured.flop_rate / 1e12:.2f} TFLOP/s counted "
        f"(make estimate assumes 25); GPU memory {memory}",
        "Projected hours per notebook (05 left out, as make figures PROFILE=paper leaves it unless named):",
        hours.to_string(float_format=lambda h: f"{h:.2f}"),
    ])


def gpu_check(tokens: int = CHECK_TOKENS, device: str | None = None) -> str:
    """Measure on this box and report."""
    from sae_failures.engine.network import require_network
    from sae_failures.runs.notebooks import hub_needs

    profile = get_profile(PROFILE, device)
    missing = hub_needs(profile)
    if missing:
        require_network(f"make gpu-check ({'; '.join(missing)})")
    if not profile.device.startswith("cuda"):
        print(f"gpu-check: no CUDA device here ({profile.device}); measuring anyway.", flush=True)
    with scratch_data(data_dir() / "gpu-check"):
        return report(measure(profile, min(tokens, profile.train_tokens)), profile)


def gpu_check_on_standins() -> str:
    """``gpu_check`` in a process of its own against the rehearsal's stand-ins and sizes: the
    Hugging Face libraries read where their cache is when they are first imported."""
    from sae_failures.engine import standins
    from sae_failures.runs.rehearsal import overrides

    env = {**os.environ, **standins.environment(standins.standins_dir()), OVERRIDES_ENV: json.dumps(overrides())}
    done = subprocess.run([sys.executable, "-m", "sae_failures.cli", "gpu-check"], env=env, text=True,
                          stdout=subprocess.PIPE)
    if done.returncode != 0:
        raise RuntimeError(f"gpu-check on the stand-ins failed (exit {done.returncode}); its output is above.")
    return done.stdout
