"""Training activations streamed from the model: sae-lens's ``ActivationsStore``, nothing on disk.

The paper profile's SAEs train on 50M-1.2B tokens each; stored, that is terabytes. An
``ActivationStream`` is a ``training.BatchSource`` like the on-disk store, built on
sae-lens's ``ActivationsStore`` (dataset iteration, the forward pass up to the hook, epoch
restarts, the dataset position it checkpoints) with the offline store's data rules carried
over exactly:

- the same packed contexts (``iter_contexts``: the separator at position 0 and between
  documents, the rows ``activations.pack_contexts`` stores);
- the same exclusions (``activations.sink_mask``: separator positions and attention sinks
  never reach an SAE);
- training scale, b_dec start and batches as ``training`` draws them from any source.

Batches are shuffled through a mixing buffer of our own (``MixingBuffer``, sae-lens's
``mixing_buffer`` algorithm with a seeded generator): sae-lens's buffer lives inside a
generator, so its resume restarts the buffer empty and the resumed run sees different
batches. Ours is part of the checkpoint (``state_dict``), so a resumed run equals an
uninterrupted one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from sae_lens.training.activations_store import ActivationsStore
from tqdm import tqdm
from transformer_lens import HookedTransformer

from sae_failures.engine.activations import sink_mask
from sae_failures.engine.corpus import iter_texts
from sae_failures.engine.model import document_separator_id
from sae_failures.engine.specs import ActivationSpec

CONTEXTS_PER_FORWARD = 32  # contexts per model forward pass (the harvest's batch)
BUFFER_BATCHES = 16  # training batches' worth of activations in the mixing buffer
MIX_FRACTION = 0.5  # sae-lens's default: half the buffer stays to mix with the next refill
MEMO_BYTES = 2 << 30  # activations the streams of a process keep, in all, from their first forward passes
_memo_used = [0]  # bytes kept so far in this process


def iter_contexts(token_stream: Iterator[list[int]], separator: int, context_size: int) -> Iterator[list[int]]:
    """``[separator] + context_size - 1`` tokens per row, documents joined by ``separator``:
    the rows ``activations.pack_contexts`` returns, one at a time and without end of corpus."""
    body = context_size - 1
    buf: list[int] = []
    for ids in token_stream:
        buf.extend(ids)
        buf.append(separator)
        while len(buf) >= body:
            yield [separator, *buf[:body]]
            del buf[:body]


class SinkFilteredStore(ActivationsStore):
    """sae-lens's store, dropping what the offline harvest drops (``activations.sink_mask``).

    Every pass of a stream starts at the corpus's beginning, so the first forward passes of
    one pass are those of the next: the stream keeps their rows (``ActivationStream.memo``,
    up to ``MEMO_BYTES`` for all streams of a process) and a later pass reads them instead of
    running the model again.
    The dataset still advances as before, so positions and checkpoints are unchanged.
    """

    separator: int
    stream: ActivationStream

    def get_filtered_llm_batch(self, raise_on_epoch_end: bool = False) -> torch.Tensor:
        position = self.n_dataset_processed  # the same sequence of calls reaches the same rows
        kept = self.stream.memo.get(position)
        if kept is not None:
            self.get_batch_tokens(raise_at_epoch_end=raise_on_epoch_end)  # advance past them
            return kept
        acts, tokens = self.get_raw_llm_batch(raise_on_epoch_end=raise_on_epoch_end)
        kept = acts[~sink_mask(acts[None], tokens[None], self.separator)[0]]
        self.stream.remember(position, kept)
        return kept


class ContextDataset:
    """The corpus split as a pretokenized stream of packed contexts, in the form sae-lens's
    store iterates (rows with a ``tokens`` column), starting over at each ``iter``. A plain
    iterable rather than ``datasets.IterableDataset.from_generator``, which fingerprints the
    generator's closure (the model) and writes lock files into the datasets cache."""

    def __init__(self, model: HookedTransformer, spec: ActivationSpec):
        self.model, self.spec = model, spec
        self.separator = document_separator_id(model)

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        stream = (self.model.tokenizer(text).input_ids for text in iter_texts(self.spec.corpus, self.spec.split))
        for row in iter_contexts(stream, self.separator, self.spec.context_size):
            yield {"tokens": row}


class MixingBuffer:
    """sae-lens's ``mixing_buffer`` (refill to ``size`` rows, shuffle, serve all but
    ``MIX_FRACTION`` of it in batches) as an object whose state can be saved and restored."""

    def __init__(self, refill: Callable[[], torch.Tensor], size: int, batch_size: int, seed: int):
        if size < batch_size:
            raise ValueError(f"The mixing buffer ({size} rows) must hold at least one batch of {batch_size}.")
        self.refill, self.size, self.batch_size = refill, size, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.storage: torch.Tensor | None = None
        self.serving: torch.Tensor | None = None
        self.next_batch = 0

    def __iter__(self) -> MixingBuffer:
        return self

    def __next__(self) -> torch.Tensor:
        while self.serving is None or self.next_batch * self.batch_size >= len(self.serving):
            self._fill()
        batch = self.serving[self.next_batch * self.batch_size:(self.next_batch + 1) * self.batch_size]
        self.next_batch += 1
        return batch

    def _fill(self) -> None:
        while self.storage is None or len(self.storage) < self.size:
            new = self.refill()
            self.storage = new if self.storage is None else torch.cat([self.storage, new])
        order = torch.randperm(len(self.storage), generator=self.generator).to(self.storage.device)
        shuffled = self.storage[order]
        n_serving = max(1, (len(shuffled) - int(self.size * MIX_FRACTION)) // self.batch_size) * self.batch_size
        self.serving, self.storage, self.next_batch = shuffled[:n_serving], shuffled[n_serving:], 0

    def state_dict(self) -> dict[str, Any]:
        return {"storage": self.storage, "serving": self.serving, "next_batch": self.next_batch,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.storage, self.serving, self.next_batch = state["storage"], state["serving"], state["next_batch"]
        self.generator.set_state(state["generator"])


class StreamBatches:
    """One pass of shuffled batches from the stream, resumable: ``state_dict`` is the dataset
    position (sae-lens's ``n_dataset_processed``) and the mixing buffer."""

    def __init__(self, stream: ActivationStream, batch_size: int, seed: int, n_samples: int | None):
        self.stream, self.n_samples, self.served = stream, n_samples, 0
        self.store = stream.new_store(batch_size)
        size = BUFFER_BATCHES * batch_size if n_samples is None else min(BUFFER_BATCHES * batch_size, n_samples)
        self.buffer = MixingBuffer(self.store.get_filtered_llm_batch, max(size, batch_size), batch_size, seed)

    def __iter__(self) -> StreamBatches:
        return self

    def __next__(self) -> torch.Tensor:
        if self.n_samples is not None and self.served >= self.n_samples:
            raise StopIteration
        batch = next(self.buffer)
        self.served += len(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"n_dataset_processed": self.store.n_dataset_processed, "served": self.served,
                "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Fast-forward a fresh pass to a saved one (sae-lens's own skip over the dataset)."""
        target = int(state["n_dataset_processed"])
        while self.store.n_dataset_processed < target:
            try:
                next(self.store.iterable_sequences)
            except StopIteration:  # the saved pass had started the corpus over
                self.store.iterable_sequences = self.store._iterate_tokenized_sequences()
        self.served = state["served"]
        self.buffer.load_state_dict(state["buffer"])


def _release(kept: list[int]) -> None:
    _memo_used[0] -= kept[0]


class ActivationStream:
    """A ``training.BatchSource`` that runs the model for every batch: ``spec``'s hook point,
    corpus and split in the corpus's order, starting over at its end. ``spec.n_tokens`` is
    what one SAE may train on (``SAESpec.epochs`` times it), not a cap on the stream."""

    resumable = True  # its batches save and restore their state (``saes`` checkpoints long runs)

    def __init__(self, model: HookedTransformer, spec: ActivationSpec, d: int):
        self.model, self.spec, self._d = model, spec, d
        self.separator = document_separator_id(model)
        self._means: dict[int, torch.Tensor] = {}
        self.memo: dict[int, torch.Tensor] = {}  # dataset position -> the rows of the forward pass there
        self._kept = [0]
        weakref.finalize(self, _release, self._kept)  # a stream that is gone gives its room back

    def remember(self, position: int, rows: torch.Tensor) -> None:
        """Keep a forward pass's rows while the process's streams have room (``MEMO_BYTES`` in all)."""
        size = rows.numel() * rows.element_size()
        if _memo_used[0] + size <= MEMO_BYTES:
            self.memo[position] = rows
            _memo_used[0] += size
            self._kept[0] += size

    @torch.no_grad()
    def first_rows_mean(self, n: int) -> torch.Tensor:
        """The mean of the stream's first ``n`` rows, in the corpus's order (where b_dec starts,
        ``training.data_mean``): read once per ``n``, and through the memo, so the forward passes
        it runs are the ones training reads first."""
        if n not in self._means:
            store, total, have = self.new_store(CONTEXTS_PER_FORWARD * self.spec.context_size), None, 0
            while have < n:
                rows = store.get_filtered_llm_batch()[: n - have]
                total = rows.sum(0, dtype=torch.float64) + (0 if total is None else total)
                have += len(rows)
            self._means[n] = (total / n).to(rows.dtype)
        return self._means[n]

    @property
    def d(self) -> int:
        return self._d

    @property
    def n_tokens(self) -> int:
        return self.spec.n_tokens

    def new_store(self, batch_size: int) -> SinkFilteredStore:
        store = SinkFilteredStore(
            model=self.model, dataset=ContextDataset(self.model, self.spec), streaming=True,  # type: ignore[arg-type]
            hook_name=self.spec.hook, hook_head_index=None, context_size=self.spec.context_size, d_in=self.d,
            n_batches_in_buffer=BUFFER_BATCHES, total_training_tokens=self.spec.n_tokens,
            store_batch_size_prompts=CONTEXTS_PER_FORWARD, train_batch_size_tokens=batch_size,
            prepend_bos=False, normalize_activations="none", device=torch.device(self.model.cfg.device),
            dtype="float32")
        store.separator, store.stream = self.separator, self
        return store

    def batches(self, batch_size: int, seed: int, n_samples: int | None = None) -> StreamBatches:
        return StreamBatches(self, batch_size, seed, n_samples)


class HeldoutActivations:
    """A held-out split streamed once into memory: the rows ``activations.harvest`` would store,
    in the same order, without writing them (``tensor``, ``n_tokens``, ``d`` as the store has)."""

    def __init__(self, model: HookedTransformer, spec: ActivationSpec, d: int):
        self.spec, self.d = spec, d
        store = ActivationStream(model, spec, d).new_store(CONTEXTS_PER_FORWARD * spec.context_size)
        rows, have = [], 0
        bar = tqdm(total=spec.n_tokens, desc=f"held-out {spec.hook}", unit="tok", unit_scale=True)
        while have < spec.n_tokens:
            try:
                rows.append(store.get_filtered_llm_batch(raise_on_epoch_end=True).cpu())
            except StopIteration:
                raise ValueError(f"The corpus has only {have} tokens in its {spec.split} split, fewer than the "
                                 f"{spec.n_tokens} requested. Ask for fewer tokens.") from None
            have += len(rows[-1])
            bar.update(min(have, spec.n_tokens) - bar.n)
        bar.close()
        self._rows = torch.cat(rows)[: spec.n_tokens]

    @property
    def n_tokens(self) -> int:
        return self.spec.n_tokens

    def tensor(self, n: int | None = None) -> torch.Tensor:
        return self._rows[: self.n_tokens if n is None else n]
