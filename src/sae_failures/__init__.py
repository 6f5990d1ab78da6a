"""Reproductions of four papers on how sparse autoencoders fail.

A two-minute map of the package:

- ``engine/``: what every study shares and nothing about any one paper. Model and corpus,
  activations (harvested or streamed), SAE specs and the one keyed cache, training with
  sae-lens's trainers, ``saes.get_saes`` (the one way to get an SAE, language-model or toy),
  metrics and CE splicing, claims tables and the verdict rules over seeds and lengths.
- ``variants/``: the SAE architectures the libraries lack (Gated as the paper trains it,
  aligned, scaled fine-tunes, tied, unit-norm), one module each, registered with sae-lens
  so that every SAE trained here saves and loads with ``sae_lens.SAE``.
- ``studies/<paper>/``: one folder per notebook. ``quickstart`` (00), ``suppression`` (01),
  ``broken_latents`` (02), ``alignment`` (03), ``gated`` (04), ``scale_and_seeds`` (05).
  Each holds its ``experiment`` (spec builders, read-outs, claims and their verdict rules),
  its ``plots``, its ``sizes`` and, where notebook 05 trains it longer, its ``lengths``. Its
  ``__init__`` names the notebook and the study's ``VERSION``.
- ``runs/``: running notebooks (``notebooks``, ``execute``, ``setup``), reruns at more seeds
  (``seed_runs``), committed records of long parts (``records``, keyed by versions), the smoke
  pins that say when a version must be bumped (``pins``), the paper profile's rehearsal
  against stand-ins, cost estimates and benchmarks.
- ``profiles.py``: every size's value, per profile (smoke, offline, classroom, paper); ``cli.py``: what
  the Makefile calls.

Data flows one way: profile -> ``engine.sites`` (model, activations) -> ``engine.saes``
(trained or cached SAEs) -> a study's read-outs -> its claims -> ``figures/<profile>/`` and,
for notebook 05's long parts, ``results/<profile>/``.

Importing ``sae_failures.variants`` registers this repository's SAE variants with sae-lens;
``engine.specs``, through which every SAE is named, imports it, so anything that trains or
builds an SAE has them. The package itself imports nothing heavy: a claims table or the
command line's bookkeeping does not wait for torch and sae-lens.
"""

import warnings

# In a kernel without ipywidgets (papermill, nbval) tqdm falls back to text bars and warns with
# its install path; the text bar is what those runs want.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
