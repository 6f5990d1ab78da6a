"""Activation store: harvest TL hook points once, keep them on disk memory-mapped.

Contexts are packed from the corpus token stream: position 0 of every context is the
document separator (``model.document_separator_id``), documents inside a context are
joined by it too, as in pretraining. Llama-style models put a massive activation on
that token (SmolLM2's residual norm there is ~100x the rest), and also on a few other
attention-sink positions (e.g. a "." right after the separator, ~0.1% of tokens).
``sink_mask`` marks both, separator positions and rows whose norm exceeds
``SINK_NORM_RATIO`` times the batch median; those positions are never stored, never
trained on and never spliced. Every stored row is an ordinary text position,
``n_tokens`` of them.

A harvest runs the model once for all requested hook points, stopping after the
deepest block needed, and writes one file per hook point, keyed by the full config.
Hook points already cached are skipped, so notebooks that share a layer share its file.
An ``ActivationStore`` is a ``training.BatchSource``: seeded, shuffled batches for training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformer_lens import HookedTransformer

from sae_failures.engine.cache import (
    CacheCorruptedError,
    ensure_entry,
    entry_lock,
    load_npy,
    open_entry,
    quarantine,
    remove_stale_staging,
    write_manifest,
)
from sae_failures.engine.corpus import iter_texts
from sae_failures.engine.devices import to_numpy
from sae_failures.engine.model import document_separator_id
from sae_failures.engine.paths import atomic_path, shown
from sae_failures.engine.specs import ActivationSpec
from sae_failures.profiles import Profile

_HOOK_LAYER = re.compile(r"^blocks\.(\d+)\.")
SINK_NORM_RATIO = 10.0
_STORAGE = {"bfloat16": np.uint16, "float16": np.float16, "float32": np.float32}
ACTS_FILE, META_FILE, TOKENS_FILE = "acts.npy", "meta.json", "tokens.npy"


def hook_layer(hook: str) -> int:
    """Index of the block a hook point lives in (``hook_embed`` etc. count as block 0)."""
    match = _HOOK_LAYER.match(hook)
    return int(match.group(1)) if match else 0


def validate_hooks(model: HookedTransformer, hooks: Sequence[str]) -> None:
    unknown = [h for h in hooks if h not in model.hook_dict]
    if unknown:
        examples = ", ".join(
            f"blocks.{{0..{model.cfg.n_layers - 1}}}.{h}"
            for h in ("hook_resid_post", "hook_mlp_out", "hook_attn_out")
        )
        raise ValueError(f"Unknown hook point(s) {unknown} for {model.cfg.model_name}. "
                         f"Valid examples: hook_embed, {examples}.")


def sink_mask(acts: torch.Tensor, tokens: torch.Tensor, separator: int) -> torch.Tensor:
    """True where a position is a separator or an attention sink (norm > 10x the median).

    ``acts`` is ``(batch, pos, d)``, ``tokens`` is ``(batch, pos)``.
    """
    norms = acts.float().norm(dim=-1)
    median = norms[tokens != separator].median() if (tokens != separator).any() else norms.median()
    return (tokens == separator) | (norms > SINK_NORM_RATIO * median)


def pack_contexts(token_stream: Iterator[list[int]], separator: int, context_size: int,
                  n_tokens: int) -> np.ndarray:
    """Rows of ``[separator] + context_size - 1`` tokens holding ``n_tokens`` real tokens.

    Documents are concatenated with ``separator`` between them, as in pretraining; the
    fewest rows whose non-separator positions reach ``n_tokens`` are returned.
    """
    body = context_size - 1
    buf: list[int] = []
    real = 0
    for ids in token_stream:
        buf.extend(ids)
        buf.append(separator)
        real += len(ids)
        if real >= n_tokens + body:  # enough even after trimming to whole rows
            break
    rows = np.asarray(buf[: len(buf) // body * body], dtype=np.int32).reshape(-1, body)
    cumulative = np.cumsum((rows != separator).sum(axis=1))
    if len(cumulative) == 0 or cumulative[-1] < n_tokens:
        have = 0 if len(cumulative) == 0 else int(cumulative[-1])
        raise ValueError(
            f"The corpus has only {have} tokens in this split, fewer than the {n_tokens} "
            "requested. Ask for fewer tokens."
        )
    rows = rows[: int(np.searchsorted(cumulative, n_tokens)) + 1]
    return np.concatenate([np.full((len(rows), 1), separator, np.int32), rows], axis=1)


def contexts_for(model: HookedTransformer, spec: ActivationSpec) -> np.ndarray:
    """Token ids of the packed contexts behind ``spec`` (a cache entry of their own; independent of hook)."""
    tok_spec = ActivationSpec(spec.model, "tokens", spec.corpus, spec.split,
                              spec.context_size, spec.n_tokens, "int32")

    def build(staged: Path) -> None:
        tokenizer = model.tokenizer
        stream = (tokenizer(text).input_ids for text in iter_texts(spec.corpus, spec.split))
        # 2% spare rows: sink positions found at harvest time are dropped too.
        contexts = pack_contexts(stream, document_separator_id(model), spec.context_size,
                                 int(spec.n_tokens * 1.02) + spec.context_size)
        np.save(staged / TOKENS_FILE, contexts)

    return ensure_entry(tok_spec.path(), build, lambda path: load_npy(path / TOKENS_FILE))


def _open_store(spec: ActivationSpec) -> Callable[[Path], tuple[dict, np.ndarray]]:
    def load(path: Path) -> tuple[dict, np.ndarray]:
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CacheCorruptedError(f"{path / META_FILE}: unreadable ({err})") from err
        raw = load_npy(path / ACTS_FILE, mmap=True)
        if raw.shape != (spec.n_tokens, meta.get("d")):
            raise CacheCorruptedError(f"{path / ACTS_FILE} holds shape {raw.shape}, expected "
                                      f"({spec.n_tokens}, {meta.get('d')})")
        return meta, raw
    return load


class ActivationStore:
    """One hook point's cached activations, ``(n_tokens, d)``, memory-mapped and checksum-verified."""

    def __init__(self, spec: ActivationSpec):
        self.spec = spec
        path = spec.path()
        if not path.exists():
            raise FileNotFoundError(f"No cached activations at {path}; harvest them first.")
        self.meta, self._raw = open_entry(path, _open_store(spec), legacy_marker=META_FILE)

    @property
    def n_tokens(self) -> int:
        return self.spec.n_tokens

    @property
    def d(self) -> int:
        return int(self.meta["d"])

    def _to_tensor(self, rows: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.array(rows, copy=True))
        if self.spec.dtype == "bfloat16":
            t = t.view(torch.bfloat16)
        return t.float()

    def tensor(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` rows (all by default) as float32."""
        return self._to_tensor(self._raw[: self.n_tokens if n is None else n])

    def batches(self, batch_size: int, seed: int, n_samples: int | None = None
                ) -> Iterator[torch.Tensor]:
        """Shuffled float32 batches, epoch after epoch, without loading the file into RAM.

        Rows are drawn by a seeded permutation; each batch reads only its own rows.
        Stops after ``n_samples`` rows if given, else runs forever (sae-lens's trainer
        pulls exactly what it needs).
        """
        if not 0 < batch_size <= self.n_tokens:
            raise ValueError(f"Batches of {batch_size} rows cannot be drawn from the {self.n_tokens} rows "
                             f"of {self.spec.hook}: valid batch sizes are 1 to {self.n_tokens}.")
        rng = np.random.default_rng(seed)
        served = 0
        while True:
            order = rng.permutation(self.n_tokens)
            for start in range(0, self.n_tokens - batch_size + 1, batch_size):
                if n_samples is not None and served >= n_samples:
                    return
                idx = np.sort(order[start:start + batch_size])
                served += batch_size
                yield self._to_tensor(self._raw[idx])


@torch.no_grad()
def harvest(model: HookedTransformer, specs: Sequence[ActivationSpec],
            batch_contexts: int = 32) -> list[ActivationStore]:
    """Stores for ``specs`` (same corpus, split, context size, tokens), harvesting only the missing ones."""
    validate_hooks(model, [s.hook for s in specs])
    if any(s.stream for s in specs):
        raise ValueError("harvest() stores activations; a streamed spec (stream=True) is read from the model "
                         "while training (streaming.ActivationStream) and never stored.")
    shared = {(s.model, s.corpus, s.split, s.context_size, s.n_tokens, s.dtype) for s in specs}
    if len(shared) != 1:
        raise ValueError("harvest() takes specs that differ only in their hook point.")
    with contextlib.ExitStack() as locks:
        for spec in sorted(specs, key=lambda s: str(s.path())):
            locks.enter_context(entry_lock(spec.path()))
        missing = []
        for spec in specs:
            remove_stale_staging(spec.path())
            if spec.path().exists():
                try:
                    ActivationStore(spec)
                    continue
                except CacheCorruptedError as err:
                    quarantine(spec.path(), str(err))
            missing.append(spec)
        if missing:
            _harvest_missing(model, missing, batch_contexts)
    return [ActivationStore(s) for s in specs]


def hook_widths(model: HookedTransformer, hooks: Sequence[str], context_size: int) -> dict[str, int]:
    """Each hook point's width, from one short forward pass (an MLP's ``hook_post`` is d_mlp, not d_model)."""
    ids = torch.zeros((1, min(context_size, 4)), dtype=torch.long, device=model.cfg.device)
    stop = max(hook_layer(h) for h in hooks) + 1
    _, cache = model.run_with_cache(ids, names_filter=list(hooks), stop_at_layer=stop)
    return {h: int(cache[h].shape[-1]) for h in hooks}


def check_disk(needed: dict[str, int], folder: Path) -> None:
    """Print the bytes a harvest will write; refuse (one line) when ``folder``'s disk cannot hold them."""
    total = sum(needed.values())
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    print(f"harvest: {len(needed)} hook(s), {total / 1e9:.3g} GB to write under {shown(folder)} "
          f"({free / 1e9:.1f} GB free)")
    if total > free:
        raise OSError(f"Not enough disk for the harvest: {total / 1e9:.3g} GB needed under {folder}, "
                      f"{free / 1e9:.3g} GB free. Free space, point SAE_FAILURES_DATA at a larger disk, "
                      "or ask for fewer tokens.")


def _harvest_missing(model: HookedTransformer, specs: Sequence[ActivationSpec],
                     batch_contexts: int) -> None:
    first = specs[0]
    hooks = [s.hook for s in specs]
    widths = hook_widths(model, hooks, first.context_size)
    storage = _STORAGE[first.dtype]
    check_disk({h: first.n_tokens * w * np.dtype(storage).itemsize for h, w in widths.items()},
               first.path().parent)
    contexts = contexts_for(model, first)
    stop = max(hook_layer(h) for h in hooks) + 1
    separator = document_separator_id(model)
    with contextlib.ExitStack() as stack:
        staged = {s.hook: stack.enter_context(atomic_path(s.path())) for s in specs}
        arrays = {}
        for hook, folder in staged.items():
            folder.mkdir()
            arrays[hook] = np.lib.format.open_memmap(
                folder / ACTS_FILE, mode="w+", dtype=storage, shape=(first.n_tokens, widths[hook]))
        written = dict.fromkeys(hooks, 0)  # each hook drops its own sink positions
        bar = tqdm(total=first.n_tokens, desc=f"harvest {len(hooks)} hook(s) to block {stop - 1}",
                   unit="tok", unit_scale=True)
        for start in range(0, len(contexts), batch_contexts):
            if min(written.values()) >= first.n_tokens:
                break
            ids = torch.from_numpy(contexts[start:start + batch_contexts]).long().to(model.cfg.device)
            _, cache = model.run_with_cache(ids, names_filter=hooks, stop_at_layer=stop)
            for hook in hooks:
                keep = ~sink_mask(cache[hook], ids, separator)
                acts = cache[hook][keep][: first.n_tokens - written[hook]].cpu()
                if not bool(torch.isfinite(acts).all()):
                    raise RuntimeError(f"The model produced non-finite activations at {hook}; nothing was cached.")
                if first.dtype == "bfloat16":
                    acts = acts.to(torch.bfloat16).view(torch.int16)
                arrays[hook][written[hook]:written[hook] + len(acts)] = to_numpy(acts).view(storage)
                written[hook] += len(acts)
            bar.update(min(written.values()) - bar.n)
        bar.close()
        short = {h: n for h, n in written.items() if n < first.n_tokens}
        if short:
            raise RuntimeError(f"Too few ordinary positions in the packed contexts: {short}; "
                               f"{first.n_tokens} were requested.")
        for spec in specs:
            arrays[spec.hook].flush()
            meta = {**spec.to_dict(), "d": widths[spec.hook], "storage": np.dtype(storage).name,
                    "excluded_positions": f"separator token {separator} and rows with norm > "
                    f"{SINK_NORM_RATIO}x the batch median (attention sinks)"}
            (staged[spec.hook] / META_FILE).write_text(json.dumps(meta, indent=1))
        arrays.clear()
        for folder in staged.values():
            write_manifest(folder)  # last: the entry is complete


def ce_contexts(model: HookedTransformer, profile: Profile, hook: str, n_tokens: int | None = None) -> np.ndarray:
    """Held-out contexts holding about ``n_tokens`` tokens (``profile.ce_tokens`` by default), for
    CE splicing: the first contexts of the held-out split, read past the stored held-out
    activations where more are asked for."""
    n_tokens = n_tokens or profile.ce_tokens
    spec = spec_for(profile, hook, "heldout")
    contexts = contexts_for(model, dataclasses.replace(spec, n_tokens=max(spec.n_tokens, n_tokens)))
    return contexts[: max(1, n_tokens // (profile.context_size - 1))]


def spec_for(profile: Profile, hook: str, split: str) -> ActivationSpec:
    """The activation spec a profile uses for ``hook``: train_tokens or eval_tokens of the split."""
    n_tokens = profile.train_tokens if split == "train" else profile.eval_tokens
    return ActivationSpec(profile.model, hook, profile.corpus, split, profile.context_size,
                          n_tokens, profile.model_dtype, stream=profile.stream_training and split == "train")
