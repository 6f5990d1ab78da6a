"""Notebook 01: feature suppression (Wright & Sharkey 2024), FS-1 .. FS-9.

``experiment``: the one-feature toy, base and fine-tune specs, per-latent read-outs, the
claims and their rules; ``lengths``: FS-4, FS-8, FS-9 with longer training (notebook 05).
The fine-tuning methods themselves are the ``variants.scaled`` SAE.
"""

NOTEBOOK = "01_feature_suppression"
WORK = "[Wright & Sharkey, Addressing Feature Suppression in SAEs (2024)](https://www.alignmentforum.org/posts/3JuSjTZyMzaSeTxKk/addressing-feature-suppression-in-saes)"  # the work it reproduces, as README and CLAIMS.md name it
VERSION = 2
