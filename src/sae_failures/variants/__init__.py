"""SAE variants the libraries lack, each one module registered with sae-lens.

Importing this package registers them; every registered variant saves an inference SAE
that plain ``sae_lens.SAE.load_from_disk`` loads (most as sae-lens's ``standard``).
"""

from sae_failures.variants import aligned, gated, scaled, tied, unit_norm  # noqa: F401
from sae_failures.variants.base import register

__all__ = ["register"]
