"""``make rehearse``: the paper profile's notebooks end to end, on this machine, against stand-ins.

The paper tier needs a GPU and the hub. The rehearsal runs its branches anyway, through
the same notebooks and package, with nothing changed but the environment:

- the hub's assets come from ``standins`` (random models with the real configs, a Brown
  tokenizer, stand-in sae-lens releases, a parquet corpus) through ``HF_HOME``,
  ``HF_HUB_OFFLINE=1`` and ``$SAE_FAILURES_OPENWEBTEXT``;
- the sizes are smoke's (held-out and CE token counts, grids; one point per alignment sweep,
  layers 0 and 3 of notebook 01's six; calibration probes of 4 batches), SAEs trained on 8
  batches of 256 rows and dictionaries of 2 x d, through
  ``$SAE_FAILURES_OVERRIDES``: the paper's models, hooks, layers and code paths at a size
  two CPU cores run in minutes;
- caches, figures and records live under ``data/rehearsal/<notebooks>/`` (``$SAE_FAILURES_DATA``,
  ``$SAE_FAILURES_FIGURES``, ``$SAE_FAILURES_RECORDS``), emptied first, so everything trains afresh and nothing a random
  model produced can meet a real run's cache; two rehearsals of different notebooks can run
  side by side (``make test`` does).

No notebook or module knows it is rehearsed. What it measures is meaningless (random
models); that every cell runs, on the paper branch, is what it shows.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from sae_failures.engine import standins
from sae_failures.engine.cache import verify_manifest
from sae_failures.engine.paths import data_dir
from sae_failures.profiles import CALIBRATION_REFERENCE, OVERRIDES_ENV, PROFILES, TimesD
from sae_failures.runs.notebooks import run

PROFILE = "paper"
NOTEBOOKS = ("00", "01", "03", "04")
RELEASE_RUN = {"start_from_release": "pythia-70m-deduped-res-sm"}  # notebook 01's second paper branch
WIDTH = TimesD(2)
# Batches each rehearsed SAE trains on: enough for every snapshot, warm-up and resume point
# (smoke trains on 23); the streams' forward passes, at fp32 on one core, are most of the time.
TRAIN_BATCHES = 8
# Rows per SAE batch: a quarter of smoke's, so that a stream's norm estimate and b_dec start
# (``training``: 16 and at most ``TRAIN_BATCHES`` batches) need one forward pass of the model.
BATCH = 256


def overrides() -> dict:
    """The paper profile at smoke's sizes, with 2 x d dictionaries and every SAE trained on
    ``TRAIN_BATCHES`` batches of ``BATCH``, minus releases not stood in."""
    smoke, paper = PROFILES["smoke"], PROFILES["paper"]
    tokens = TRAIN_BATCHES * BATCH
    return {
        "train_tokens": tokens, "eval_tokens": smoke.eval_tokens, "ce_tokens": smoke.ce_tokens,
        "sae_batch_size": BATCH,
        "suppression.toy_p": list(smoke.suppression.toy_p), "suppression.toy_m": list(smoke.suppression.toy_m),
        "suppression.finetune_tokens": min(smoke.suppression.finetune_tokens, tokens),
        "suppression.finetune_batch": BATCH, "suppression.frequency_tokens": tokens,
        "suppression.train_tokens": tokens,
        "suppression.layers": [0, paper.default_layer],  # the first layer and the shared one, of 0-5
        "alignment.width": WIDTH.of(768), "alignment.sweep_widths": [WIDTH.of(768), 2 * WIDTH.of(768)],
        "alignment.sweep_tokens": tokens, "alignment.checkpoints": smoke.alignment.checkpoints,
        "alignment.toy_seeds": smoke.alignment.toy_seeds, "alignment.topk_ks": list(smoke.alignment.topk_ks),
        "alignment.sweep_l1": {v: [CALIBRATION_REFERENCE[v]] for v in paper.alignment.sweep_l1},
        "alignment.releases": {r: s for r, s in paper.alignment.releases.items() if r not in standins.NOT_STOOD_IN},
        "gated.gated_width": 1024, "gated.sweep_tokens": tokens,
        "gated.baseline_l1": list(smoke.gated.baseline_l1[::2]), "gated.gated_l1": list(smoke.gated.gated_l1[::2]),
        "gated.rescale_shift_tokens": min(smoke.gated.rescale_shift_tokens, tokens),
        "gated.spread_seeds": smoke.gated.spread_seeds, "gated.ce_max_factor": smoke.gated.ce_max_factor,
        "calibration.tokens": 4 * BATCH, "calibration.probes": 2,
    }


def rehearse(notebooks: Sequence[str] = NOTEBOOKS) -> Path:
    """Run every paper branch of ``notebooks`` (of 00, 01, 03 and 04; 01 also from a release);
    raise on the first failure."""
    unknown = [nb for nb in notebooks if nb not in NOTEBOOKS]
    if unknown or not notebooks:
        raise ValueError(f"Cannot rehearse {unknown or 'no notebook'}: the rehearsed notebooks are "
                         f"{', '.join(NOTEBOOKS)}.")
    notebooks = [nb for nb in NOTEBOOKS if nb in notebooks]
    root = standins.standins_dir()  # built under the normal data folder, once
    work = data_dir() / "rehearsal" / "-".join(notebooks)
    shutil.rmtree(work, ignore_errors=True)
    for release, why in standins.NOT_STOOD_IN.items():
        print(f"rehearsal: skipping the release {release}: {why}", flush=True)
    os.environ.update({**standins.environment(root), OVERRIDES_ENV: json.dumps(overrides()),
                       "SAE_FAILURES_DATA": str(work / "data"), "SAE_FAILURES_FIGURES": str(work / "figures"),
                       "SAE_FAILURES_RECORDS": str(work / "results")})
    run(PROFILE, notebooks)
    if "01" in notebooks:  # the release branch once, at the shared layer: its other layers are the same code
        os.environ["SAE_FAILURES_FIGURES"] = str(work / "figures-from-release")
        os.environ[OVERRIDES_ENV] = json.dumps({**overrides(), "suppression.layers": [PROFILES[PROFILE].default_layer]})
        run(PROFILE, ["01"], params=RELEASE_RUN)
    changed = verify_manifest(root)
    if changed is not None:
        raise RuntimeError(f"The rehearsal wrote into the stand-ins ({changed}): the next run would rebuild them.")
    return work
