"""The hub check goes where huggingface_hub's downloads go: HF_ENDPOINT, proxies, offline mode."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from sae_failures.engine.network import NetworkUnavailableError, hub_reachable, require_network


class Hub(BaseHTTPRequestHandler):
    """Answers every request as the hub answers a model's metadata; 404 for repo "org/missing"."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Hub.seen.append(self.path)
        missing = "org/missing" in self.path
        body = json.dumps({"error": "Repository not found"} if missing else
                          {"id": "EleutherAI/pythia-70m-deduped", "sha": "0" * 40, "siblings": []}).encode()
        self.send_response(404 if missing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_hub(monkeypatch) -> Iterator[str]:
    import huggingface_hub

    for name in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                 "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hub.seen = []
    huggingface_hub.close_session()  # its client reads the proxy variables when it is made
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    huggingface_hub.close_session()


def test_the_check_asks_the_endpoint_huggingface_hub_would(local_hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", local_hub)
    assert hub_reachable("EleutherAI/pythia-70m-deduped")
    assert Hub.seen == ["/api/models/EleutherAI/pythia-70m-deduped"]
    assert hub_reachable("org/missing")  # an answer, even a 404, means the hub is there


def test_the_check_goes_through_the_proxy(local_hub, monkeypatch):
    """The endpoint's name resolves nowhere; only a client that honours HTTP_PROXY reaches it."""
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid")
    assert not hub_reachable(timeout=2)
    import huggingface_hub

    monkeypatch.setenv("HTTP_PROXY", local_hub)
    huggingface_hub.close_session()
    assert hub_reachable(timeout=2)
    assert Hub.seen == ["http://hub.invalid/api/models/EleutherAI/pythia-70m-deduped"]


def test_no_answer_and_offline_mode_are_refused_in_one_line(local_hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid")
    with pytest.raises(NetworkUnavailableError, match=r"^The thing needs the Hugging Face hub, which this machine "
                                                       r"cannot reach \(endpoint http://hub.invalid\)\. Use profile="):
        require_network("The thing")
    monkeypatch.setenv("HF_ENDPOINT", local_hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NetworkUnavailableError, match=r"\(HF_HUB_OFFLINE is set\)"):
        require_network("The thing")
    assert Hub.seen == []  # offline mode asks nothing
