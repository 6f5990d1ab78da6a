"""Running the notebooks and keeping what they found.

``notebooks`` executes the numbered notebooks through papermill (``make figures``);
``setup`` is what each notebook calls first and last; ``seed_runs`` reruns the
language-model notebooks at more seeds; ``records`` keeps the results of long parts under
``results/`` keyed by what determines their numbers; ``pins`` checks that the smoke numbers
moved only where a study's version says so; ``rehearsal`` runs the paper profile against
local stand-ins; ``estimates`` and ``bench`` say what a run will cost.
"""
