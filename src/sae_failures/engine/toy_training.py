"""Train many small toy SAEs at once, at the posts' 100M-150M samples each, on 2 CPU cores.

sae-lens's ``SAETrainer`` trains one toy SAE at about 3.5M samples/s at batch 8192 here
(``make bench``): notebook 02's 45 SAEs x 100M-150M samples would take ~26 minutes. So SAEs
of the same shape are stacked along a leading "member" axis and trained together (~7
minutes for all of them). Each member is still an sae-lens training SAE -- built (and
initialised) by sae-lens from its config, trained with Adam and per-SAE gradient-norm
clipping at 1 as ``SAETrainer`` does, with unit-norm decoder rows kept as
``standard_unit_norm`` keeps them, and saved by sae-lens -- so every SAE here reloads with
``sae_lens.SAE.load_from_disk``. They are cached as every SAE is: ``engine.saes.get_saes``
takes a ``ToyRun`` as it takes a language-model spec.

The reconstruction loss is computed in feature space. A toy input is x = f Phi (f the
feature activations, Phi the unit feature vectors), so with W = W_dec

    ||x_hat - x||^2 = h (W W^T) h^T + 2 h.W b + ||b||^2 - 2 h.(f Phi W^T) - 2 b.(f Phi) + ||f Phi||^2

needs per sample only K- and F-sized products: the input dimension drops out of the inner
loop. ``test_toy_training`` pins loss and gradients against sae-lens's own
``training_forward_pass`` on the explicit x.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from sae_failures.engine.cache import config_key
from sae_failures.engine.paths import data_dir
from sae_failures.engine.toy_data import ToySetup, build_dictionary, build_generator
from sae_failures.variants.tied import (
    RunningMax,
    TiedAuxTrainingSAEConfig,
    TiedTrainingSAE,
    TiedTrainingSAEConfig,
    activation_orthogonality_loss,
    aux_ramp,
)
from sae_failures.variants.unit_norm import UnitNormTrainingSAE, UnitNormTrainingSAEConfig

TOY_CACHE_VERSION = 3
N_LOG_POINTS = 100
ARCHITECTURES: dict[str, tuple[type, type]] = {
    "untied": (UnitNormTrainingSAE, UnitNormTrainingSAEConfig),
    "tied": (TiedTrainingSAE, TiedTrainingSAEConfig),
    "tied_aux": (TiedTrainingSAE, TiedAuxTrainingSAEConfig),
}


@dataclass(frozen=True)
class ToyRun:
    """Everything that determines one trained toy SAE (and so its cache key)."""

    setup: ToySetup  # the toy world it trains on
    architecture: str  # "untied" (sae-lens variant standard_unit_norm), "tied" or "tied_aux"
    d_sae: int
    seed: int
    l1_coefficient: float
    n_samples: int
    lr: float = 3e-4
    batch_size: int = 4096
    options: tuple[tuple[str, Any], ...] = field(default=())  # extra sae-lens config fields

    def __post_init__(self) -> None:
        if not isinstance(self.setup, ToySetup):
            raise ValueError(f"A toy run's setup is a ToySetup, got {self.setup!r}.")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"Unknown toy architecture {self.architecture!r}. "
                             f"Valid: {', '.join(ARCHITECTURES)}.")
        problems = [(self.d_sae >= 1, f"d_sae must be at least 1 latent, got {self.d_sae}"),
                    (self.batch_size >= 1, f"batch_size must be positive, got {self.batch_size}"),
                    (self.n_samples >= self.batch_size,
                     f"n_samples {self.n_samples} is less than one batch of {self.batch_size}"),
                    (self.l1_coefficient >= 0, f"l1_coefficient must be 0 or more, got {self.l1_coefficient}"),
                    (self.lr > 0, f"lr must be positive, got {self.lr}")]
        for ok, message in problems:
            if not ok:
                raise ValueError(f"Toy run {self.setup.name}/{self.architecture}: {message}.")

    def to_dict(self) -> dict[str, Any]:
        """The fields, the setup by its name."""
        return {**asdict(self), "setup": self.setup.name}

    def key(self) -> str:
        return config_key({**self.to_dict(), "cache_version": TOY_CACHE_VERSION})

    def path(self) -> Path:
        name = f"{self.architecture}-k{self.d_sae}-l1{self.l1_coefficient:g}-n{self.n_samples}-seed{self.seed}"
        return data_dir() / "toy_saes" / self.setup.name / f"{name}-{self.key()}"

    @property
    def tied(self) -> bool:
        return self.architecture != "untied"

    def build(self) -> Any:
        """The sae-lens training SAE, initialised from ``seed`` as sae-lens does."""
        sae_class, config_class = ARCHITECTURES[self.architecture]
        valid = {f.name for f in dataclasses.fields(config_class)}
        unknown = sorted(set(dict(self.options)) - valid)
        if unknown:
            raise ValueError(f"Unknown option(s) {unknown} for {self.architecture!r}. Valid: {', '.join(sorted(valid))}.")
        cfg = config_class(d_in=self.setup.d_in, d_sae=self.d_sae,
                           l1_coefficient=self.l1_coefficient, **dict(self.options))
        cfg.metadata.model_name = f"toy:{self.setup.name}"
        torch.manual_seed(self.seed)
        sae = sae_class(cfg)
        sae.apply_constraints()  # unit-norm rows from the start, as its first training step does
        return sae


def aux_options(n_samples: int) -> tuple[tuple[str, Any], ...]:
    """The post's aux schedule (delay 50M, warm-up 50M of 150M) scaled to ``n_samples``."""
    third = n_samples // 3
    return (("aux_delay_samples", third), ("aux_warmup_samples", third))


def stream_seed(setup: str) -> int:
    """Each setup has one data stream, shared by every seed and architecture trained on it:
    seeds differ in SAE initialisation and feature vectors, and architectures are compared
    on identical data. (One stream instead of one per seed triples data throughput.)"""
    return int(hashlib.sha256(setup.encode()).hexdigest()[:8], 16)


@dataclass
class _Stacked:
    """Parameters of M same-shaped SAEs, stacked on a leading member axis."""

    W_dec: torch.Tensor  # [M, K, D]
    W_enc: torch.Tensor  # [M, D, K] (ignored for tied members)
    b_enc: torch.Tensor  # [M, 1, K] (ignored for tied members)
    b_dec: torch.Tensor  # [M, 1, D]
    tied: torch.Tensor  # [M, 1, 1] bool

    @classmethod
    def from_saes(cls, saes: Sequence[Any], tied: Sequence[bool]) -> _Stacked:
        def stack(get):
            return torch.stack([get(s).detach().clone() for s in saes]).requires_grad_(True)
        return cls(
            W_dec=stack(lambda s: s.W_dec),
            W_enc=stack(lambda s: s.W_enc),
            b_enc=stack(lambda s: s.b_enc.unsqueeze(0)),
            b_dec=stack(lambda s: s.b_dec.unsqueeze(0)),
            tied=torch.tensor(tied).view(-1, 1, 1),
        )

    def params(self) -> list[torch.Tensor]:
        return [self.W_dec, self.W_enc, self.b_enc, self.b_dec]

    def encoder(self) -> tuple[torch.Tensor, torch.Tensor]:
        W_enc = torch.where(self.tied, self.W_dec.transpose(1, 2), self.W_enc)
        b_enc = torch.where(self.tied, torch.zeros_like(self.b_enc), self.b_enc)
        return W_enc, b_enc

    @torch.no_grad()
    def project_and_normalise_rows(self, after_step: bool) -> None:
        """Unit-norm decoder rows, kept as ``UnitNormTrainingSAE`` keeps them: the gradient's
        component along each row is removed before the step, the row renormalised after."""
        rows = self.W_dec / self.W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        if after_step:
            self.W_dec.copy_(rows)
        elif self.W_dec.grad is not None:
            self.W_dec.grad -= (self.W_dec.grad * rows).sum(-1, keepdim=True) * rows

    @torch.no_grad()
    def write_back(self, saes: Sequence[Any]) -> None:
        for m, sae in enumerate(saes):
            sae.W_dec.copy_(self.W_dec[m])
            sae.b_dec.copy_(self.b_dec[m, 0])
            if not self.tied[m]:
                sae.W_enc.copy_(self.W_enc[m])
                sae.b_enc.copy_(self.b_enc[m, 0])


def feature_space_losses(p: _Stacked, f: torch.Tensor, phi: torch.Tensor, l1: torch.Tensor,
                         aux_coefficient: torch.Tensor | None = None,
                         thresholds: torch.Tensor | None = None,
                         with_constant: bool = False,
                         weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-member losses [M] of sae-lens's standard objective (+ the tied aux loss).

    f [M, F, B] feature activations (batch last: skinny matmuls run ~2.5x faster this way
    on CPU), phi [M, F, D] feature vectors, l1 [M]. The MSE is summed over the input
    dimension and averaged over the batch, like sae-lens; its parameter-free term
    ||f Phi||^2 is added only when ``with_constant`` (for logging). ``weights`` [M, B]
    (summing to 1) replace the batch mean when the columns of f are distinct firing
    patterns with their batch frequencies. Activations come back as ``h`` [M, K, B].
    """
    def batch_mean(t: torch.Tensor) -> torch.Tensor:
        if weights is None:
            return t.mean(-1)
        return (t * weights.view(weights.shape[0], *[1] * (t.dim() - 2), -1)).sum(-1)

    W_enc, b_enc = p.encoder()
    W_dec_t = p.W_dec.transpose(1, 2)  # [M, D, K]
    K = W_enc.shape[-1]
    proj = (phi @ torch.cat([W_enc, W_dec_t], dim=-1)).transpose(1, 2) @ f  # [M, 2K, B]
    f_enc, f_dec = proj[:, :K], proj[:, K:]  # (f Phi) W_enc, (f Phi) . W_j
    w_dot_b = p.W_dec @ p.b_dec.transpose(1, 2)  # [M, K, 1]: W_j . b
    hidden_pre = f_enc + (b_enc - p.b_dec @ W_enc).transpose(1, 2)
    h = torch.relu(hidden_pre)
    gram = p.W_dec @ W_dec_t  # [M, K, K]
    u = gram @ h + 2 * w_dot_b - 2 * f_dec
    f_mean_phi = batch_mean(f).unsqueeze(1) @ phi  # [M, 1, D]
    b_sq = p.b_dec.square().sum(dim=(-2, -1))
    mse = batch_mean((u * h).sum(1)) + b_sq - 2 * (f_mean_phi * p.b_dec).sum(dim=(-2, -1))
    out = {"l0": batch_mean((h > 0).float().sum(1)).detach()}
    if with_constant or aux_coefficient is not None:
        f_sq = ((phi @ phi.transpose(1, 2) @ f) * f).sum(1)  # ||f Phi||^2, [M, B]
    if with_constant:
        mse = mse + batch_mean(f_sq)
        out["variance"] = (batch_mean(f_sq) - f_mean_phi.square().sum(dim=(-2, -1))).detach()
    w_sq = p.W_dec.square().sum(-1)  # [M, K]
    out["mse"] = mse
    out["l1"] = batch_mean((h * w_sq.sqrt().unsqueeze(-1)).sum(1))
    loss = mse + l1 * out["l1"]
    if aux_coefficient is not None and thresholds is not None:
        x_sq = f_sq - 2 * (p.b_dec @ phi.transpose(1, 2) @ f).squeeze(1) + b_sq.unsqueeze(-1)
        out["aux"] = activation_orthogonality_loss((f_dec - w_dot_b).transpose(1, 2), x_sq, w_sq,
                                                   h.transpose(1, 2), thresholds, aux_coefficient,
                                                   weights=weights)
        loss = loss + out["aux"]
    out["loss"] = loss
    out["h"] = h
    return out


class PatternBatcher:
    """A batch as counts over firing patterns, for setups with few features.

    With constant magnitudes a sample is determined by which features fire, so a batch of
    4-feature samples has at most 16 distinct inputs: the loss over the batch equals the
    loss over those patterns weighted by their batch frequencies, exactly, at 1/500th of
    the work. Used when every setup of a group has at most ``MAX_FEATURES`` features.
    """

    MAX_FEATURES = 8

    def __init__(self, magnitudes: torch.Tensor):
        n = len(magnitudes)
        codes = torch.arange(2 ** n)
        self.bits = 2 ** torch.arange(n)
        self.patterns = ((codes[None, :] & self.bits[:, None]) > 0).float() * magnitudes[:, None]  # [F, 2^F]

    def weights(self, f: torch.Tensor) -> torch.Tensor:
        """f [B, F] -> frequency of every pattern in the batch, [2^F]."""
        codes = ((f > 0).long() * self.bits).sum(-1)
        return torch.bincount(codes, minlength=self.patterns.shape[1]).float() / len(f)


@torch.no_grad()
def clip_per_member(params: Sequence[torch.Tensor], max_norm: float = 1.0) -> None:
    """``torch.nn.utils.clip_grad_norm_`` applied to each member's own gradient."""
    sq = sum(g.grad.square().flatten(1).sum(1) for g in params)  # type: ignore[union-attr]
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in params:
        g.grad.mul_(coef.view(-1, *([1] * (g.dim() - 1))))  # type: ignore[union-attr]


def toy_groups(runs: Sequence[ToyRun]) -> list[list[ToyRun]]:
    """``runs`` in groups that ``train_group`` trains stacked (one shape, sample count, batch size
    and lr), in the order of their cache paths."""
    groups: dict[tuple, list[ToyRun]] = {}
    for run in sorted(dict.fromkeys(runs), key=lambda r: str(r.path())):
        groups.setdefault(_group_key(run), []).append(run)
    return list(groups.values())


def _group_key(run: ToyRun) -> tuple:
    setup = run.setup
    return (setup.n_features, setup.d_in, run.d_sae, run.n_samples, run.batch_size, run.lr)


def train_group(runs: Sequence[ToyRun], progress: bool = True) -> tuple[list[Any], list[list[dict[str, float]]]]:
    """Train same-shaped runs together; returns their trained sae-lens training SAEs and histories."""
    if len({_group_key(r) for r in runs}) != 1:
        raise ValueError("train_group needs runs of one shape, sample count, batch size and lr.")
    first = runs[0]
    saes = [r.build() for r in runs]
    params = _Stacked.from_saes(saes, [r.tied for r in runs])
    worlds = {r.setup.name: r.setup for r in runs}
    setups = sorted(worlds)
    generators = [build_generator(worlds[name], seed=stream_seed(name)) for name in setups]
    member_stream = torch.tensor([setups.index(r.setup.name) for r in runs])
    phi = torch.stack([build_dictionary(r.setup, r.seed).feature_vectors.detach() for r in runs])
    batchers = None
    constant = all(bool((g.std_firing_magnitudes == 0).all()) for g in generators)
    if constant and first.setup.n_features <= PatternBatcher.MAX_FEATURES:
        batchers = [PatternBatcher(g.mean_firing_magnitudes) for g in generators]
        patterns = torch.stack([b.patterns for b in batchers])[member_stream]
    l1 = torch.tensor([r.l1_coefficient for r in runs])
    cfgs = [s.cfg for s in saes]
    aux_coef = torch.tensor([getattr(c, "aux_coefficient", 0.0) for c in cfgs])
    has_aux = bool((aux_coef > 0).any())
    frac = torch.tensor([getattr(c, "aux_threshold_frac", 0.0) for c in cfgs]).unsqueeze(-1)
    schedule = [(getattr(c, "aux_delay_samples", 0), getattr(c, "aux_warmup_samples", 0)) for c in cfgs]
    running = RunningMax(max(getattr(c, "aux_window", 1) for c in cfgs), (len(runs), first.d_sae))
    optimizer = torch.optim.Adam(params.params(), lr=first.lr, betas=(0.9, 0.999), foreach=True)
    n_steps = first.n_samples // first.batch_size
    log_every = max(1, n_steps // N_LOG_POINTS)
    histories: list[list[dict[str, float]]] = [[] for _ in runs]
    desc = f"toy SAEs {','.join(setups)} x{len(runs)}"
    for step in tqdm(range(n_steps), desc=desc, disable=not progress, mininterval=2.0):
        samples = step * first.batch_size
        batches = [g.sample(first.batch_size) for g in generators]
        if batchers is None:
            f, weights = torch.stack([b.T for b in batches])[member_stream], None
        else:
            f = patterns
            weights = torch.stack([bt.weights(b) for bt, b in zip(batchers, batches, strict=True)])[member_stream]
        ramps = torch.tensor([aux_ramp(samples, delay, warmup) for delay, warmup in schedule]) if has_aux else None
        use_aux = ramps is not None and bool((ramps * aux_coef > 0).any())
        logging = step % log_every == 0 or step == n_steps - 1
        out = feature_space_losses(
            params, f, phi, l1, with_constant=logging, weights=weights,
            aux_coefficient=ramps * aux_coef if use_aux else None,
            thresholds=ramps.unsqueeze(-1) * frac * running.value if use_aux else None)
        if has_aux:  # the threshold uses the maxima of previous batches, as in TiedTrainingSAE
            running.update(out["h"].amax(-1) if weights is None else (out["h"] * (weights > 0).unsqueeze(1)).amax(-1))
        optimizer.zero_grad(set_to_none=True)
        out["loss"].sum().backward()
        params.project_and_normalise_rows(after_step=False)
        clip_per_member(params.params())
        optimizer.step()
        params.project_and_normalise_rows(after_step=True)
        if logging:
            logged = {k: out[k].detach() for k in ("mse", "l1", "l0", "aux") if k in out}
            logged["fvu"] = logged["mse"] / out["variance"]
            for m, hist in enumerate(histories):
                hist.append({"samples": samples + first.batch_size,
                             **{k: float(v[m]) for k, v in logged.items()}})
    params.write_back(saes)
    return saes, histories
