import dataclasses
import hashlib
import json
import shutil

import pytest
import torch
from sae_lens import SAE

from sae_failures.engine import saes
from sae_failures.engine.cache import CacheCorruptedError
from sae_failures.engine.saes import get_sae, training_history
from sae_failures.engine.specs import CACHE_VERSION, SAESpec


def spec_for(store, variant="standard_unit_norm", sparsity=0.1, **kw):
    return SAESpec(variant, store.spec, width=8, sparsity=sparsity, n_tokens=32768,
                   lr=3e-2, batch_size=256, epochs=4, **kw)  # 4 passes over the 8192 stored rows


def test_unknown_variant_lists_valid_ones(sparse_store):
    store, _ = sparse_store
    with pytest.raises(ValueError, match=r"Unknown SAE variant 'relu'.*standard_unit_norm.*topk"):
        get_sae(spec_for(store, variant="relu"), store)


def test_unknown_option_lists_valid_ones(sparse_store):
    store, _ = sparse_store
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['kk'\].*Valid options"):
        get_sae(spec_for(store, options=(("kk", 3),)), store)


def test_trained_sae_round_trips_through_sae_lens_and_is_cached(sparse_store, monkeypatch):
    store, features = sparse_store
    spec = spec_for(store)
    sae = get_sae(spec, store)
    reloaded = SAE.load_from_disk(spec.path())  # plain sae-lens, no repo code involved
    x = store.tensor(512)
    assert torch.allclose(sae.encode(x), reloaded.encode(x))
    assert reloaded.cfg.architecture() == "standard"
    assert reloaded.cfg.metadata.sae_failures_spec["variant"] == "standard_unit_norm"
    # unit-norm rows, then divided by the folded activation scale
    scale = reloaded.cfg.metadata.activation_scaling_factor
    assert torch.allclose(reloaded.W_dec.norm(dim=1), torch.full((8,), 1 / scale), atol=1e-5)
    # it learned the three true features (decoder rows align with them)
    cos = torch.nn.functional.normalize(reloaded.W_dec, dim=1) @ features.T
    assert (cos.max(dim=0).values > 0.99).all()
    history = training_history(spec)
    assert history[-1]["mse_loss"] < history[0]["mse_loss"]
    monkeypatch.setattr(saes, "train_sae", lambda *a, **k: pytest.fail("retrained a cached SAE"))
    get_sae(spec, store)


def test_every_family_trains_and_reloads(sparse_store):
    store, _ = sparse_store
    for variant, sparsity in (("topk", 3), ("gated", 1e-3), ("jumprelu", 1e-3), ("standard", 1e-3)):
        spec = SAESpec(variant, store.spec, width=8, sparsity=sparsity, n_tokens=1024,
                       batch_size=256)
        sae = get_sae(spec, store)
        assert SAE.load_from_disk(spec.path()).cfg.architecture() == variant
        if variant == "topk":
            assert (sae.encode(store.tensor(64)) > 0).sum(-1).max() <= 3


def test_a_garbage_weights_file_is_named_then_retrained(sparse_store, capsys):
    from sae_failures.engine.cache import load_sae, open_entry

    store, _ = sparse_store
    spec = SAESpec("topk", store.spec, width=8, sparsity=2, n_tokens=512, batch_size=256)
    get_sae(spec, store)
    (spec.path() / "sae_weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(CacheCorruptedError, match=r"sae_weights\.safetensors has 7 bytes"):
        open_entry(spec.path(), load_sae)
    assert get_sae(spec, store).cfg.d_sae == 8
    assert "sae_weights.safetensors has 7 bytes" in capsys.readouterr().err

def test_bf16_autocast_training_learns_the_same_features_and_keys_apart(sparse_store):
    store, features = sparse_store
    fp32, bf16 = spec_for(store), spec_for(store, autocast=True)
    assert bf16.key() != fp32.key()
    # fields at their defaults are left out of keys, so caches made before they existed stay valid
    one_pass = dataclasses.replace(fp32, n_tokens=8192, epochs=1)
    later = ("autocast", "checkpoints", "epochs", "checkpoint_tokens", "warm_up_steps")  # fields added later
    old_fields = {k: v for k, v in one_pass.to_dict().items() if k not in later}
    old_key = hashlib.sha256(json.dumps({**old_fields, "cache_version": CACHE_VERSION},
                                        sort_keys=True).encode()).hexdigest()[:16]
    assert one_pass.key() == old_key
    sae = get_sae(bf16, store)
    assert sae.W_dec.dtype == torch.float32  # autocast changes the matmuls, not the weights
    cos = torch.nn.functional.normalize(sae.W_dec, dim=1) @ features.T
    assert (cos.max(dim=0).values > 0.99).all()


def test_checkpoints_start_at_initialisation_and_end_at_the_cached_sae(sparse_store):
    from sae_failures.engine.metrics import alignment_scores
    from sae_failures.engine.saes import load_checkpoints

    store, _ = sparse_store
    spec = SAESpec("aligned", store.spec, width=8, sparsity=1e-3, n_tokens=4096, batch_size=256,
                   checkpoints=4)
    assert spec.checkpoint_steps() == [0, 4, 8, 12]
    assert spec.key() != dataclasses.replace(spec, checkpoints=0).key()
    final = get_sae(spec, store)
    snaps = load_checkpoints(spec)
    assert list(snaps) == [0, 1024, 2048, 3072, 4096]
    assert torch.equal(snaps[4096].W_dec, final.W_dec)
    assert not torch.allclose(snaps[0].W_dec, final.W_dec)  # the first is the initialisation
    for sae in snaps.values():
        assert torch.allclose(alignment_scores(sae), torch.ones(8), atol=1e-5)
    with pytest.raises(ValueError, match="without checkpoints"):
        load_checkpoints(dataclasses.replace(spec, checkpoints=0))


def test_a_snapshot_of_a_long_run_is_the_shorter_run_under_a_constant_schedule(sparse_store):
    """Training-length budgets read from one run: with the warm-up fixed in steps and no LR decay,
    the snapshot after 4096 tokens of a 16384-token run is exactly the 4096-token run."""
    store, _ = sparse_store
    common = dict(width=8, sparsity=0.1, lr=3e-2, batch_size=256, lr_decay_frac=0.0, warm_up_steps=2, epochs=2)
    long = SAESpec("standard", store.spec, n_tokens=16384, checkpoint_tokens=(4096, 8192), **common)
    short = SAESpec("standard", store.spec, n_tokens=4096, **common)
    get_sae(long, store)
    snapshots = saes.load_checkpoints(long)
    assert sorted(snapshots) == [4096, 8192, 16384]
    alone = get_sae(short, store)
    for name, value in alone.state_dict().items():
        assert torch.equal(value, snapshots[4096].state_dict()[name]), name
    assert not torch.equal(snapshots[16384].W_dec, alone.W_dec)  # it did go on training


def test_checkpoint_budgets_are_checked_and_keep_old_keys(sparse_store):
    store, _ = sparse_store
    base = spec_for(store)
    assert dataclasses.replace(base, checkpoint_tokens=(), warm_up_steps=None).key() == base.key()
    with pytest.raises(ValueError, match="checkpoint_tokens must increase"):
        dataclasses.replace(base, checkpoint_tokens=(8192, 4096))
    with pytest.raises(ValueError, match="not both"):
        dataclasses.replace(base, checkpoints=3, checkpoint_tokens=(4096,))
    with pytest.raises(ValueError, match="warm_up_steps must be between 0 and the run's 128 steps"):
        dataclasses.replace(base, warm_up_steps=500)


def test_budget_saes_read_every_budget_from_one_run(sparse_store, monkeypatch):
    from sae_failures.engine import training_length

    store, _ = sparse_store
    assert training_length.doubling(4096, 16384) == (4096, 8192, 16384)
    with pytest.raises(ValueError, match="not 4,096 doubled"):
        training_length.doubling(4096, 12288)
    spec = SAESpec("standard", store.spec, width=8, sparsity=0.1, n_tokens=4096, lr=3e-2, batch_size=256)
    budgets = training_length.doubling(4096, 16384)
    run = training_length.long_run(spec, budgets, store.n_tokens)
    assert (run.n_tokens, run.epochs, run.checkpoint_tokens, run.lr_decay_frac) == (16384, 2, (4096, 8192), 0.0)
    assert run.warm_up_steps == spec.sparsity_warm_up_steps == int(0.05 * 16)  # the short run's warm-up
    by_budget = training_length.budget_saes(spec, budgets, store)
    assert sorted(by_budget) == list(budgets)
    monkeypatch.setattr(saes, "train_sae", lambda *a, **k: pytest.fail("trained again"))
    again = training_length.budget_saes(spec, budgets, store)
    assert torch.equal(again[8192].W_dec, by_budget[8192].W_dec)


def test_a_budget_entry_is_the_snapshot_under_its_own_spec(sparse_store, monkeypatch):
    from sae_failures.engine import training_length

    store, _ = sparse_store
    spec = SAESpec("standard", store.spec, width=8, sparsity=0.1, n_tokens=4096, lr=3e-2, batch_size=256)
    budgets = (4096, 8192, 16384)
    short = training_length.budget_entry(spec, budgets, 8192, store)
    assert (short.n_tokens, short.checkpoint_tokens, short.warm_up_steps) == (8192, (), 0)
    cached = SAE.load_from_disk(short.path())
    assert torch.equal(cached.W_dec, training_length.budget_saes(spec, budgets, store)[8192].W_dec)
    assert max(r["tokens"] for r in training_history(short)) <= 8192
    # training that spec outright gives the same SAE: the entry is what its spec says it is
    shutil.rmtree(short.path())
    assert torch.equal(get_sae(short, store).W_dec, cached.W_dec)
