"""Device resolution, results brought to the CPU before numpy, and evaluation that streams."""

import ast
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from sae_failures.engine import metrics
from sae_failures.engine.devices import resolve_device
from sae_failures.engine.specs import ActivationSpec, SAESpec
from sae_failures.engine.training import build_training_sae
from sae_failures.profiles import DEVICE_ENV, get_profile
from sae_failures.studies.suppression.experiment import latent_stats

SRC = Path(__file__).resolve().parents[1] / "src" / "sae_failures"


def _sae(d=16, width=24, seed=0):
    acts = ActivationSpec("synthetic", "blocks.0.hook_resid_post", "none", "train", 2, 64, "float32")
    sae = build_training_sae(SAESpec("standard", acts, width, 1.0, 4096, batch_size=64, seed=seed), d)
    with torch.no_grad():  # a random SAE with some latents that never fire on the data below
        sae.b_enc.copy_(torch.linspace(-3, 0.5, width))
        sae.b_dec.copy_(torch.randn(d))
    return sae


def _data(n=1000, d=16):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(1)) * 2 + 5  # a large mean, as residuals


def test_streamed_reconstruction_metrics_equal_the_one_shot_definitions():
    sae, x = _sae(), _data()
    f, x_hat = metrics.encode_decode(sae, x)
    one_shot = {"l0": metrics.l0(f), "mse": metrics.mse(x, x_hat), "fvu": metrics.fvu(x, x_hat),
                "explained_variance": metrics.explained_variance(x, x_hat), "l2_ratio": metrics.l2_ratio(x, x_hat),
                "gamma": float(x_hat.pow(2).sum() / (x_hat * x).sum()),
                "dead_fraction": float(((f != 0).sum(0) == 0).float().mean()),
                "n_dead": int(((f != 0).sum(0) == 0).sum()), "n_eval_tokens": 1000}
    assert 0 < one_shot["n_dead"] < 24  # the case is not degenerate
    for batch in (7, 256, 1000):
        streamed = metrics.reconstruction_metrics(sae, x, batch_size=batch)
        assert streamed.keys() == one_shot.keys()
        for key, value in one_shot.items():
            assert streamed[key] == pytest.approx(value, rel=1e-5), (batch, key)


def test_streamed_latent_statistics_equal_the_one_shot_ones():
    sae, x = _sae(), _data()
    f = metrics.encode_decode(sae, x)[0]
    active = f > 0
    stats = latent_stats(sae, x)
    np.testing.assert_allclose(stats.frequency, active.float().mean(0).numpy(), rtol=1e-6)
    expected = torch.where(active.sum(0) > 0, (f * active).sum(0) / active.sum(0).clamp(min=1), 0.0)
    np.testing.assert_allclose(stats.strength, expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(metrics.firing_frequency(sae, x), stats.frequency)


class CountingSAE:
    """Wraps an SAE; records how many of its latent tensors are alive at each ``encode``."""

    def __init__(self, sae):
        self.sae, self.device, self.alive, self.peak = sae, sae.device, weakref.WeakSet(), 0

    def encode(self, x):
        f = self.sae.encode(x)
        self.alive.add(f)
        self.peak = max(self.peak, len(self.alive))
        return f

    def decode(self, f):
        return self.sae.decode(f)


@pytest.mark.parametrize("measure", [metrics.reconstruction_metrics, metrics.latent_firing])
def test_evaluation_holds_one_batch_of_latents_however_many_tokens(measure):
    # At the paper profile's 1M evaluation tokens, holding every latent took 16 GB at width
    # 2048 and 197 GB for GELU-1L's baseline; batch by batch, memory is one batch's.
    for n_batches in (4, 40):
        sae = CountingSAE(_sae())
        measure(sae, _data(n=64 * n_batches), batch_size=64)
        assert sae.peak <= 2, (n_batches, sae.peak)


def _numpy_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "numpy"
            and not node.args]


def test_no_tensor_meets_numpy_without_coming_to_the_cpu_first():
    # Tensor.numpy() raises on a CUDA tensor: the latent tables, the suppression analysis and
    # the toy read-outs each crashed on a GPU. Everything goes through devices.to_numpy.
    calls = [c for path in sorted(SRC.rglob("*.py")) if path.name != "devices.py" for c in _numpy_calls(path)]
    assert calls == []


def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch):
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else
                                      "mps" if torch.backends.mps.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_a_device_this_machine_lacks_or_a_bad_name_gets_one_clear_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"Device 'cuda:1' is not available on this machine\. Valid here: auto"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match=r"Unknown device 'gpu0'\. Valid: auto, cpu, cuda, cuda:<index>, mps\."):
        resolve_device("gpu0")


def test_profiles_resolve_their_device_with_an_override(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert get_profile("paper").device == resolve_device("auto")  # the paper profile no longer insists on cuda
    assert get_profile("smoke", device="cpu").device == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert get_profile("offline").device == "cpu"
    monkeypatch.setenv(DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        get_profile("offline")
