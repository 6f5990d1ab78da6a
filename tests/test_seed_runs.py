"""Seed runs: a notebook rerun at other seeds, cached by its study's versions, and the seed counts read from it."""

from __future__ import annotations

import json
import shutil

import nbformat
import pandas as pd
import pytest

from sae_failures.engine.seeds import SeedCount
from sae_failures.profiles import PROFILES
from sae_failures.runs import records, seed_runs


def write_probe(path, body: str = "") -> None:
    """A notebook whose claim T-1 holds at even seeds only; each execution appends a line to a log."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\n"
        "from sae_failures.engine.claims import Claim, ClaimsTable\n"
        "open(os.environ['PROBE_LOG'], 'a').write(f'{seed}\\n')\n"
        "table = ClaimsTable('00_quickstart', profile, 'none')\n"
        "table.add(Claim('T-1', 'probe', 'x', f'seed {seed}', 'reproduced' if seed % 2 == 0 else 'partial'),\n"
        "          Claim('T-2', 'probe', 'x', '-', 'not_attempted', notes='needs a judge'))\n"
        "table.write()\n" + body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def probe(tmp_data, tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_probe(notebooks / "00_quickstart.ipynb")
    from sae_failures.runs import execute

    monkeypatch.setattr(execute, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setenv("PROBE_LOG", str(tmp_path / "runs.log"))
    return notebooks / "00_quickstart.ipynb", tmp_path / "runs.log"


def test_a_seed_run_is_keyed_by_its_notebooks_study_not_by_the_notebooks_text(tmp_path, monkeypatch):
    nb_path = tmp_path / "00_quickstart.ipynb"
    write_probe(nb_path)
    smoke = PROFILES["smoke"]
    key = seed_runs.seed_run_key(nb_path, smoke)
    assert key == records.study_key("quickstart", smoke)
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[1].source += "\n# changed"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="an output")]
    nbformat.write(nb, nb_path)
    assert seed_runs.seed_run_key(nb_path, smoke) == key
    assert seed_runs.seed_run_key(nb_path, PROFILES["offline"]) != key
    monkeypatch.setattr("sae_failures.studies.quickstart.VERSION", 2)
    assert seed_runs.seed_run_key(nb_path, smoke) != key


def test_seed_runs_execute_once_and_count_seeds(probe):
    nb_path, log = probe
    outcomes = seed_runs.seed_outcomes("smoke", [0, 1, 2], ["00"])
    assert log.read_text().split() == ["0", "1", "2"]
    assert outcomes.loc[("T-1", 1), "measured"] == "seed 1"
    counts = seed_runs.seed_counts(outcomes)
    assert counts == {"T-1": SeedCount(2, 3, partly=1)}  # not_attempted T-2 is no seed's verdict
    assert counts["T-1"].verdict == "partial"

    seed_runs.seed_outcomes("smoke", [0, 1, 2], ["00"])
    assert log.read_text().split() == ["0", "1", "2"]  # served from the records

    shutil.rmtree(records.records_dir("smoke"))  # a clone without the records: served from data/
    assert seed_runs.seed_outcomes("smoke", [1], ["00"]).loc[("T-1", 1), "verdict"] == "partial"
    assert log.read_text().split() == ["0", "1", "2"]
    shutil.rmtree(seed_runs.seed_run_path(nb_path, "smoke", 1))  # a clone without data/: from the record
    assert seed_runs.seed_outcomes("smoke", [1], ["00"]).loc[("T-1", 1), "verdict"] == "partial"
    assert log.read_text().split() == ["0", "1", "2"]

    record = records.record_path("smoke", "seed_runs", nb_path.stem, 1)
    data = json.loads(record.read_text())
    data["result"]["claims"][0]["verdict"] = "reproduced"  # a tampered result is not served
    record.write_text(json.dumps(data))
    again = seed_runs.seed_outcomes("smoke", [1], ["00"])
    assert again.loc[("T-1", 1), "verdict"] == "partial"
    assert log.read_text().split() == ["0", "1", "2", "1"]


def test_a_seed_run_shows_the_progress_of_its_cells(probe, capfd):
    """A 04 seed run takes 20+ minutes; before, it showed nothing between its start and its end."""
    seed_runs.seed_outcomes("smoke", [0], ["00"])
    assert "Executing" in capfd.readouterr().err


def test_only_language_model_notebooks_have_seed_runs(probe):
    nb_path, log = probe
    write_probe(nb_path.parent / "02_broken_latents.ipynb")  # the toys run their own seeds
    with pytest.raises(ValueError, match=r"No language-model notebook among \['02'\]. Valid: 00_quickstart"):
        seed_runs.seed_outcomes("smoke", [0], ["02"])
    assert not log.exists()


def test_seed_counts_read_reproduced_as_held():
    frame = pd.DataFrame({"claim": ["A", "A", "A", "B", "B", "B"], "seed": [0, 1, 2] * 2,
                          "verdict": ["reproduced"] * 3 + ["partial", "not_reproduced", "reproduced"]}
                         ).set_index(["claim", "seed"])
    assert seed_runs.seed_counts(frame) == {"A": SeedCount(3, 3), "B": SeedCount(1, 3, partly=1)}


def test_a_notebooks_own_run_is_its_default_seeds_seed_run(probe):
    from sae_failures.runs import notebooks as notebook_runner

    nb_path, log = probe
    assert seed_runs.default_seed(nb_path) == 0
    notebook_runner.run("smoke", ["00"])
    assert log.read_text().split() == ["0"]
    outcomes = seed_runs.seed_outcomes("smoke", [0, 1], ["00"])
    assert log.read_text().split() == ["0", "1"]  # seed 0 came from `make figures`' run
    assert outcomes.loc[("T-1", 0), "measured"] == "seed 0"
