import pytest
import torch

from sae_failures.activations import ActivationStore, harvest, pack_contexts
from sae_failures.cache import CacheCorruptedError
from sae_failures.model import document_separator_id
from sae_failures.specs import ActivationSpec

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
    from sae_failures.activations import contexts_for, sink_mask

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
