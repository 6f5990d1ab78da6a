"""The shared engine: everything the studies have in common, and nothing about any one paper.

- Plumbing: ``paths`` (cache and figure folders, atomic writes), ``provenance`` (commit,
  library versions), ``devices``, ``distributed`` (torchrun), ``network`` (hub reachability).
- Model and corpus: ``model``, ``corpus``, ``offline_assets`` (weights and text from registry
  packages), ``standins`` (local hub stand-ins for ``make rehearse``).
- Activations: ``activations`` (harvested once, memory-mapped), ``streaming`` (from the model
  while training), ``sites`` (a site's train / held-out / CE data in one call).
- SAEs: ``specs`` (what determines one), ``cache`` (the one keyed cache), ``training`` (sae-lens
  trainers), ``toy_training`` (many small toy SAEs at once), ``saes`` (``get_saes``: cached or
  trained), ``training_length`` and ``length_rows`` (one long run read at doubling budgets).
- Measuring: ``metrics``, ``splicing`` (CE with the SAE spliced in), ``evaluation`` (one row
  per SAE), ``frontiers`` (sparsity-fidelity), ``calibration``, ``latent_matching``.
- Verdicts: ``claims`` (claims tables), ``seeds`` (rules over seeds and training length).
- ``plotting``: figure saving.

``VERSION`` is part of every record's key (``runs.records``): bump it when an engine change
moves numbers that every study reads (the smoke pins, ``runs.pins``, say when).
"""

VERSION = 1
