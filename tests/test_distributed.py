"""torchrun: two processes (gloo, CPU) share a cell's SAE groups and end with one process's SAEs."""

import os
import socket
import subprocess
import sys

import torch

from sae_failures.engine import distributed
from sae_failures.engine.activations import ActivationStore
from sae_failures.engine.saes import get_saes
from sae_failures.engine.specs import ActivationSpec, SAESpec
from tests.conftest import write_store

STORE = ActivationSpec("synthetic", "blocks.0.hook_resid_post", "none", "train", 2, 4096, "float32")


def specs(store_spec: ActivationSpec) -> dict[str, SAESpec]:
    """Four groups (one seed each), one of them with two SAEs."""
    made = {f"seed{s}": SAESpec("standard_unit_norm", store_spec, 8, 0.1, 2048, lr=3e-2, batch_size=256, seed=s)
            for s in range(4)}
    made["topk"] = SAESpec("topk", store_spec, 8, 3, 2048, lr=3e-2, batch_size=256, seed=1)
    return made


CHILD = """
import os, torch
from sae_failures.engine import saes
from sae_failures.engine import distributed
from sae_failures.engine.activations import ActivationStore
from tests.test_distributed import STORE, specs
trained = []
train = saes._train_group
saes._train_group = lambda group, *a: trained.extend(s.path().name for s in group) or train(group, *a)
store = ActivationStore(STORE)
got = saes.get_saes(specs(STORE), store)
root = os.environ["SAE_FAILURES_DATA"]
torch.save({"trained": trained, "saes": {k: v.state_dict() for k, v in got.items()}},
           f"{root}/rank{distributed.rank()}.pt")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_process_shares_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.share([1, 2, 3]) == [1, 2, 3] and distributed.local_device() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.share([1, 2, 3, 4, 5]) == [2, 4]


def test_two_ranks_split_the_groups_and_end_with_the_one_process_saes(tmp_data, tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    write_store(torch.randn(4096, 16, generator=gen) * 2 + 1)
    root = os.environ["SAE_FAILURES_DATA"]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(child)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [torch.load(f"{root}/rank{r}.pt") for r in (0, 1)]
    trained = [set(r["trained"]) for r in ranks]
    assert trained[0] and trained[1] and not trained[0] & trained[1]  # each group trained once, by one rank
    assert len(trained[0] | trained[1]) == 5

    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_path / "one-process"))
    write_store(torch.randn(4096, 16, generator=torch.Generator().manual_seed(0)) * 2 + 1)
    alone = get_saes(specs(STORE), ActivationStore(STORE))
    for name, sae in alone.items():
        for key, value in sae.state_dict().items():
            assert torch.equal(ranks[0]["saes"][name][key], value) and torch.equal(ranks[1]["saes"][name][key], value)
