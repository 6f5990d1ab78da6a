import pytest
import torch

from sae_failures.engine.model import load_model
from sae_failures.engine.network import NetworkUnavailableError
from sae_failures.profiles import PROFILES, get_profile


def test_offline_model_matches_huggingface_and_knows_paris(offline_model):
    from transformers import AutoModelForCausalLM

    from sae_failures.engine.offline_assets import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    hf = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokens = offline_model.to_tokens("The capital of France is", prepend_bos=False)
    with torch.no_grad():
        tl_logits = offline_model(tokens)
        hf_logits = hf(tokens).logits
    assert (tl_logits - hf_logits).abs().max() < 5e-5
    assert offline_model.tokenizer.decode(tl_logits[0, -1].argmax()) == " Paris"


def test_paper_model_without_network_names_the_offline_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing to load offline
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NetworkUnavailableError, match="profile='offline'"):
        load_model("EleutherAI/pythia-70m-deduped")


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown profile 'fast'.*smoke, offline, classroom, paper"):
        get_profile("fast")


def test_profiles_share_one_layer_inside_their_model():
    for profile in PROFILES.values():
        assert profile.default_layer in profile.suppression.layers
        assert profile.eval_tokens < profile.train_tokens
