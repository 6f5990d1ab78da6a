"""Notebook 03: alignment-score bimodality (Brzozowski 2025), AB-1 .. AB-11.

``experiment``: the one-point toy, the architectures, sweeps and read-outs, the claims and
their rules; ``plots``: its figures; ``lengths``: AB-2, AB-3, AB-4, AB-7, AB-9, AB-10 with
longer training (notebook 05). The aligned SAE is the ``variants.aligned`` variant.
"""

NOTEBOOK = "03_alignment_bimodality"
WORK = "Brzozowski, Bimodality of Sparse Autoencoder Features is Still There and Can Be Fixed (2025)"  # the work it reproduces, as README and CLAIMS.md name it
VERSION = 2
