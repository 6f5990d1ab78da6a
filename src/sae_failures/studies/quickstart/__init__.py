"""Notebook 00: a standard SAE on a real language model, on a CPU (QS-1, QS-2).

``claims``: its two claims and their rules.
"""

NOTEBOOK = "00_quickstart"
WORK = "A standard SAE on a real language model, on a CPU (the other notebooks' starting point)"  # the work it reproduces, as README and CLAIMS.md name it
VERSION = 1
