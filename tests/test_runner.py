"""``make figures`` as a user meets it: one line per user error, failed notebooks marked, not hidden."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from unittest import mock

import nbformat
import pytest

from sae_failures.engine.claims import FAILED_DIR
from sae_failures.runs import execute
from sae_failures.runs import notebooks as notebook_runner


def cli_process(*args, **env) -> subprocess.CompletedProcess:
    """The command line in a process of its own (for what must be set before import, like
    ``HF_HUB_OFFLINE``, and for the exit status a shell sees)."""
    return subprocess.run([sys.executable, "-m", "sae_failures.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def cli(*args, **env) -> subprocess.CompletedProcess:
    """``cli.main`` in this process, as ``make figures`` calls it, without a new interpreter's
    seconds of imports; the environment is restored afterwards."""
    from sae_failures.cli import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("selection", [["07"], ["00", "07"]])
def test_unknown_notebooks_get_one_line_and_nothing_runs(selection, tmp_data):
    out = cli("figures", "--profile", "smoke", "--notebooks", *selection)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: No notebook matches '07'. Valid: " + ", ".join(nb.stem for nb in notebook_runner.notebooks()) + "."]
    assert "running" not in out.stdout  # 00 was not run and 07 not dropped


def test_unknown_profile_and_missing_network_get_one_line(tmp_data):
    out = cli("figures", "--profile", "fast")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: Unknown profile 'fast'. Valid profiles: smoke, offline, classroom, paper."]
    out = cli_process("figures", "--profile", "paper", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_data / "hf"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "needs the Hugging Face hub" in out.stderr and "profile='offline'" in out.stderr


def write_notebook(path):
    """A notebook that writes a claims table, or fails when SAE_FAILURES_TEST_FAIL is set."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nnote = "x"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\n"
        "from sae_failures.engine.claims import Claim, ClaimsTable\n"
        "table = ClaimsTable('00_probe', profile, 'none')\n"
        "table.add(Claim('T-1', 'probe', 'x', note, 'reproduced'))\n"
        "if os.environ.get('SAE_FAILURES_TEST_FAIL'):\n"
        "    raise ZeroDivisionError('the probe failed on purpose')\n"
        "table.write()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_failed_notebook_is_reported_in_one_line_and_its_old_claims_are_flagged(tmp_data, tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "00_probe.ipynb")
    monkeypatch.setattr(execute, "NOTEBOOK_DIR", notebooks)
    figures = tmp_data / "figures" / "smoke"

    notebook_runner.run("smoke", update_committed=False)
    good = json.loads((figures / "00_probe" / "claims.json").read_text())
    assert good["claims"][0]["id"] == "T-1"

    monkeypatch.setenv("SAE_FAILURES_TEST_FAIL", "1")
    with pytest.raises(notebook_runner.NotebooksFailed) as failure:
        notebook_runner.run("smoke", update_committed=False)
    line = str(failure.value)
    assert "\n" not in line and line.startswith("00_probe failed in cell [")
    assert "ZeroDivisionError: the probe failed on purpose" in line
    assert (figures / FAILED_DIR / "00_probe" / "00_probe.ipynb").exists()  # the traceback is kept
    table = (figures / "CLAIMS.md").read_text()
    assert "**Last run failed" in table and f"earlier run of {good['created']}" in table
    assert json.loads((figures / "00_probe" / "claims.json").read_text()) == good  # not overwritten
    assert not list(figures.glob(".*.running"))  # no staging left

    monkeypatch.delenv("SAE_FAILURES_TEST_FAIL")
    notebook_runner.run("smoke", update_committed=False)
    assert not (figures / FAILED_DIR / "00_probe").exists()
    assert "Last run failed" not in (figures / "CLAIMS.md").read_text()


def test_notebook_parameters_pass_through_and_unknown_names_are_refused(tmp_data, tmp_path, monkeypatch, capfd):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "00_probe.ipynb")
    monkeypatch.setattr(execute, "NOTEBOOK_DIR", notebooks)
    params = notebook_runner.parse_params(["note=passed on", "width=32768", "flag=true"])
    assert params == {"note": "passed on", "width": 32768, "flag": True}
    with pytest.raises(ValueError, match=r"No chosen notebook has the parameter\(s\) width, flag\. "
                                         r"Their parameters: 00_probe: profile, note\."):
        notebook_runner.run("smoke", update_committed=False, params=params)
    assert not (tmp_data / "figures" / "smoke" / "00_probe").exists()  # refused before anything ran
    notebook_runner.run("smoke", update_committed=False, params={"note": "passed on"})
    claims = json.loads((tmp_data / "figures" / "smoke" / "00_probe" / "claims.json").read_text())
    assert claims["claims"][0]["measured"] == "passed on"
    log = capfd.readouterr().err  # what a log of make figures shows: the cells' progress, no kernel warning
    assert "Executing" in log and "TCP" not in log and "WARNING" not in log


def test_make_figures_params_and_device_get_one_line_when_wrong(tmp_data):
    out = cli("figures", "--profile", "smoke", "--notebooks", "01", "--params", "start_from_relase=x")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: No chosen notebook has the parameter(s) start_from_relase. Their parameters: "
        "01_feature_suppression: profile, device, seed, post_l1, start_from_release, release_width."]
    out = cli("figures", "--profile", "smoke", "--notebooks", "01", "--params", "start_from_release")
    assert out.returncode == 2 and "Bad parameter 'start_from_release': write NAME=VALUE" in out.stderr
    out = cli("figures", "--profile", "smoke", "--device", "cuda:7", CUDA_VISIBLE_DEVICES="")
    assert out.returncode == 2 and out.stderr.startswith("error: Device 'cuda:7' is not available on this machine")
    assert "running" not in out.stdout
    out = cli("figures", "--profile", "smoke", "--scale", "a tenth")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: SCALE must be a positive number (1: the profile's token counts, 0.1: a tenth), got nan."]


@pytest.mark.parametrize("profile", ["paper", "classroom"])
def test_the_paper_and_classroom_profiles_run_notebook_05_only_when_named(profile, tmp_data, tmp_path, monkeypatch,
                                                                          capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("00_probe", "05_probe"):
        write_notebook(notebooks / f"{name}.ipynb")
    monkeypatch.setattr(execute, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setattr(notebook_runner, "hub_needs", lambda prof: [])
    ran = []
    monkeypatch.setattr(notebook_runner, "run_one", lambda nb, *args, **kwargs: ran.append(nb.stem) or 1.0)
    notebook_runner.run(profile, update_committed=False)
    assert ran == ["00_probe"]
    assert "05_probe runs only when named (NOTEBOOKS=05)" in capsys.readouterr().out
    notebook_runner.run(profile, ["05"], update_committed=False)
    notebook_runner.run("smoke", update_committed=False)
    assert ran == ["00_probe", "05_probe", "00_probe", "05_probe"]


@pytest.mark.parametrize("echo", [True, False])
def test_a_run_on_a_terminal_shows_what_its_cells_print_as_they_run(echo, tmp_data, tmp_path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys\nprint('training SAE 1 of 2')\n"
                                          "sys.stderr.write('harvest 50%\\rharvest 100%\\n')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    execute.execute(tmp_path / "probe.ipynb", tmp_path / "out.ipynb", {}, tmp_path / "figures", echo=echo)
    shown = capfd.readouterr()
    assert ("training SAE 1 of 2" in shown.out) is echo
    assert ("harvest 50%\rharvest 100%" in shown.err) is echo
    assert ("Executing" in shown.err) is not echo  # papermill's cell count only where the cells are not shown
    assert "training SAE 1 of 2" in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0].text
