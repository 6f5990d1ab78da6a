"""The cache never serves a wrong number: checksums, completeness, locks, quarantine and rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sae_failures.engine.activations import ActivationStore, harvest
from sae_failures.engine.cache import (
    MANIFEST,
    CacheCorruptedError,
    ensure_entry,
    open_entry,
    verify_manifest,
    write_manifest,
)
from sae_failures.engine.paths import atomic_path, data_dir
from sae_failures.engine.saes import get_sae
from sae_failures.engine.specs import ActivationSpec, SAESpec


def small_spec(store, **kw):
    fields = {"width": 8, "sparsity": 0.1, "n_tokens": 2048, "lr": 3e-2, "batch_size": 256, **kw}
    return SAESpec("standard_unit_norm", store.spec, **fields)


def overwrite_middle(path, n_bytes=4096):
    """Random bytes over the middle of a file: size and header (safetensors / npy) intact."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    data[start:start + n_bytes] = np.random.default_rng(0).bytes(min(n_bytes, len(data) - start))
    path.write_bytes(bytes(data))


def corrupt_copies():
    root = data_dir() / "corrupt"
    return sorted(p for p in root.rglob("*") if p.is_dir() and p.parent.name != "corrupt") if root.exists() else []


def test_corrupt_tensor_bytes_are_detected_moved_aside_and_retrained_to_the_same_sae(sparse_store, capsys):
    store, _ = sparse_store
    spec = small_spec(store)
    get_sae(spec, store)
    weights = spec.path() / "sae_weights.safetensors"
    clean = weights.read_bytes()
    overwrite_middle(weights)
    sae = get_sae(spec, store)
    assert "does not match its checksum" in capsys.readouterr().err
    assert weights.read_bytes() == clean  # retrained, deterministically, to the same weights
    assert torch.isfinite(sae.W_dec).all()
    moved = list((data_dir() / "corrupt").rglob("sae_weights.safetensors"))
    assert len(moved) == 1 and moved[0].read_bytes() != clean  # kept for inspection, not deleted


def test_a_deleted_file_makes_the_entry_rebuild(sparse_store, capsys):
    store, _ = sparse_store
    spec = small_spec(store)
    get_sae(spec, store)
    (spec.path() / "training_history.json").unlink()
    get_sae(spec, store)
    assert "training_history.json is missing" in capsys.readouterr().err
    assert (spec.path() / "training_history.json").exists()


def test_a_folder_without_manifest_is_an_interrupted_write_never_a_result(tmp_data):
    path = data_dir() / "entry"
    path.mkdir(parents=True)
    (path / "value.txt").write_text("half")
    built = ensure_entry(path, lambda staged: (staged / "value.txt").write_text("whole"),
                         lambda p: (p / "value.txt").read_text())
    assert built == "whole" and (path / MANIFEST).exists()


def test_entries_made_before_manifests_are_adopted_when_they_load(tmp_data):
    path = data_dir() / "legacy"
    path.mkdir(parents=True)
    (path / "cfg.json").write_text("{}")
    assert open_entry(path, lambda p: "loaded", legacy_marker="cfg.json") == "loaded"
    assert verify_manifest(path) is None  # the manifest was written on adoption


def test_non_finite_weights_are_not_served(sparse_store):
    store, _ = sparse_store
    spec = small_spec(store)
    sae = get_sae(spec, store)
    with torch.no_grad():
        sae.W_dec[0, 0] = float("nan")
    sae.save_model(spec.path())
    write_manifest(spec.path())  # checksums match: only the finiteness check can catch it
    from sae_failures.engine.saes import load_sae
    with pytest.raises(CacheCorruptedError, match="W_dec holds non-finite values"):
        open_entry(spec.path(), load_sae)


def test_corrupt_activations_of_the_right_size_are_harvested_again(offline_model, tmp_data, capsys):
    spec = ActivationSpec("smollm2-135m-offline", "blocks.1.hook_resid_post", "brown", "heldout", 32, 100, "float32")
    store = harvest(offline_model, [spec], batch_contexts=4)[0]
    acts = spec.path() / "acts.npy"
    clean = acts.read_bytes()
    overwrite_middle(acts, 1024)
    with pytest.raises(CacheCorruptedError, match=r"acts\.npy does not match its checksum"):
        ActivationStore(spec)  # opened directly, it refuses
    store = harvest(offline_model, [spec], batch_contexts=4)[0]  # through harvest, it rebuilds
    assert "moved it to" in capsys.readouterr().err
    assert acts.read_bytes() == clean and store.tensor().shape == (100, 576)


def test_a_killed_harvest_leaves_no_staging_folder_after_the_next_run(offline_model, tmp_data):
    spec = ActivationSpec("smollm2-135m-offline", "blocks.1.hook_resid_post", "brown", "heldout", 32, 50, "float32")
    dead = spec.path().parent / f".{spec.path().name}.abc123.tmp"
    (dead / spec.path().name).mkdir(parents=True)  # what a killed run leaves behind
    harvest(offline_model, [spec], batch_contexts=4)
    assert not dead.exists() and (spec.path() / MANIFEST).exists()


def test_two_processes_asking_for_one_entry_build_it_once(tmp_data):
    script = textwrap.dedent("""
        import hashlib, sys, time
        from pathlib import Path
        from sae_failures.engine.cache import ensure_entry
        from sae_failures.engine.paths import data_dir
        log = Path(sys.argv[1])
        (log.parent / f"started.{sys.argv[2]}").touch()
        def build(staged):
            with open(log, "a") as f:
                f.write("built\\n")
            while len(list(log.parent.glob("started.*"))) < 2:  # the other may still be importing ...
                time.sleep(0.05)
            time.sleep(1.0)  # ... and is then at the lock within this second
            (staged / "value.bin").write_bytes(bytes(range(256)) * 64)
        value = ensure_entry(data_dir() / "shared", build, lambda p: (p / "value.bin").read_bytes())
        print(len(value), hashlib.sha256(value).hexdigest())
    """)
    log = tmp_data / "log.txt"
    env = {**os.environ, "SAE_FAILURES_DATA": str(data_dir())}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(log), str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert log.read_text() == "built\n"  # one computed ...
    assert outs[0][0] == outs[1][0]  # ... both got the same bytes
    assert any("waiting for another run" in err for _, err in outs)  # ... and the other waited


def test_atomic_path_replaces_a_folder_without_deleting_it_first(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as staged:
        staged.mkdir()
        (staged / "new.txt").write_text("new")
        assert (target / "old.txt").read_text() == "old"  # still whole while the new one is written
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]  # no staging left


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_tokens": 0}, "less than one batch"),
    ({"n_tokens": -5}, "less than one batch"),
    ({"n_tokens": 100}, "less than one batch of 256"),
    ({"width": 0}, "width must be at least 1"),
    ({"sparsity": -1.0}, "must be 0 or more"),
    ({"variant": "relu"}, "Unknown SAE variant 'relu'"),
    ({"variant": "topk", "sparsity": 0}, "whole number from 1 to the width 8"),
    ({"variant": "topk", "sparsity": 2.5}, "whole number"),
    ({"lr": 0.0}, "lr must be positive"),
])
def test_bad_sae_specs_fail_at_construction_and_write_nothing(sparse_store, kwargs, message):
    store, _ = sparse_store
    before = sorted(data_dir().rglob("*"))
    fields = {"variant": "standard_unit_norm", "width": 8, "sparsity": 0.1, "n_tokens": 2048, "batch_size": 256, **kwargs}
    with pytest.raises(ValueError, match=message):
        SAESpec(activations=store.spec, **fields)
    assert sorted(data_dir().rglob("*")) == before


@pytest.mark.parametrize(("n_tokens", "split", "message"), [
    (0, "train", "n_tokens must be a positive"), (-100, "train", "n_tokens must be a positive"),
    (10, "test", "Unknown split 'test'")])
def test_bad_activation_specs_fail_before_a_harvest_writes_anything(tmp_data, n_tokens, split, message):
    with pytest.raises(ValueError, match=message):
        ActivationSpec("smollm2-135m-offline", "blocks.1.hook_resid_post", "brown", split, 32, n_tokens, "float32")
    assert not (data_dir() / "activations").exists()


def test_more_tokens_than_stored_needs_explicit_epochs(sparse_store):
    store, _ = sparse_store  # 8192 rows
    spec = small_spec(store, n_tokens=3 * 8192)
    with pytest.raises(ValueError, match="store holds 8,192; set epochs=3"):
        get_sae(spec, store)
    assert not spec.path().exists() and not list(spec.path().parent.glob(".*.tmp"))
    repeated = small_spec(store, n_tokens=3 * 8192, epochs=3)
    assert repeated.key() != spec.key() and small_spec(store).key() == small_spec(store, epochs=1).key()
    get_sae(repeated, store)


def test_bad_toy_runs_fail_at_construction():
    from sae_failures.engine.toy_training import ToyRun
    from sae_failures.studies.broken_latents.toy_worlds import get_setup

    with pytest.raises(ValueError, match="n_samples 100 is less than one batch of 4096"):
        ToyRun(get_setup("absorption"), "tied", 4, 0, 1e-2, n_samples=100)
    with pytest.raises(ValueError, match="d_sae must be at least 1"):
        ToyRun(get_setup("absorption"), "tied", 0, 0, 1e-2, n_samples=8192)


def test_claims_file_has_no_wall_clock_entries():
    """Notebook setups record what determined a number, never how long it took."""
    from sae_failures.runs.notebooks import notebooks

    for path in notebooks():
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        claims_cell = code[code.index("notebook.close("):]
        assert "seconds" not in claims_cell and "minutes" not in claims_cell, path.stem
