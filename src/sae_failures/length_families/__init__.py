"""Notebook 05's long runs, one module per paper: each measures its claims on SAEs trained
far past 1M tokens, through the paper's own read-outs and verdict functions.

One module per paper because a family's record (``records``) is keyed by the import closure
of its module: a fix to one paper's verdicts (``gated_saes``) then leaves the other papers'
records current, where one shared module made every record stale.
"""
