"""Local stand-ins for everything the paper profile fetches from the hub, for ``make rehearse``.

The paper tier needs a GPU and the network; neither is here. The rehearsal runs its code
anyway, against files that look to ``huggingface_hub``, transformers, TransformerLens,
sae-lens and datasets exactly like the hub's: a Hugging Face cache in the hub's own layout
(``models--<org>--<name>/{blobs, refs/main, snapshots/<revision>}``) that the libraries read
with ``HF_HUB_OFFLINE=1``, and parquet files in the layout of the hub's parquet conversion of
OpenWebText. The stand-ins differ from the real assets in their numbers only:

- models: the real configs (pythia-70m-deduped, pythia-160m-deduped: the hub's config.json;
  GELU-1L: the fields TransformerLens reads from its config.json), randomly initialised;
- tokenizers: byte-level BPE with the real special tokens, trained on Brown (8192 tokens);
- sae-lens releases: each release's own files and config format, random weights; the
  pythia-70m-deduped-res-sm stand-in has 4096 latents (the real one 32768), to fit the
  rehearsal's time; llama-3-8b-it-res-jh is not stood in (8B parameters' activations);
- corpus: the Brown corpus's 500 documents as two parquet files with a ``text`` column.

Everything is built once into ``data/standins/<key>/`` (a cache entry with a manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from sae_failures.engine.cache import config_key, ensure_entry
from sae_failures.engine.corpus import brown_documents
from sae_failures.engine.paths import data_dir

# The hub's config.json of each Pythia model (transformers 4.24 era, as the repos hold them).
_PYTHIA_COMMON = {
    "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu",
    "initializer_range": 0.02, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048, "model_type": "gpt_neox",
    "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False, "torch_dtype": "float16",
    "transformers_version": "4.24.0", "use_cache": True, "use_parallel_residual": True, "vocab_size": 50304,
}
PYTHIA_CONFIGS = {
    "EleutherAI/pythia-70m-deduped": {**_PYTHIA_COMMON, "hidden_size": 512, "intermediate_size": 2048,
                                      "num_attention_heads": 8, "num_hidden_layers": 6},
    "EleutherAI/pythia-160m-deduped": {**_PYTHIA_COMMON, "hidden_size": 768, "intermediate_size": 3072,
                                       "num_attention_heads": 12, "num_hidden_layers": 12},
}
GELU_1L = "NeelNanda/GELU_1L512W_C4_Code"
GELU_1L_TOKENIZER = "NeelNanda/gpt-neox-tokenizer-digits"
# What TransformerLens's convert_neel_model_config reads from the repo's config.json.
GELU_1L_CONFIG = {
    "n_layers": 1, "d_model": 512, "d_mlp": 2048, "d_head": 64, "n_heads": 8, "n_ctx": 1024, "d_vocab": 48262,
    "tokenizer_name": GELU_1L_TOKENIZER, "act_fn": "gelu", "attn_only": False, "normalization": "LN",
    "shortformer_pos": False, "ln_eps": 1e-05,
}
GELU_1L_WEIGHTS = "model_final.pth"  # TransformerLens loads the repo's file ending in final.pth

RES_SM_REPO = "ctigges/pythia-70m-deduped__res-sm_processed"
RES_SM_WIDTH = 4096
SAEBENCH_REPO = "canrager/saebench_gemma-2-2b_width-2pow12_date-1109"
SAEBENCH_FOLDER = "gemma-2-2b_topk_width-2pow12_date-1109/resid_post_layer_12/trainer_0"
SAEBENCH_SHAPE = (2304, 4096)  # gemma-2-2b's d_model, 2^12 latents
SAEBENCH_K = 20
NOT_STOOD_IN = {"llama-3-8b-it-res-jh": "its SAE is 4096 x 65536 on Llama-3-8B's residual stream, too large to stand "
                                        "in on this machine; the rehearsal histograms the other two releases"}

TOKENIZER_VOCAB = 8192
SPECIAL_TOKENS = ("<|endoftext|>", "<|padding|>")  # ids 0 and 1, as in the Pythia tokenizer
# the layout of the hub's parquet conversion of a large dataset, which datasets must find on its own
CORPUS_FILES = "openwebtext/plain_text/partial-train/{:04d}.parquet"
CORPUS_SHARDS = 2
HUB_DIR = "hf/hub"

STANDIN_VERSION = 3  # bump when a stand-in changes: the cache key changes with it


def standin_key() -> str:
    return config_key({"version": STANDIN_VERSION, "pythia": PYTHIA_CONFIGS, "gelu": GELU_1L_CONFIG,
                       "res_sm_width": RES_SM_WIDTH, "saebench": [SAEBENCH_FOLDER, *SAEBENCH_SHAPE, SAEBENCH_K],
                       "vocab": TOKENIZER_VOCAB, "shards": CORPUS_SHARDS})


def standins_dir() -> Path:
    """Build the stand-ins once (cached, verified on every use) and return their folder."""
    return ensure_entry(data_dir() / "standins" / standin_key(), build_standins, lambda path: path)


def environment(root: Path) -> dict[str, str]:
    """The variables that point every library at the stand-ins in ``root``, with the hub off."""
    # datasets' own cache stays outside the entry: a file written into it would fail the
    # entry's manifest and rebuild the stand-ins on the next run
    return {"HF_HOME": str(root / "hf"), "HF_HUB_CACHE": str(root / HUB_DIR), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(root.parent / "datasets-cache"),
            "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "SAE_FAILURES_OPENWEBTEXT": str(root / CORPUS_FILES.split("/")[0])}


class HubRepo:
    """Writes one repository into a Hugging Face cache the way ``huggingface_hub`` does."""

    def __init__(self, hub: Path, repo_id: str, repo_type: str = "model", absent: tuple[str, ...] = ()) -> None:
        self.root = hub / f"{repo_type}s--{repo_id.replace('/', '--')}"
        self.files: dict[str, Path] = {}
        self.absent = absent  # files the libraries probe for and the repo lacks (the hub answered 404)

    def add(self, name: str, path: Path) -> None:
        self.files[name] = path

    def add_json(self, name: str, content: dict, staging: Path) -> None:
        handle, path = tempfile.mkstemp(dir=staging, suffix=".json")
        with os.fdopen(handle, "w") as f:
            json.dump(content, f, indent=2)
        path = Path(path)
        self.add(name, path)

    def write(self) -> None:
        """Blobs named by content hash, a snapshot of relative symlinks, ``refs/main``, and the
        ``.no_exist`` markers an online load leaves for files the repo does not have."""
        digests = {name: _sha256(path) for name, path in self.files.items()}
        revision = hashlib.sha1(json.dumps(digests, sort_keys=True).encode()).hexdigest()
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "refs").mkdir(exist_ok=True)
        for name, path in self.files.items():
            blob = self.root / "blobs" / digests[name]
            os.replace(path, blob)
            link = self.root / "snapshots" / revision / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        for name in self.absent:
            marker = self.root / ".no_exist" / revision / name
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        (self.root / "refs" / "main").write_text(revision)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def train_tokenizer(texts: list[str]):
    """A byte-level BPE tokenizer (the Pythia tokenizer's kind) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    eos = SPECIAL_TOKENS[0]
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eos, eos_token=eos, unk_token=eos,
                                   pad_token=SPECIAL_TOKENS[1])


def _add_tokenizer(repo: HubRepo, tokenizer, staging: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir=staging))
    tokenizer.save_pretrained(folder)
    for path in folder.iterdir():
        repo.add(path.name, path)


def _pythia(hub: Path, repo_id: str, config: dict, tokenizer, staging: Path) -> None:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(int(hashlib.sha256(repo_id.encode()).hexdigest()[:8], 16))
    model = GPTNeoXForCausalLM(GPTNeoXConfig(**config)).to(torch.float16)
    folder = Path(tempfile.mkdtemp(dir=staging))
    model.save_pretrained(folder, safe_serialization=True)
    repo = HubRepo(hub, repo_id)
    repo.add("model.safetensors", folder / "model.safetensors")
    repo.add_json("config.json", config, staging)
    _add_tokenizer(repo, tokenizer, staging)
    repo.write()


def _gelu_1l(hub: Path, tokenizer, staging: Path) -> None:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(1)
    cfg = HookedTransformerConfig(n_layers=1, d_model=512, d_mlp=2048, d_head=64, n_heads=8, n_ctx=1024,
                                  d_vocab=48262, act_fn="gelu", normalization_type="LN")
    weights = staging / GELU_1L_WEIGHTS
    torch.save({k: v for k, v in HookedTransformer(cfg).state_dict().items()}, weights)
    repo = HubRepo(hub, GELU_1L)
    repo.add_json("config.json", GELU_1L_CONFIG, staging)
    repo.add(GELU_1L_WEIGHTS, weights)
    repo.write()
    tok_repo = HubRepo(hub, GELU_1L_TOKENIZER, absent=("config.json",))
    _add_tokenizer(tok_repo, tokenizer, staging)
    tok_repo.write()


def _res_sm(hub: Path, staging: Path) -> None:
    """pythia-70m-deduped-res-sm: sae-lens's own pre-6.0 format, one folder per layer."""
    from safetensors.torch import save_file

    d_in = PYTHIA_CONFIGS["EleutherAI/pythia-70m-deduped"]["hidden_size"]
    repo = HubRepo(hub, RES_SM_REPO)
    for layer in range(6):
        torch.manual_seed(100 + layer)
        w_dec = torch.nn.functional.normalize(torch.randn(RES_SM_WIDTH, d_in), dim=-1)
        w_enc = w_dec.T + 0.05 * torch.randn(d_in, RES_SM_WIDTH)  # not tied: alignment scores spread
        weights = {"W_enc": w_enc.contiguous(), "b_enc": -0.1 * torch.rand(RES_SM_WIDTH), "W_dec": w_dec,
                   "b_dec": torch.zeros(d_in)}
        folder = staging / f"res-sm-{layer}"
        folder.mkdir()
        save_file(weights, folder / "sae_weights.safetensors")
        save_file({"sparsity": torch.full((RES_SM_WIDTH,), -3.0)}, folder / "sparsity.safetensors")
        repo.add(f"{layer}-res-sm/sae_weights.safetensors", folder / "sae_weights.safetensors")
        repo.add(f"{layer}-res-sm/sparsity.safetensors", folder / "sparsity.safetensors")
        repo.add_json(f"{layer}-res-sm/cfg.json", {
            "model_name": "pythia-70m-deduped", "hook_point": f"blocks.{layer}.hook_resid_post",
            "hook_point_layer": layer, "hook_point_head_index": None, "dataset_path": "EleutherAI/the_pile_deduplicated",
            "is_dataset_tokenized": False, "context_size": 128, "d_in": d_in, "d_sae": RES_SM_WIDTH,
            "expansion_factor": RES_SM_WIDTH // d_in, "dtype": "float32", "device": "cuda", "prepend_bos": True,
            "normalize_activations": False}, staging)
    repo.write()


def _saebench(hub: Path, staging: Path) -> None:
    """The sae_bench Gemma release: dictionary_learning's ``config.json`` and ``ae.pt``."""
    d_in, width = SAEBENCH_SHAPE
    torch.manual_seed(7)
    w_dec = torch.nn.functional.normalize(torch.randn(width, d_in), dim=-1)
    weights = staging / "ae.pt"
    w_enc = w_dec + 0.05 * torch.randn(width, d_in)
    torch.save({"encoder.weight": w_enc, "encoder.bias": torch.zeros(width), "decoder.weight": w_dec.T.contiguous(),
                "b_dec": torch.zeros(d_in), "k": torch.tensor(SAEBENCH_K), "threshold": torch.tensor(-1.0)}, weights)
    repo = HubRepo(hub, SAEBENCH_REPO)
    repo.add(f"{SAEBENCH_FOLDER}/ae.pt", weights)
    repo.add_json(f"{SAEBENCH_FOLDER}/config.json", {
        "trainer": {"dict_class": "AutoEncoderTopK", "trainer_class": "TopKTrainer", "activation_dim": d_in,
                    "dict_size": width, "k": SAEBENCH_K, "layer": 12, "lm_name": "google/gemma-2-2b",
                    "submodule_name": "resid_post_layer_12"},
        "buffer": {"d_submodule": d_in, "ctx_len": 1024, "refresh_batch_size": 4, "out_batch_size": 2048}}, staging)
    repo.write()


def _corpus(root: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [doc.text for doc in brown_documents()]
    per = -(-len(texts) // CORPUS_SHARDS)
    for shard in range(CORPUS_SHARDS):
        path = root / CORPUS_FILES.format(shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"text": texts[shard * per:(shard + 1) * per]}), path)


def build_standins(root: Path) -> None:
    """Fill ``root`` with every stand-in (about 1 GB, a minute on two cores)."""
    hub = root / HUB_DIR
    staging = root / ".staging"
    staging.mkdir(parents=True)
    tokenizer = train_tokenizer([doc.text for doc in brown_documents()])
    for repo_id, config in PYTHIA_CONFIGS.items():
        _pythia(hub, repo_id, config, tokenizer, staging)
    _gelu_1l(hub, tokenizer, staging)
    _res_sm(hub, staging)
    _saebench(hub, staging)
    _corpus(root)
    for leftover in sorted(staging.rglob("*"), reverse=True):
        leftover.rmdir() if leftover.is_dir() else leftover.unlink()
    staging.rmdir()
