"""Notebook 02: broken latents and absorption in toy models (Chanin et al.), BL-1 .. BL-11.

``toy_data``: the posts' toy worlds on ``sae_lens.synthetic``; ``experiment``: the runs, the
read-outs and the claims over seeds; ``plots``: the posts' figures.
"""

NOTEBOOK = "02_broken_latents"
WORK = "Chanin & Till, Broken Latents and Toy Models of Feature Absorption in SAEs (LessWrong, 2024)"  # the work it reproduces, as README and CLAIMS.md name it
VERSION = 2
