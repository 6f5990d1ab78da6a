"""Reproductions of four papers on how sparse autoencoders fail.

Importing the package registers this repository's SAE variants with sae-lens, so
that every SAE trained here saves and loads through ``sae_lens``.
"""

from sae_failures import variants as _variants  # noqa: F401  (registers variants)

__version__ = "0.1.0"
