import pytest
import torch

from sae_failures.engine.activations import ActivationStore, harvest, pack_contexts
from sae_failures.engine.cache import CacheCorruptedError
from sae_failures.engine.model import document_separator_id
from sae_failures.engine.specs import ActivationSpec

from .conftest import write_store


def test_pack_contexts_puts_separator_first_and_between_documents():
    docs = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    rows = pack_contexts(iter(docs), separator=0, context_size=4, n_tokens=5)
    # the fewest rows holding 5 real tokens
    assert rows.tolist() == [[0, 5, 6, 7], [0, 0, 8, 9]]


def test_pack_contexts_says_when_the_corpus_is_too_small():
    with pytest.raises(ValueError, match="only 3 tokens"):
        pack_contexts(iter([[1, 2, 3]]), separator=0, context_size=4, n_tokens=10)


def test_harvest_matches_a_direct_forward_and_skips_sinks(offline_model, tmp_data):
    model = offline_model
    specs = [ActivationSpec("smollm2-135m-offline", f"blocks.{layer}.hook_resid_post", "brown",
                            "heldout", 32, 200, "float32") for layer in (1, 4)]
    stores = harvest(model, specs, batch_contexts=4)
    assert [s.tensor().shape for s in stores] == [(200, 576), (200, 576)]
    from sae_failures.engine.activations import contexts_for, sink_mask

    tokens = torch.from_numpy(contexts_for(model, specs[1])[:2]).long()
    _, cache = model.run_with_cache(tokens, names_filter="blocks.4.hook_resid_post")
    acts = cache["blocks.4.hook_resid_post"]
    expected = acts[~sink_mask(acts, tokens, document_separator_id(model))]
    assert torch.allclose(stores[1].tensor(len(expected)), expected, atol=1e-5)
    # a second call is served from the cache
    again = harvest(model, specs)
    assert torch.equal(again[0].tensor(), stores[0].tensor())


def test_unknown_hook_point_lists_valid_ones(offline_model, tmp_data):
    spec = ActivationSpec("smollm2-135m-offline", "blocks.99.hook_resid_post", "brown", "heldout",
                          32, 10, "float32")
    with pytest.raises(ValueError, match=r"Unknown hook point.*blocks\.\{0\.\.29\}\.hook_resid_post"):
        harvest(offline_model, [spec])


def test_batches_serve_every_row_once_per_epoch(tmp_data):
    store = write_store(torch.arange(64, dtype=torch.float32).reshape(32, 2))
    rows = torch.cat(list(store.batches(8, seed=1, n_samples=32)))
    assert sorted(rows[:, 0].tolist()) == list(range(0, 64, 2))
    assert rows[:, 0].tolist() != list(range(0, 64, 2))  # shuffled


def test_corrupted_cache_gets_a_clear_error(tmp_data):
    store = write_store(torch.zeros(16, 4))
    (store.spec.path() / "acts.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(CacheCorruptedError, match=r"acts\.npy has 14 bytes, 384 were written"):
        ActivationStore(store.spec)


def test_spec_key_changes_with_every_field():
    base = ActivationSpec("m", "h", "c", "train", 8, 100, "float32")
    variants = [ActivationSpec("m2", "h", "c", "train", 8, 100, "float32"),
                ActivationSpec("m", "h", "c", "heldout", 8, 100, "float32"),
                ActivationSpec("m", "h", "c", "train", 8, 101, "float32"),
                ActivationSpec("m", "h", "c", "train", 8, 100, "bfloat16")]
    assert len({base.key(), *(v.key() for v in variants)}) == 5


def test_harvest_stores_each_hook_at_its_own_width(offline_model, tmp_data):
    # blocks.0.mlp.hook_post is d_mlp = 1536 wide; sizing it with d_model (576) broke GELU-1L's harvest.
    specs = [ActivationSpec("smollm2-135m-offline", hook, "brown", "heldout", 32, 64, "float32")
             for hook in ("blocks.0.hook_resid_post", "blocks.0.mlp.hook_post")]
    stores = harvest(offline_model, specs, batch_contexts=4)
    assert [(s.tensor().shape, s.d) for s in stores] == [((64, 576), 576), ((64, 1536), 1536)]


def test_harvest_says_what_it_will_write_and_refuses_a_disk_too_small(offline_model, tmp_data, monkeypatch,
                                                                       capsys):
    import shutil
    from collections import namedtuple

    spec = ActivationSpec("smollm2-135m-offline", "blocks.0.hook_resid_post", "brown", "heldout", 32, 1000,
                          "float32")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**5, 10**5))
    with pytest.raises(OSError, match=r"Not enough disk for the harvest: 0\.0023 GB needed .* 0\.0001 GB free"):
        harvest(offline_model, [spec])
    assert "1 hook(s), 0.0023 GB to write" in capsys.readouterr().out
    assert not spec.path().exists()
    monkeypatch.undo()
    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_data / "data"))
    assert harvest(offline_model, [spec])[0].tensor().shape == (1000, 576)  # 2.3 MB: 576 x 4 bytes x 1000


def _within(seconds: int, fn):
    """``fn()``, or a failure (not a hang) after ``seconds``: the bug below looped forever."""
    import signal

    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)


def test_b_dec_starts_at_the_mean_of_a_store_smaller_than_one_sample_batch(tmp_data):
    from sae_failures.engine.training import init_b_dec_to_mean

    acts = torch.randn(1000, 4) + torch.tensor([3.0, -2.0, 0.5, 1.0])  # 1000 < the 4096-row sample batch
    store = write_store(acts)

    class Bias:
        b_dec = torch.nn.Parameter(torch.zeros(4))

    sae = Bias()
    _within(20, lambda: init_b_dec_to_mean([sae], store, scale=2.0, seed=0))
    assert torch.allclose(sae.b_dec.data, 2.0 * acts.mean(0), atol=1e-5)


def test_a_batch_larger_than_the_store_is_refused_not_looped_on(tmp_data):
    store = write_store(torch.zeros(100, 2))
    with pytest.raises(ValueError, match=r"Batches of 256 rows cannot be drawn from the 100 rows.*1 to 100"):
        _within(20, lambda: next(store.batches(256, seed=0)))
