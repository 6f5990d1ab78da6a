"""The package's shape: cache keys that survive refactoring, module boundaries, notebooks that only assemble."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys

import pytest

from sae_failures.engine import specs as spec_module
from sae_failures.engine.activations import spec_for
from sae_failures.engine.paths import REPO_ROOT
from sae_failures.engine.specs import standard_spec
from sae_failures.profiles import PROFILES, TimesD, get_profile, resolve
from sae_failures.runs.notebooks import notebooks
from sae_failures.studies.alignment import experiment as alignment
from sae_failures.studies.broken_latents import experiment as broken_latents
from sae_failures.studies.gated import experiment as gated_saes
from sae_failures.studies.suppression import experiment as suppression

HOOK = "blocks.12.hook_resid_post"


def test_cache_keys_made_before_the_package_was_split_are_found_after_it(monkeypatch):
    """Keys computed by the code before specs / training / saes were separate modules, under
    the SAE cache version they were made with (a moved module changes no key; TopK's key
    changed when it gained the snapshots AB-10 reads, the fine-tunes' when they became
    constant-rate runs with a halfway snapshot)."""
    monkeypatch.setattr(spec_module, "CACHE_VERSION", 2)
    offline = get_profile("offline")
    train = spec_for(offline, HOOK, "train")
    assert train.key() == "99aa816fd385cba1"
    assert spec_for(offline, HOOK, "heldout").key() == "0f52bb7557a20f9f"
    assert spec_for(get_profile("smoke"), HOOK, "train").key() == "a259ed40d87bef3a"
    base = standard_spec(train, offline.train_tokens, offline.sae_batch_size, 576, autocast=True)
    assert base.path().name == "standard_unit_norm-w2304-s3-n1000000-seed0-c85b96ece0eb6d80"
    tune = offline.suppression
    assert suppression.finetune_spec(base, "Decoder", tune.finetune_tokens, tune.finetune_batch,
                                     offline.train_tokens).key() == "985085a35f634f5d"
    study = alignment.study_config(offline.alignment, 576)
    arch = alignment.architecture_specs(train, offline, study.width, 0, checkpoints=study.checkpoints)
    assert {name: spec.key() for name, spec in arch.items()} == {
        "standard": "1715e0cd6d0249d3", "topk": "502358b8a4f70501", "gated": "e260f00b4b966901",
        "jumprelu": "2834644ffa884d8c"}
    sweep = alignment.paired_sweep(train, study.sweep_l1, list(study.sweep_widths), study.sweep_tokens,
                                   offline.sae_batch_size, 0, offline.sae_autocast, study.checkpoints)
    assert sweep["aligned", 2304, 0.6].key() == "9f7b2156e3c27c8a"
    gated = gated_saes.study_config(offline.gated, 576)
    specs = gated_saes.sweep_specs(train, gated, offline.sae_batch_size, offline.sae_autocast)
    assert (specs["Gated", 1.5].key(), specs["baseline", 1.0].key()) == ("3c634e2e0ce292d4", "8995850e2c657997")
    assert gated_saes.rescale_shift_spec(specs["baseline", 1.0], gated.rescale_shift_tokens).key() == "868cbc5f00cd3ec9"
    toy = broken_latents.run_for(broken_latents.experiment("cooc_a/tied_aux"), 0, 1.0)
    assert toy.path().name == "tied_aux-k5-l10.01-n149995520-seed0-82d6cecd188c1bf7"


def test_each_entry_point_loads_only_the_stack_it_uses():
    """One interpreter, imports in the order a run makes them (a subprocess each would cost
    seconds of imports):

    - the command line and a claims table load neither sae-lens nor TransformerLens: every
      ``make`` target and notebook kernel starts a Python, and those imports cost each one
      seconds it did not use;
    - the toys come through ``get_saes`` without the language-model modules;
    - the first spec registers this repository's variants with sae-lens.
    """
    code = ("import sys\n"
            "import sae_failures.cli, sae_failures.engine.claims, sae_failures.profiles\n"
            "print(sorted(m for m in ('sae_lens', 'transformer_lens') if m in sys.modules))\n"
            "import sae_failures.engine.saes, sae_failures.studies.broken_latents.experiment\n"
            "import sae_failures.studies.broken_latents.plots\n"
            "print([m for m in ('sae_failures.engine.activations', 'sae_failures.engine.model', "
            "'sae_failures.engine.streaming', 'sae_failures.engine.splicing', 'sae_failures.engine.corpus') "
            "if m in sys.modules])\n"
            "from sae_failures.engine.specs import known_variants\n"
            "print(sorted({'gated_paper', 'aligned', 'tied_aux', 'scaled_finetune', 'standard_unit_norm'} "
            "- set(known_variants())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["[]", "[]", "[]"]


def test_dictionary_sizes_resolve_against_the_input_width():
    assert TimesD(4 / 1.5).of(576) == 1536  # not 1535: sizes round, they do not truncate
    assert resolve(4096, 768) == 4096 and resolve(TimesD(8), 512) == 4096


def _code_cells(path):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_no_module_or_notebook_switches_on_a_profile_name():
    switch = re.compile(r"\b(profile|settings|prof|P)\.name\s*(==|!=)|\.name\s+(==|!=)\s*\"(smoke|offline|paper)\"")
    sources = {p: p.read_text() for p in (REPO_ROOT / "src").rglob("*.py")}
    sources.update({p: "\n".join(_code_cells(p)) for p in notebooks()})
    found = [str(p.relative_to(REPO_ROOT)) for p, text in sources.items() if switch.search(text)]
    assert found == []


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_claims_cells_only_assemble_the_table(path):
    """Verdicts are computed in the package: a notebook adds claims, it never decides one."""
    code = "\n".join(_code_cells(path))
    assert "verdict(" not in code and ".record(" not in code
    assert "notebook.close(" in code
    assert "def " not in code.replace("def result(", "").replace("def figure(", "")  # no analysis helpers


def test_every_profile_names_every_study_section():
    for profile in PROFILES.values():
        tune = profile.suppression
        assert tune.finetune_tokens >= 2 * tune.finetune_batch  # a halfway snapshot, one batch in at least
        assert tune.finetune_tokens % tune.finetune_batch == 0
        assert profile.alignment.sweep_tokens <= profile.train_tokens
        assert profile.gated.ablation_site in {s.label for s in profile.gated.sites}


def import_graph(package_dir=REPO_ROOT / "src" / "sae_failures") -> dict[str, set[str]]:
    """Each of the package's modules -> the package's modules it imports, at any depth of its code
    (a lazy import inside a function counts: it runs too)."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        graph[name] = {m for m in imported if m in modules} - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, found, counter = {}, {}, [], [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path):
    pkg = tmp_path / "sae_failures"
    (pkg / "runs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "runs" / "__init__.py").write_text("")
    (pkg / "runs" / "a.py").write_text("from sae_failures.runs.b import f\n")
    (pkg / "runs" / "b.py").write_text("def f():\n    from sae_failures.runs import a\n")
    (pkg / "runs" / "c.py").write_text("import sae_failures.runs.a\n")
    assert cycles(import_graph(pkg)) == [["sae_failures.runs.a", "sae_failures.runs.b"]]


def test_no_module_imports_a_module_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_every_study_names_its_notebook_and_a_version():
    from sae_failures.studies import STUDIES, notebook_study

    stems = {p.stem for p in notebooks()}
    for study in STUDIES:
        module = importlib.import_module(f"sae_failures.studies.{study}")
        assert module.NOTEBOOK in stems and isinstance(module.VERSION, int) and module.VERSION >= 1
        assert notebook_study(module.NOTEBOOK) == study
    assert len({importlib.import_module(f"sae_failures.studies.{s}").NOTEBOOK for s in STUDIES}) == len(stems)
    with pytest.raises(ValueError, match="No study runs the notebook '99_demo'"):
        notebook_study("99_demo")
