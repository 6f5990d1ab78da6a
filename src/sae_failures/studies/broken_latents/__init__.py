"""Notebook 02: broken latents and absorption in toy models (Chanin et al.), BL-1 .. BL-11.

``toy_data``: the posts' toy worlds on ``sae_lens.synthetic``; ``experiment``: the runs, the
read-outs and the claims over seeds; ``plots``: the posts' figures.
"""

NOTEBOOK = "02_broken_latents"
VERSION = 2
