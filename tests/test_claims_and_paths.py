import json

import pytest

from sae_failures.engine.claims import STALE_RECHECK, ClaimsTable, assemble, verdict
from sae_failures.engine.paths import atomic_path
from sae_failures.runs.notebooks import notebooks


def test_verdict_rules():
    assert verdict(True) == "reproduced"
    assert verdict(False, partially=True) == "partial"
    assert verdict(False) == "not_reproduced"


def test_claims_json_and_assembled_table(tmp_data):
    table = ClaimsTable("99_demo", "smoke", "tiny", setup={"layer": 3, "train_tokens": 100})
    table.record("X-1", "a | b", "0.5", "0.49", "reproduced", evidence="fig.png")
    table.record("X-2", "needs a judge", "0.3", "-", "not_attempted", notes="no LLM judge")
    data = json.loads(table.write().read_text())
    assert set(data) == {"notebook", "profile", "model", "git_commit", "created", "setup", "study_versions", "claims"}
    assert [c["id"] for c in data["claims"]] == ["X-1", "X-2"]
    assert data["setup"]["layer"] == 3
    text = assemble("smoke").read_text()
    assert "| X-1 | reproduced | a \\| b | 0.5 | 0.49 | seed 0 only | - | [fig.png](99_demo/fig.png) |" in text
    assert "| X-2 | not attempted | needs a judge | 0.3 | - | - | - |  |\n\nNotes:\n\n- **X-2**: no LLM judge\n" in text
    assert "**2 claims:** 1 reproduced, 1 not attempted." in text

    # a later notebook rechecking X-1 over seeds and training fills in its columns, and its
    # headline is the claim's: X-1 still counts once
    later = ClaimsTable("99_later", "smoke", "tiny")
    later.record("X-1", "a | b", "0.5", "0.49, 0.51, 0.47", "partial", seeds="2/3 seeds",
                 more_training="undecided: still moving", headline="undecided")
    later.write()
    text = assemble("smoke").read_text()
    assert "| X-1 | undecided | a \\| b | 0.5 | 0.49 | 2/3 seeds | undecided: still moving | [fig.png](99_demo/fig.png) |" in text
    assert "| X-1 | undecided | a \\| b | 0.5 | 0.49, 0.51, 0.47 | 2/3 seeds | undecided: still moving |  |" in text
    assert "**2 claims:** 1 undecided, 1 not attempted." in text
    assert "its seeds combined by 90% Wilson intervals with a seed's own `partial` kept as partial" in text


def test_a_recheck_made_under_older_rules_is_marked_stale_not_combined(tmp_data):
    """Notebook 05's seeds and length study once fed the headline whatever rules they ran under:
    after a study's rules changed, a stale recheck would have spoken for a fresh run."""
    own = ClaimsTable("01_x", "smoke", "tiny", versions={"suppression": 3})
    own.record("FS-5", "s", "p", "m", "reproduced")
    own.write()
    later = ClaimsTable("05_x", "smoke", "tiny", versions={"suppression": 2})
    later.record("FS-5", "s", "p", "m", "not_reproduced", seeds="0/3 seeds", headline="not reproduced")
    later.write()
    text = assemble("smoke", {"suppression": 3}).read_text()
    assert f"| FS-5 | reproduced | s | p | m | {STALE_RECHECK} | {STALE_RECHECK} |" in text
    assert "**1 claims:** 1 reproduced." in text
    current = assemble("smoke", {"suppression": 2}).read_text()  # made under today's rules: combined
    assert "| FS-5 | not reproduced | s | p | m | 0/3 seeds |" in current
    assert "**Judged under older rules (suppression version 3, now 2).**" in current  # 01_x's own table
    assert text.count("Judged under older rules") == 1  # 05_x's, under version 2 against 3 now


def test_claims_reject_bad_rows():
    table = ClaimsTable("99_demo", "smoke", "tiny")
    with pytest.raises(ValueError, match="Valid verdicts"):
        table.record("X-1", "s", "1", "1", "yes")
    with pytest.raises(ValueError, match="needs the reason"):
        table.record("X-1", "s", "1", "-", "not_attempted")
    with pytest.raises(ValueError, match="judged unmeasurable needs the reason"):
        table.record("X-1", "s", "1", "-", "unmeasurable")
    with pytest.raises(ValueError, match="unknown magnitude 'big'"):
        table.record("X-1", "s", "1", "1", "reproduced", magnitude="big")
    table.record("X-1", "s", "1", "1", "partial")
    with pytest.raises(ValueError, match="already recorded"):
        table.record("X-1", "s", "1", "1", "partial")


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "cache" / "thing"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as staged:
        staged.write_text("half")
        raise KeyboardInterrupt
    assert not target.exists()
    assert list((tmp_path / "cache").iterdir()) == []
    with atomic_path(target) as staged:
        staged.write_text("whole")
    assert target.read_text() == "whole"


def test_unknown_notebook_selection_lists_valid_ones():
    with pytest.raises(ValueError, match="No notebook matches"):
        notebooks(["77"])


def test_committed_notebook_loses_papermills_injected_parameters(tmp_path):
    import nbformat

    from sae_failures.runs.notebooks import commit_outputs

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("profile = 'offline'", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(profile)")])
    nbformat.write(nb, tmp_path / "executed.ipynb")
    commit_outputs(tmp_path / "executed.ipynb", tmp_path / "committed.ipynb")
    kept = nbformat.read(tmp_path / "committed.ipynb", as_version=4).cells
    assert [c.source for c in kept] == ["profile = 'smoke'", "print(profile)"]


def test_carriage_returns_render_as_a_terminal_shows_them():
    from sae_failures.runs.notebooks import render_carriage_returns

    assert render_carriage_returns("\r 0%|  | 0/4\r50%|# | 2/4\r100%|##| 4/4\n") == "100%|##| 4/4\n"
    assert render_carriage_returns("abcd\rxy") == "xycd"  # a shorter redraw overwrites only its width
    assert render_carriage_returns("bar 1/2\r       \rdone\n\nnext") == "done\n\nnext"
    assert render_carriage_returns("\rtransient\r         \r") == ""  # a leave=False bar leaves nothing


def test_collapse_streams_merges_redraws_and_keeps_other_outputs():
    import nbformat

    from sae_failures.runs.notebooks import collapse_streams

    out = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("train()", outputs=[
        out("stream", name="stderr", text="\rtrain:   0%| 0/2"),
        out("stream", name="stderr", text="\rtrain:  50%| 1/2"),
        out("stream", name="stderr", text="\rtrain: 100%| 2/2\n"),
        out("stream", name="stdout", text="loss 0.5\n"),
        out("stream", name="stderr", text="\rCE  0%\r      \r"),
        out("execute_result", data={"text/plain": "1"}, execution_count=1)])
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    collapse_streams(nb)
    kept = nb.cells[0].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in kept] == [
        ("stream", "stderr", "train: 100%| 2/2\n"), ("stream", "stdout", "loss 0.5\n"),
        ("execute_result", None, None)]
    assert "outputs" not in nb.cells[1]


def test_compare_runs_ignores_provenance_and_names_what_differs(tmp_path, monkeypatch):
    from sae_failures.engine.claims import Claim, compare_runs

    for run, measured in (("a", "1.0"), ("b", "1.0"), ("c", "2.0")):
        monkeypatch.setenv("SAE_FAILURES_FIGURES", str(tmp_path / run))
        table = ClaimsTable("01_x", "smoke", "m", setup={"tokens": 10})
        table.add(Claim("X-1", "s", "p", measured, "reproduced"))
        table.write()
    a, b, c = (tmp_path / run / "smoke" for run in "abc")
    assert compare_runs(a, b) == ["01_x: identical apart from created, git_commit"]
    assert compare_runs(a, c) == ["01_x: differs in claims [X-1], setup []"]


def test_compare_runs_reads_empty_new_claim_fields_as_absent(tmp_path, monkeypatch):
    """A run written before Claim had ``seeds`` / ``more_training`` agrees with one that leaves them empty."""
    from sae_failures.engine.claims import Claim, compare_runs

    monkeypatch.setenv("SAE_FAILURES_FIGURES", str(tmp_path / "new"))
    table = ClaimsTable("01_x", "smoke", "m", setup={"tokens": 10})
    table.add(Claim("X-1", "s", "p", "1.0", "reproduced"))
    path = table.write()
    old = json.loads(path.read_text())
    for c in old["claims"]:
        del c["seeds"], c["more_training"]
    (tmp_path / "old" / "smoke" / "01_x").mkdir(parents=True)
    (tmp_path / "old" / "smoke" / "01_x" / "claims.json").write_text(json.dumps(old))
    assert compare_runs(tmp_path / "old" / "smoke", tmp_path / "new" / "smoke") == [
        "01_x: identical apart from created, git_commit"]
    old["claims"][0]["seeds"] = "3/3 seeds"
    (tmp_path / "old" / "smoke" / "01_x" / "claims.json").write_text(json.dumps(old))
    assert compare_runs(tmp_path / "old" / "smoke", tmp_path / "new" / "smoke") == [
        "01_x: differs in claims [X-1], setup []"]


def test_claims_credit_the_commit_a_run_started_from(tmp_data, monkeypatch):
    """A commit made while a long notebook runs is not the code that computed its numbers."""
    from sae_failures.engine import provenance
    from sae_failures.runs import setup as notebook_setup

    provenance.run_commit.cache_clear()
    try:
        monkeypatch.setattr(provenance, "git_commit", lambda: "abc123")
        notebook_setup.start("quickstart", "smoke")  # the notebook's first cell
        monkeypatch.setattr(provenance, "git_commit", lambda: "def456")  # committed meanwhile
        assert ClaimsTable("99_demo", "smoke", "tiny").to_dict()["git_commit"] == "abc123"
    finally:
        provenance.run_commit.cache_clear()


def test_a_notebook_is_started_by_its_study_and_closed_with_one_call(tmp_data):
    from sae_failures.engine.claims import Claim
    from sae_failures.runs.setup import start

    with pytest.raises(ValueError, match=r"Unknown study 'gated_saes'\. Valid: quickstart, suppression"):
        start("gated_saes", "smoke")
    notebook = start("gated", "smoke", "cpu")
    assert (notebook.name, notebook.profile.name, notebook.profile.device) == ("04_gated_sae_pareto", "smoke", "cpu")
    long = "a measurement longer than any column a DataFrame would show in full, " * 3
    shown = notebook.close({"layer": 3}, Claim("GS-8", "s", "p", long, "not_attempted", notes="why | not"), model="toy")
    written = json.loads((tmp_data / "figures" / "smoke" / "04_gated_sae_pareto" / "claims.json").read_text())
    assert written["model"] == "toy" and written["setup"]["layer"] == 3 and written["claims"][0]["id"] == "GS-8"
    table = repr(shown)  # the plain text and the Markdown a notebook stores are the same full table
    assert table == shown._repr_markdown_() and long in table and "why \\| not" in table
    assert table.splitlines()[0] == "| id | headline | claim | paper | measured | this run | notes |"
    assert repr(shown[["id", "notes"]]).splitlines()[2] == "| GS-8 | why \\| not |"
    with pytest.raises(KeyError, match=r"No column seed in the claims table\. Columns: id, headline"):
        shown[["seed"]]


def test_printed_paths_name_no_machine(tmp_path, monkeypatch):
    from sae_failures.engine.paths import REPO_ROOT, shown

    monkeypatch.setenv("SAE_FAILURES_DATA", str(tmp_path / "cache"))
    assert shown(REPO_ROOT / "notebooks" / "00_quickstart.ipynb") == "notebooks/00_quickstart.ipynb"
    assert shown(tmp_path / "cache" / "activations" / "m") == "$SAE_FAILURES_DATA/activations/m"
    assert shown(tmp_path / "elsewhere" / "f.txt") == "f.txt"


def test_executed_notebooks_keep_repository_paths_in_their_metadata(tmp_path):
    import nbformat

    from sae_failures.engine.paths import REPO_ROOT
    from sae_failures.runs.execute import relative_papermill_paths

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": "/home/someone/repo/notebooks/00_quickstart.ipynb",
                                "output_path": "/tmp/x/.running/00_quickstart.ipynb"}
    out = tmp_path / "00_quickstart.ipynb"
    nbformat.write(nb, out)
    relative_papermill_paths(out, REPO_ROOT / "notebooks" / "00_quickstart.ipynb")
    meta = nbformat.read(out, as_version=4).metadata["papermill"]
    assert meta["input_path"] == meta["output_path"] == "notebooks/00_quickstart.ipynb"
