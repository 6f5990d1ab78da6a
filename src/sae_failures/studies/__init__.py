"""One folder per paper (and one for the quickstart and one for notebook 05).

Each study's ``__init__`` names its notebook (``NOTEBOOK``) and its ``VERSION``: the number
that keys its records (``runs.records``). Bump it when a change moves what the study
measures; the smoke pins (``runs.pins``) fail until you do. A study folder holds its
``experiment`` (spec builders, read-outs, claims and their verdict rules), ``plots``, its
long-run family for notebook 05 (``lengths``) where it has one, and its ``sizes``.
"""

STUDIES = ("quickstart", "suppression", "broken_latents", "alignment", "gated", "scale_and_seeds")


def notebook_study(notebook: str) -> str:
    """The study whose ``NOTEBOOK`` is ``notebook`` (a stem such as ``01_feature_suppression``)."""
    import importlib

    for study in STUDIES:
        if notebook == importlib.import_module(f"sae_failures.studies.{study}").NOTEBOOK:
            return study
    raise ValueError(f"No study runs the notebook {notebook!r}.")


def versions() -> dict[str, int]:
    """Every study's ``VERSION``: what a claims table records it was made under."""
    import importlib

    return {study: importlib.import_module(f"sae_failures.studies.{study}").VERSION for study in STUDIES}
