"""Notebook 05: every language-model claim over seeds and training length.

``experiment``: the length claims, their rules, the parts of the study and the claims it
writes; ``plots``: verdicts per seed and each length claim's curve. Its numbers are the
other studies' (their seed runs and ``lengths`` families, recorded under ``results/``);
its own rules read them, so changing a rule here re-reads the records.
"""

NOTEBOOK = "05_scale_and_seeds"
WORK = "All four, rechecked at three seeds and with longer training"  # the work it reproduces, as README and CLAIMS.md name it
VERSION = 2
