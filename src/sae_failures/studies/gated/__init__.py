"""Notebook 04: Gated SAEs (Rajamanoharan et al. 2024), GS-1 .. GS-8.

``experiment``: sites, sweeps, the shrinkage example, ablations, the claims and their rules;
``lengths``: GS-3, GS-4, GS-6, GS-7 with longer training (notebook 05). The Gated SAE and
its ablations are the ``variants.gated`` variants.
"""

NOTEBOOK = "04_gated_sae_pareto"
WORK = "[Rajamanoharan et al., Improving Dictionary Learning with Gated Sparse Autoencoders (NeurIPS 2024)](https://arxiv.org/abs/2404.16014)"  # the work it reproduces, as README and CLAIMS.md name it
VERSION = 2
