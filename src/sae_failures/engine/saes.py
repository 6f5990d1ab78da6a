"""Trained SAEs on demand: ``get_saes(specs)`` loads the cached SAEs or trains (or imports) them.

The one way to get an SAE, language-model (``specs.SAESpec``) and toy (``toy_training.ToyRun``)
alike: each spec names its cache entry (``spec.path()``), every entry is written by
``_write_trained`` and opened through ``cache.ensure_sae`` (checksums verified, entries older
than manifests adopted by one rule).

Every SAE is saved in sae-lens format (``cfg.json`` + ``sae_weights.safetensors``) with its
spec in the metadata and its loss history beside it, so ``sae_lens.SAE.load_from_disk``
loads any of them. Snapshots taken while training (``SAESpec.checkpoints``) live in the
entry's ``checkpoints/<tokens>/`` folders. ``get_saes`` trains the missing SAEs of a
notebook cell together, one pass over the data for all that draw the same batches.
Training itself is ``training.train_saes``; the cache mechanics are ``cache``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from sae_lens import SAE

from sae_failures.engine import distributed
from sae_failures.engine.cache import (
    CacheCorruptedError,
    check_finite,
    config_key,
    ensure_sae,
    entry_lock,
    load_sae,
    open_sae,
    read_history,
    write_history,
)
from sae_failures.engine.network import require_repo
from sae_failures.engine.paths import data_dir
from sae_failures.engine.specs import RELEASE_PREFIX, SAESpec
from sae_failures.engine.toy_training import ToyRun, toy_groups, train_group
from sae_failures.engine.training import BatchSource, activation_scale, train_sae, train_saes

if TYPE_CHECKING:
    from sae_failures.engine.activations import ActivationStore

CHECKPOINT_DIR = "checkpoints"
TRAINING_RUNS = "training_runs"  # data/training_runs/<group>: a group's snapshots and resume state while it trains
RESUME_CHECKPOINTS = 20  # resume states a streamed group saves over its run
K = TypeVar("K")
Spec = SAESpec | ToyRun


def get_sae(spec: SAESpec, store: BatchSource | None = None, device: str = "cpu") -> SAE:
    """The inference SAE for ``spec``: from the cache, else trained (or imported) on ``device``.

    A cached SAE is verified against its checksums first; a corrupt one is moved aside and
    retrained. Training refuses to repeat the stored activations more than ``spec.epochs`` times.
    """
    return get_saes({spec.path().name: spec}, store, device)[spec.path().name]


def get_saes(specs: Mapping[K, Spec], stores: BatchSource | Sequence[BatchSource] | None = None,
             device: str = "cpu") -> dict[K, SAE]:
    """The SAE of every spec, training the missing ones together. Toy runs of one shape train
    stacked (``toy_training``). Language-model SAEs that draw the same
    batches (activations, batch size, seed) share one pass over the data, one forward pass
    per batch when their store is a stream. ``stores``: the store, or stores, holding the
    specs' activations (each spec takes the one whose ``spec`` matches; default: the stored
    ones). Fresh SAEs train before the fine-tunes that may start from them. Each
    language-model SAE equals the one ``get_sae`` alone would train (a toy SAE, up to the float
    rounding of the stacked computation). Under torchrun each rank trains its share of the
    groups (``distributed``)."""
    toys = [s for s in dict.fromkeys(specs.values()) if isinstance(s, ToyRun)]
    for group in toy_groups([run for run in toys if not run.path().exists()]):
        _train_toy_group(group)
    lm = [s for s in dict.fromkeys(specs.values()) if not isinstance(s, ToyRun)]
    by_spec = {s.spec: s for s in ([] if stores is None else [stores] if hasattr(stores, "spec") else stores)}
    if stores is not None and any(s.activations not in by_spec for s in lm):
        raise ValueError("The store does not hold the activations named in the spec.")
    if lm:
        _train_missing(lm, by_spec, device)
    return {key: _cached_toy(spec) if isinstance(spec, ToyRun) else
            _cached_sae(spec, by_spec.get(spec.activations), device) for key, spec in specs.items()}


def _train_missing(specs: list[SAESpec], by_spec: dict, device: str) -> None:
    """Train the language-model SAEs among ``specs`` that are not cached, in groups that share batches."""
    from sae_failures.engine.activations import ActivationStore

    distributed.barrier()  # under torchrun every rank must see the cache as it was before anyone trains
    missing = [s for s in specs if not s.is_release and not s.path().exists()]
    distributed.barrier()
    for finetunes in (False, True):
        groups: dict[tuple, list[SAESpec]] = {}
        for spec in missing:
            if bool(spec.init_from) == finetunes:
                groups.setdefault((spec.activations, spec.batch_size, spec.seed), []).append(spec)
        ordered = sorted(groups.values(), key=lambda group: group[0].key())  # the same order on every rank
        # under torchrun a group is split so that every rank has work (each part streams on its own)
        ways = distributed.world_size()
        parts = [group[i::min(ways, len(group))] for group in ordered for i in range(min(ways, len(group)))]
        for group in distributed.share(parts):  # all of them in one process
            _train_group(group, by_spec.get(group[0].activations) or ActivationStore(group[0].activations), device)
        distributed.barrier()  # the other ranks' groups are cached from here on


def _check_epochs(spec: SAESpec, source: BatchSource) -> None:
    """Stored activations repeat only as often as the spec says; a stream runs on (its corpus
    restarts only at its end)."""
    if not spec.activations.stream and spec.n_tokens > spec.epochs * source.n_tokens:
        raise ValueError(
            f"{spec.path().name} trains on {spec.n_tokens:,} tokens but the store holds "
            f"{source.n_tokens:,}; set epochs={-(-spec.n_tokens // source.n_tokens)} in the spec to "
            "repeat the data on purpose, or ask for fewer tokens.")


def _write_trained(staged: Path, spec: Spec, sae: Any, history: list[dict[str, float]]) -> None:
    """The one writer of a trained SAE's entry: finite weights, its spec, its loss history."""
    check_finite(sae.state_dict(), f"training {spec.path().name} diverged: the trained SAE")
    sae.cfg.metadata.sae_failures_spec = spec.to_dict()
    sae.save_inference_model(staged)
    write_history(staged, history)


def _train_group(group: list[SAESpec], source: BatchSource, device: str) -> None:
    """Train ``group`` together and cache each SAE. A stream saves the group's state every
    ``1 / RESUME_CHECKPOINTS`` of the run under ``data/training_runs/``, so a killed run goes
    on from there; the folder is removed once every SAE is cached."""
    for spec in group:
        _check_epochs(spec, source)
    work = data_dir() / TRAINING_RUNS / config_key({"specs": sorted(s.key() for s in group)})
    with entry_lock(work):
        still = [s for s in group if not s.path().exists()]  # another run may have cached some meanwhile
        if not still:
            return
        if len(still) < len(group):  # a saved state holds the whole group, in its order: not this one's
            shutil.rmtree(work, ignore_errors=True)
        group = still
        starts = [get_start(s) for s in group] if group[0].init_from else None
        snapshots = work / "snapshots"

        def save_checkpoint(index: int, tokens: int, sae: Any) -> None:
            sae.save_inference_model(snapshots / str(index) / f"{tokens:012d}")

        resumable = getattr(source, "resumable", False)
        steps = max(s.n_steps for s in group)
        trained = train_saes(group, source, device, on_checkpoint=save_checkpoint, starts=starts,
                             resume=work if resumable else None,
                             resume_every=max(1, steps // RESUME_CHECKPOINTS) if resumable else 0)
        for index, (spec, (sae, history)) in enumerate(zip(group, trained, strict=True)):
            def build(staged: Path, spec: SAESpec = spec, sae: Any = sae, history: list = history,
                      index: int = index) -> None:
                _write_trained(staged, spec, sae, history)
                if (snapshots / str(index)).exists():
                    shutil.copytree(snapshots / str(index), staged / CHECKPOINT_DIR)

            ensure_sae(spec.path(), build, device)
        shutil.rmtree(work, ignore_errors=True)


def _train_toy_group(group: list[ToyRun]) -> None:
    """Train same-shaped toy runs stacked and cache each, under one lock for the group, so a
    second run of the notebook waits for them instead of training them again."""
    work = data_dir() / TRAINING_RUNS / config_key({"toys": sorted(r.key() for r in group)})
    with entry_lock(work):
        still = [r for r in group if not r.path().exists()]  # another run may have cached some meanwhile
        if not still:
            return
        begin = time.perf_counter()
        saes, histories = train_group(still)
        seconds = (time.perf_counter() - begin) / len(still)
        for run, sae, history in zip(still, saes, histories, strict=True):
            sae.cfg.metadata.training_seconds = seconds

            def build(staged: Path, run: ToyRun = run, sae: Any = sae, history: list = history) -> None:
                _write_trained(staged, run, sae, history)

            ensure_sae(run.path(), build)


def _cached_toy(run: ToyRun) -> SAE:
    """The cached toy SAE; trained alone if it is found corrupt."""
    def build(staged: Path) -> None:
        (sae,), (history,) = train_group([run])
        _write_trained(staged, run, sae, history)

    return ensure_sae(run.path(), build)


def _cached_sae(spec: SAESpec, store: BatchSource | None, device: str) -> SAE:
    """The cached SAE; imported (a release) or trained alone if absent or found corrupt."""
    def build(staged: Path) -> None:
        from sae_failures.engine.activations import ActivationStore

        source = store or ActivationStore(spec.activations)
        if spec.is_release:
            import_release(spec, source, staged, device)
            return
        _check_epochs(spec, source)

        def save_checkpoint(tokens: int, sae: Any) -> None:
            sae.save_inference_model(staged / CHECKPOINT_DIR / f"{tokens:012d}")

        sae, history = train_sae(spec, source, device, on_checkpoint=save_checkpoint,
                                 start=get_start(spec) if spec.init_from else None)
        _write_trained(staged, spec, sae, history)

    return ensure_sae(spec.path(), build, device)


def get_start(spec: SAESpec) -> SAE:
    """The cached SAE a fine-tune starts from (``spec.init_from``), verified."""
    path = data_dir() / spec.init_from
    if not path.exists():
        raise FileNotFoundError(f"{spec.path().name} starts from {path}, which is not cached; "
                                "get_sae its own spec first.")
    return open_sae(path)


@torch.no_grad()
def import_release(spec: SAESpec, store: ActivationStore, staged: Path, device: str = "cpu") -> None:
    """Download a release SAE into ``staged`` in the form trained SAEs have.

    Decoder rows are folded to unit norm (sae-lens ``fold_W_dec_norm``), then expressed in
    the scaled convention: latents multiplied by the store's activation scale a and rows
    divided by it, as if the SAE had been trained here. The function is unchanged.
    """
    release, sae_id = spec.init_from.removeprefix(RELEASE_PREFIX).split("/", 1)
    sae = load_release(release, sae_id, device)
    if sae.cfg.architecture() != "standard" or sae.cfg.d_sae != spec.width:
        raise ValueError(f"{release}/{sae_id} is a {sae.cfg.architecture()} SAE of width "
                         f"{sae.cfg.d_sae}; the spec expects a standard SAE of width {spec.width}.")
    if sae.cfg.apply_b_dec_to_input != dict(spec.options)["apply_b_dec_to_input"]:
        raise ValueError(f"{release}/{sae_id} has apply_b_dec_to_input="
                         f"{sae.cfg.apply_b_dec_to_input}; set the spec's option to match.")
    sae.fold_W_dec_norm()
    scale = activation_scale(store.d, store.batches(spec.batch_size, seed=spec.seed))
    sae.W_enc.mul_(scale)
    sae.b_enc.mul_(scale)
    sae.W_dec.div_(scale)
    sae.cfg.metadata.activation_scaling_factor = scale
    sae.cfg.metadata.sae_failures_spec = spec.to_dict()
    sae.save_model(staged)


def _require_release(release: str, sae_id: str) -> None:
    from sae_lens.loading.pretrained_saes_directory import get_repo_id_and_folder_name

    require_repo(get_repo_id_and_folder_name(release, sae_id)[0], f"The sae-lens release {release!r}")


def load_release(release: str, sae_id: str, device: str = "cpu") -> SAE:
    """A sae-lens pretrained SAE, from the local Hugging Face cache or else the hub."""
    _require_release(release, sae_id)
    return SAE.from_pretrained(release, sae_id, device=device)


def release_width(release: str, sae_id: str) -> int:
    """The dictionary size of a sae-lens pretrained SAE, from its config alone."""
    from sae_lens.loading.pretrained_sae_loaders import load_sae_config_from_huggingface

    _require_release(release, sae_id)
    return int(load_sae_config_from_huggingface(release, sae_id)["d_sae"])


def load_checkpoints(spec: SAESpec, device: str = "cpu") -> dict[int, SAE]:
    """The snapshots saved while ``spec`` trained, by tokens seen, the final SAE included."""
    if not spec.checkpoint_steps():
        raise ValueError(f"{spec.path().name} was specified without checkpoints (checkpoints=0).")
    final = open_sae(spec.path(), device)  # verifies every file
    folder = spec.path() / CHECKPOINT_DIR
    saved = {int(p.name): load_sae(p, device) for p in sorted(folder.iterdir())} if folder.exists() else {}
    if len(saved) != len(spec.checkpoint_steps()):
        raise CacheCorruptedError(f"{folder} holds {len(saved)} checkpoints, expected "
                                  f"{len(spec.checkpoint_steps())}. Delete {spec.path()} and rerun.")
    return {**saved, spec.n_steps * spec.batch_size: final}


def training_history(spec: Spec) -> list[dict[str, float]]:
    """Loss history recorded while ``spec`` was trained (empty if not trained here)."""
    return read_history(spec.path())
