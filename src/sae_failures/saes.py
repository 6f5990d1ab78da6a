"""Trained SAEs on demand: ``get_sae(spec)`` loads the cached SAE or trains (or imports) it.

Every SAE is saved in sae-lens format (``cfg.json`` + ``sae_weights.safetensors``) with its
spec in the metadata and its loss history beside it, so ``sae_lens.SAE.load_from_disk``
loads any of them. Snapshots taken while training (``SAESpec.checkpoints``) live in the
entry's ``checkpoints/<tokens>/`` folders. Training itself is ``training.train_sae``;
the cache mechanics are ``cache``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE

from sae_failures.activations import ActivationStore
from sae_failures.cache import (
    CacheCorruptedError,
    check_finite,
    ensure_entry,
    load_sae,
    open_entry,
    read_history,
    write_history,
)
from sae_failures.network import require_repo
from sae_failures.paths import data_dir
from sae_failures.specs import RELEASE_PREFIX, SAESpec
from sae_failures.training import activation_scale, train_sae

CHECKPOINT_DIR = "checkpoints"
LEGACY_MARKER = "cfg.json"  # what marked a complete SAE before manifests


def get_sae(spec: SAESpec, store: ActivationStore | None = None, device: str = "cpu") -> SAE:
    """The inference SAE for ``spec``: from the cache, else trained (or imported) on ``device``.

    A cached SAE is verified against its checksums first; a corrupt one is moved aside and
    retrained. Training refuses to repeat the stored activations more than ``spec.epochs`` times.
    """
    if store is not None and store.spec != spec.activations:
        raise ValueError("The store does not hold the activations named in the spec.")

    def build(staged: Path) -> None:
        source = store or ActivationStore(spec.activations)
        if spec.is_release:
            import_release(spec, source, staged, device)
            return
        if spec.n_tokens > spec.epochs * source.n_tokens:
            raise ValueError(
                f"{spec.path().name} trains on {spec.n_tokens:,} tokens but the store holds "
                f"{source.n_tokens:,}; set epochs={-(-spec.n_tokens // source.n_tokens)} in the spec to "
                "repeat the data on purpose, or ask for fewer tokens.")
        start = get_start(spec) if spec.init_from else None

        def save_checkpoint(tokens: int, sae: Any) -> None:
            sae.save_inference_model(staged / CHECKPOINT_DIR / f"{tokens:012d}")

        sae, history = train_sae(spec, source, device, on_checkpoint=save_checkpoint, start=start)
        check_finite(sae.state_dict(), f"training {spec.path().name} diverged: the trained SAE")
        sae.cfg.metadata.sae_failures_spec = spec.to_dict()
        sae.save_inference_model(staged)
        write_history(staged, history)

    return ensure_entry(spec.path(), build, lambda path: load_sae(path, device), LEGACY_MARKER)


def get_start(spec: SAESpec) -> SAE:
    """The cached SAE a fine-tune starts from (``spec.init_from``), verified."""
    path = data_dir() / spec.init_from
    if not path.exists():
        raise FileNotFoundError(f"{spec.path().name} starts from {path}, which is not cached; "
                                "get_sae its own spec first.")
    return open_entry(path, load_sae, LEGACY_MARKER)


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
    final = open_entry(spec.path(), lambda path: load_sae(path, device), LEGACY_MARKER)  # verifies every file
    folder = spec.path() / CHECKPOINT_DIR
    saved = {int(p.name): load_sae(p, device) for p in sorted(folder.iterdir())} if folder.exists() else {}
    if len(saved) != len(spec.checkpoint_steps()):
        raise CacheCorruptedError(f"{folder} holds {len(saved)} checkpoints, expected "
                                  f"{len(spec.checkpoint_steps())}. Delete {spec.path()} and rerun.")
    return {**saved, spec.n_steps * spec.batch_size: final}


def training_history(spec: SAESpec) -> list[dict[str, float]]:
    """Loss history recorded while ``spec`` was trained (empty if not trained here)."""
    return read_history(spec.path())
