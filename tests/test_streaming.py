"""Training from a stream of model activations, and SAEs trained together on one pass."""

import dataclasses
import gc
import os
import subprocess
import sys

import pytest
import torch

from sae_failures.engine import saes, training
from sae_failures.engine.activations import harvest, pack_contexts
from sae_failures.engine.model import OFFLINE_MODEL
from sae_failures.engine.paths import data_dir
from sae_failures.engine.saes import get_sae, get_saes
from sae_failures.engine.specs import ActivationSpec, SAESpec
from sae_failures.engine.streaming import (
    ActivationStream,
    HeldoutActivations,
    MixingBuffer,
    iter_contexts,
)

REAL_DATA = data_dir()  # where the offline model and corpus were unpacked, before tests move the cache
STREAM_SPEC = ActivationSpec(OFFLINE_MODEL, "blocks.0.hook_resid_post", "brown", "train", 32, 20_000, "float32")


def same_rows(got: torch.Tensor, want: torch.Tensor) -> None:
    """The same activations row for row, to float32 rounding. The stream and the harvest batch
    contexts differently, and on some CPUs (this 2-core AVX-512 host: 25 of 3,000 rows, by at
    most 2e-6 at magnitudes up to 37) fp32 kernels round differently across batch shapes, so
    bitwise equality is not what torch promises; a shifted, dropped or reordered row differs
    by order 1 and still fails."""
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _link_assets(root):
    """The offline model and corpus inside a test's cache folder, without unpacking them again."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("models", "corpus"):
        if not (root / name).exists():
            (root / name).symlink_to(REAL_DATA / name)


def test_iter_contexts_yields_the_stored_rows():
    docs = [list(range(1, n)) for n in (5, 40, 3, 17, 60)]
    stored = pack_contexts(iter(docs), 0, 8, 100)
    streamed = [row for row, _ in zip(iter_contexts(iter(docs), 0, 8), range(len(stored)), strict=False)]
    assert [list(r) for r in stored] == streamed


def test_mixing_buffer_serves_every_row_once_and_resumes_exactly():
    rows = iter(torch.arange(4000.0).reshape(-1, 1).split(100))
    buffer = MixingBuffer(lambda: next(rows), size=400, batch_size=50, seed=3)
    first = [next(buffer) for _ in range(30)]
    served = torch.cat(first).flatten()
    assert len(served.unique()) == len(served) == 1500  # no row twice
    assert served.max() < 4000 and not torch.equal(served, served.sort().values)  # shuffled
    state = buffer.state_dict()
    rest = [next(buffer) for _ in range(10)]
    consumed = 1500 + len(state["storage"]) + len(state["serving"]) - state["next_batch"] * 50
    rows = iter(torch.arange(4000.0).reshape(-1, 1)[consumed:].split(100))
    again = MixingBuffer(  # another seed: the generator's state comes from the checkpoint
        lambda: next(rows), size=400, batch_size=50, seed=99)
    again.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(rest, [next(again) for _ in range(10)], strict=True))


def test_saes_trained_together_equal_each_trained_alone(sparse_store, tmp_path, monkeypatch):
    store, _ = sparse_store
    specs = {"unit": SAESpec("standard_unit_norm", store.spec, 8, 0.1, 4096, lr=3e-2, batch_size=256),
             "topk": SAESpec("topk", store.spec, 8, 3, 2048, lr=3e-2, batch_size=256),  # stops halfway
             "snapshots": SAESpec("standard", store.spec, 8, 1e-3, 4096, lr=3e-2, batch_size=256, checkpoints=3)}
    together = get_saes(specs, store)
    snapshots = sorted(p.name for p in (specs["snapshots"].path() / saes.CHECKPOINT_DIR).iterdir())
    assert snapshots == [f"{t:012d}" for t in (0, 1280, 2816)]
    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_path / "alone"))  # a second cache, one SAE per call
    for name, spec in specs.items():
        alone = get_sae(spec, store)
        for key, value in alone.state_dict().items():
            assert torch.equal(together[name].state_dict()[key], value), (name, key)


def test_a_group_refuses_specs_that_draw_different_batches(sparse_store):
    store, _ = sparse_store
    a = SAESpec("standard", store.spec, 8, 1e-3, 1024, batch_size=256)
    with pytest.raises(ValueError, match="share activations, batch_size and seed; got 2"):
        training.train_saes([a, SAESpec("standard", store.spec, 8, 1e-3, 1024, batch_size=256, seed=1)], store)


def test_the_stream_serves_the_rows_the_harvest_stores(offline_model, tmp_data):
    _link_assets(data_dir())
    spec = ActivationSpec(OFFLINE_MODEL, "blocks.0.hook_resid_post", "brown", "train", 32, 4000, "float32")
    stored = harvest(offline_model, [spec])[0].tensor()
    store = ActivationStream(offline_model, spec, 576).new_store(256)
    streamed = torch.cat([store.get_filtered_llm_batch() for _ in range(5)])[:len(stored)]
    assert len(streamed) == len(stored)
    same_rows(streamed, stored)  # separators and sinks dropped alike


CHILD = """
import os, signal, sys
from sae_failures.engine import saes
from sae_failures.engine import training
from sae_failures.engine.model import load_model, OFFLINE_MODEL
from sae_failures.engine.streaming import ActivationStream
from tests.test_streaming import STREAM_SPEC, stream_sae_spec
saves = training.save_resume_state
def save_then_die(*args, **kwargs):
    saves(*args, **kwargs)
    training.saved = getattr(training, "saved", 0) + 1
    if training.saved == 3:
        os.kill(os.getpid(), signal.SIGKILL)
training.save_resume_state = save_then_die
model = load_model(OFFLINE_MODEL, dtype="float32")
saes.get_sae(stream_sae_spec(), ActivationStream(model, STREAM_SPEC, 576))
"""


def stream_sae_spec() -> SAESpec:
    return SAESpec("standard", STREAM_SPEC, 64, 1e-3, 128 * 60, lr=1e-3, batch_size=128)


def _use_cache(root, monkeypatch):
    _link_assets(root)
    monkeypatch.setenv("SAE_FAILURES_DATA", str(root))


def test_a_killed_streaming_run_resumes_to_the_uninterrupted_sae(offline_model, tmp_path, monkeypatch):
    spec = stream_sae_spec()
    _use_cache(tmp_path / "straight", monkeypatch)
    straight = get_sae(spec, ActivationStream(offline_model, STREAM_SPEC, 576))

    _use_cache(tmp_path / "killed", monkeypatch)
    child = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, "PYTHONPATH": os.getcwd()},
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -9, child.stderr[-2000:]
    saved = list((tmp_path / "killed" / saes.TRAINING_RUNS).glob(f"*/{training.RESUME_STATE}"))
    assert len(saved) == 1 and not spec.path().exists()  # killed after its 3rd save, before the end
    resumed_at, load = [], training.load_resume_state
    monkeypatch.setattr(training, "load_resume_state", lambda *a: resumed_at.append(load(*a)) or resumed_at[-1])
    resumed = get_sae(spec, ActivationStream(offline_model, STREAM_SPEC, 576))
    assert resumed_at == [3 * (spec.n_steps // saes.RESUME_CHECKPOINTS)]  # went on from the last save
    assert not saved[0].exists()  # the run's folder is gone once the SAE is cached
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key


def test_scale_multiplies_every_training_count_and_no_evaluation_count(monkeypatch):
    from sae_failures.engine.training_length import doubling
    from sae_failures.profiles import PROFILES, SCALE_ENV, get_profile, scaled

    paper = PROFILES["paper"]
    tenth = scaled(paper, 0.1)
    batch = paper.sae_batch_size
    assert (tenth.train_tokens, tenth.suppression.train_tokens, tenth.gated.sweep_tokens) == (
        round(5e6 / batch) * batch, round(6e7 / batch) * batch, round(1.2e8 / batch) * batch)
    assert tenth.alignment.sweep_tokens == tenth.train_tokens and tenth.calibration.tokens == round(2e5 / batch) * batch
    assert (tenth.eval_tokens, tenth.ce_tokens) == (paper.eval_tokens, paper.ce_tokens)
    assert len(doubling(*tenth.scale.budgets)) == len(doubling(*paper.scale.budgets))  # still doubling, as often
    assert scaled(paper, 1e-9).train_tokens == batch  # at least one batch
    assert scaled(paper, "1") == paper
    monkeypatch.setenv(SCALE_ENV, "0.1")
    assert get_profile("paper").train_tokens == tenth.train_tokens
    monkeypatch.setenv(SCALE_ENV, "-2")
    with pytest.raises(ValueError, match=r"SCALE must be a positive number .* got -2.0"):
        get_profile("paper")


def test_the_paper_profile_streams_and_stored_specs_keep_their_keys():
    from sae_failures.engine.activations import spec_for
    from sae_failures.profiles import PROFILES

    stored = spec_for(PROFILES["offline"], "blocks.12.hook_resid_post", "train")
    assert not stored.stream and "stream" not in stored.to_dict()
    assert spec_for(PROFILES["paper"], "blocks.3.hook_resid_post", "train").stream
    assert not spec_for(PROFILES["paper"], "blocks.3.hook_resid_post", "heldout").stream  # held in memory
    streamed = dataclasses.replace(stored, stream=True)
    assert streamed.key() != stored.key()
    sae = SAESpec("standard", stored, 64, 1.0, 4096)
    assert dataclasses.replace(sae, activations=streamed).key() != sae.key()
    assert "stream" not in sae.to_dict()["activations"]


def test_harvest_refuses_a_streamed_spec(offline_model, tmp_data):
    with pytest.raises(ValueError, match=r"a streamed spec .* never stored"):
        harvest(offline_model, [dataclasses.replace(STREAM_SPEC, stream=True)])


def test_the_heldout_set_in_memory_is_the_harvested_one(offline_model, tmp_data):
    _link_assets(data_dir())
    spec = ActivationSpec(OFFLINE_MODEL, "blocks.0.hook_resid_post", "brown", "heldout", 32, 3000, "float32")
    same_rows(HeldoutActivations(offline_model, spec, 576).tensor(), harvest(offline_model, [spec])[0].tensor())
    with pytest.raises(ValueError, match=r"The corpus has only \d+ tokens in its heldout split, fewer than the "
                                         r"10000000 requested"):
        HeldoutActivations(offline_model, dataclasses.replace(spec, n_tokens=10_000_000), 576)


def test_a_second_pass_reads_the_first_passes_rows_without_running_the_model(offline_model, tmp_data, monkeypatch):
    _link_assets(data_dir())
    from sae_failures.engine import streaming

    stream = ActivationStream(offline_model, STREAM_SPEC, 576)
    first = list(stream.batches(256, seed=1, n_samples=256 * 12))
    forwards = []
    raw = streaming.SinkFilteredStore.get_raw_llm_batch
    monkeypatch.setattr(streaming.SinkFilteredStore, "get_raw_llm_batch",
                        lambda self, **k: forwards.append(1) or raw(self, **k))
    again = list(stream.batches(256, seed=1, n_samples=256 * 12))
    assert forwards == [] and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    kept = streaming._memo_used[0]
    assert kept >= sum(t.numel() * 4 for t in stream.memo.values()) > 0
    del stream
    gc.collect()
    assert streaming._memo_used[0] < kept  # a stream that is gone gives its room back
    monkeypatch.setattr(streaming, "MEMO_BYTES", 0)  # a stream with no room runs the model every pass
    fresh = ActivationStream(offline_model, STREAM_SPEC, 576)
    assert all(torch.equal(a, b) for a, b in zip(first, fresh.batches(256, seed=1, n_samples=256 * 12), strict=True))
    assert forwards and fresh.memo == {}


def test_the_gpu_estimate_counts_each_notebooks_training():
    from sae_failures.profiles import PROFILES, scaled
    from sae_failures.runs.estimates import notebook_costs

    full, tenth = notebook_costs(PROFILES["paper"]), notebook_costs(scaled(PROFILES["paper"], 0.1))
    # 00: one 4 x 512 SAE on 50M tokens of Pythia-70m's layer 3 (4 blocks of 4d^2 + 2 d d_mlp parameters)
    assert full.loc["00", "SAE FLOPs"] == 12 * 512 * 2048 * 50e6
    assert full.loc["00", "forward FLOPs"] == 2 * 4 * (4 * 512**2 + 2 * 512 * 2048) * 50e6
    assert full.loc["01", "SAEs"] == 6 * 7  # a base SAE and 6 fine-tunes per layer
    ratio = tenth["SAE FLOPs"] / full["SAE FLOPs"]
    assert ((ratio > 0.099) & (ratio < 0.101)).all()  # SCALE scales every notebook's training
    assert full["GPU-hours (estimate)"].idxmax() == "04"  # 1.2B tokens per Gated-paper SAE


def test_a_streams_b_dec_start_is_the_mean_of_its_first_rows_whose_passes_training_reuses(
        offline_model, tmp_data, monkeypatch):
    _link_assets(data_dir())
    from sae_failures.engine import streaming

    spec = dataclasses.replace(STREAM_SPEC, n_tokens=3000)  # at most n_tokens rows: 3000
    store = ActivationStream(offline_model, spec, 576).new_store(1024)
    first = torch.cat([store.get_filtered_llm_batch() for _ in range(4)])[:3000]
    stream = ActivationStream(offline_model, spec, 576)
    mean = training.data_mean(stream, seed=0)
    torch.testing.assert_close(mean, first.double().mean(0).float())
    forwards = []
    raw = streaming.SinkFilteredStore.get_raw_llm_batch
    monkeypatch.setattr(streaming.SinkFilteredStore, "get_raw_llm_batch",
                        lambda self, **k: forwards.append(1) or raw(self, **k))
    assert training.data_mean(stream, seed=5) is mean  # read once, whatever the seed
    list(stream.batches(256, seed=1, n_samples=1024))
    assert forwards == []  # training's first batches come from the passes the mean ran
