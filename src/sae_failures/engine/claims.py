"""Claims tables: what a notebook measured next to the paper's number, with a verdict.

Each study module has one verdict function per claim that returns a ``Claim``: what was
measured, the paper's number and the verdict, under a rule fixed in the code. A notebook's
claims cell only adds them to a ``ClaimsTable``, one row per claim ID of ``claims.md``, and writes
``figures/<profile>/<notebook>/claims.json``; ``assemble`` joins every notebook's file
into ``figures/<profile>/CLAIMS.md``.

A verdict function marked ``@rule`` records what it read (``Claim.inputs``, through
``codec``) and its own name (``Claim.rule``), so a recorded claim is judged again by the rule
as the code has it now (``rejudge``): changing a threshold re-reads the records of long runs
instead of recomputing them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from sae_failures.engine.codec import decode, encode
from sae_failures.engine.headline import DIRECTION, HEADLINES, MATCHED, counts
from sae_failures.engine.headline import headline as headline_of
from sae_failures.engine.paths import atomic_write_text, figures_dir
from sae_failures.engine.provenance import library_versions, now_iso, run_commit

VERDICTS = ("reproduced", "partial", "not_reproduced", "unmeasurable", "not_attempted")
NO_EVIDENCE = ("unmeasurable", "not_attempted")  # verdicts that say why nothing was judged (notes required)
FAILED_DIR = "failed"  # figures/<profile>/failed/<notebook>/: outputs of a notebook's failed run
FAILURE_FILE = "FAILED.json"


def verdict(held: bool, partially: bool = False) -> str:
    """``reproduced`` if ``held``, else ``partial`` if ``partially``, else ``not_reproduced``."""
    return "reproduced" if held else "partial" if partially else "not_reproduced"


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    paper_value: str
    measured: str
    verdict: str
    evidence: str = ""
    notes: str = ""
    seeds: str = ""  # in how many seeds the claim held, with its interval (``seeds.SeedCount``)
    more_training: str = ""  # decided or not over longer training (``seeds.Decision``)
    rule: str = ""  # the verdict function that judged it (``@rule``), as module.name
    inputs: dict[str, Any] | None = None  # what that function read, encoded (``codec``)
    magnitude: str = ""  # ``headline.magnitude`` against the paper's effect size; empty where it gives none
    headline: str = ""  # the one verdict CLAIMS.md shows and counts (``headline.headline``)


HEADERS = {"paper_value": "paper", "statement": "claim", "more_training": "with more training",
           "seeds": "seeds held", "verdict": "this run"}  # column names as a reader reads them
SHOWN = ("id", "headline", "statement", "paper_value", "measured", "verdict", "evidence", "notes", "seeds",
         "more_training")
RULE_FIELDS = ("rule", "inputs")  # how a claim was judged: kept in claims.json, not shown or compared
# what ``rejudge`` renews
JUDGED = ("statement", "paper_value", "measured", "verdict", "evidence", "notes", "magnitude", "headline")


def rule(judge: Callable[..., Claim]) -> Callable[..., Claim]:
    """Mark a verdict function: the claims it returns carry its name and its encoded arguments."""
    signature = inspect.signature(judge)

    @functools.wraps(judge)
    def judged(*args: Any, **kwargs: Any) -> Claim:
        arguments = signature.bind(*args, **kwargs).arguments
        made = judge(*args, **kwargs)
        return dataclasses.replace(made, rule=f"{judge.__module__}.{judge.__qualname__}", inputs=encode(dict(arguments)))

    return judged


def rejudge(claim: dict[str, Any]) -> dict[str, Any]:
    """``claim`` (as claims.json holds it) judged again by its rule as the code has it now, from
    the inputs it recorded; a claim recorded without them is returned as it is."""
    if not claim.get("rule"):
        return claim
    module, _, name = claim["rule"].rpartition(".")
    judge = getattr(importlib.import_module(module), name)
    again = asdict(judge(**decode(claim["inputs"])))
    again["headline"] = again["headline"] or headline_of(again["verdict"], again["magnitude"])
    return {**claim, **{k: again[k] for k in JUDGED if k in claim}}


@dataclass
class ClaimsTable:
    """The claims one notebook checks, with the setup every number was measured under."""

    notebook: str
    profile: str
    model: str
    setup: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # every study's VERSION when the run made it

    def record(self, id: str, statement: str, paper_value: Any, measured: Any, verdict: str,
               evidence: str = "", notes: str = "", seeds: str = "", more_training: str = "", rule: str = "",
               inputs: dict[str, Any] | None = None, magnitude: str = "", headline: str = "") -> Claim:
        if verdict not in VERDICTS:
            raise ValueError(f"Unknown verdict {verdict!r}. Valid verdicts: {', '.join(VERDICTS)}.")
        if verdict in NO_EVIDENCE and not notes:
            raise ValueError(f"{id}: a claim judged {verdict} needs the reason in `notes`.")
        if magnitude not in ("", MATCHED, DIRECTION):
            raise ValueError(f"{id}: unknown magnitude {magnitude!r}. Valid: {MATCHED!r}, {DIRECTION!r} or none.")
        if any(c.id == id for c in self.claims):
            raise ValueError(f"Claim {id} is already recorded in {self.notebook}.")
        claim = Claim(id, statement, str(paper_value), str(measured), verdict, evidence, notes, seeds, more_training,
                      rule, inputs, magnitude, headline or headline_of(verdict, magnitude))
        self.claims.append(claim)
        return claim

    def add(self, *claims: Claim) -> None:
        """Record claims made by a study's verdict functions (validated as ``record`` does)."""
        for c in claims:
            self.record(**asdict(c))

    def frame(self) -> pd.DataFrame:
        """The table as a reader sees it (what each rule read stays in claims.json)."""
        return pd.DataFrame([{k: getattr(c, k) for k in SHOWN} for c in self.claims])

    def view(self) -> ClaimsView:
        """The table for a notebook to show, every cell in full."""
        return ClaimsView(self.frame())


    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "profile": self.profile,
            "model": self.model,
            "git_commit": run_commit(),
            "created": now_iso(),
            "setup": {**self.setup, "libraries": library_versions()},
            "study_versions": self.versions,
            "claims": [asdict(c) for c in self.claims],
        }

    def write(self) -> Path:
        path = figures_dir(self.profile, self.notebook) / "claims.json"
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path


@dataclass(frozen=True)
class ClaimsView:
    """A claims table shown in full as Markdown, in Jupyter, on GitHub and as plain text.

    A DataFrame's text form cuts long cells with "..."; a claims table is read for its
    cells, so every one is kept. ``view[["id", "verdict"]]`` shows a choice of columns.
    """

    frame: pd.DataFrame

    def __getitem__(self, columns: list[str]) -> ClaimsView:
        unknown = [c for c in columns if c not in self.frame.columns]
        if unknown:
            raise KeyError(f"No column {', '.join(unknown)} in the claims table. Columns: "
                           f"{', '.join(self.frame.columns)}.")
        return ClaimsView(self.frame[list(columns)])

    def markdown(self) -> str:
        shown = [c for c in self.frame.columns if self.frame[c].astype(str).str.strip().any()]
        rows = [[_cell(str(v)) for v in row] for row in self.frame[shown].itertuples(index=False)]
        return "\n".join(["| " + " | ".join(HEADERS.get(c, c) for c in shown) + " |",
                          "|" + "---|" * len(shown), *("| " + " | ".join(r) + " |" for r in rows)])

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()


HEADLINE_RULE = (
    "Each claim counts once, under one headline: from the longest training that measured it",
    "(notebook 05's length study at its longest budget, else the notebook rerun at several seeds,",
    "else the notebook's own run), its seeds combined by 90% Wilson intervals with a seed's own",
    "`partial` kept as partial; `undecided` where the length study's quantity was still moving",
    "toward the paper or its seeds split; `direction only` where it held but the effect is",
    "outside a factor of 2 of the paper's number (`engine.headline`).",
)


def summary_table(headlines: dict[str, str], root: str, claims_md: str) -> list[str]:
    """Markdown rows: per paper, its notebook and work, and how many of its claims have each
    headline (columns that are zero everywhere left out). Links start at ``root`` (the
    repository from where the table is read); ``claims_md`` is the path of CLAIMS.md from there
    ("" inside it), for each notebook's section."""
    from sae_failures.studies import STUDIES

    by_study = {study: [h for i, h in headlines.items() if claim_study(i) == study] for study in STUDIES}
    rows = {study: counts(found) for study, found in by_study.items() if found}
    shown = [h for h in HEADLINES if any(row[h] for row in rows.values())]
    lines = ["| notebook | reproduces | claims | " + " | ".join(shown) + " |", "|---|---|---|" + "---|" * len(shown)]
    for study, row in rows.items():
        module = importlib.import_module(f"sae_failures.studies.{study}")
        notebook = f"[{module.NOTEBOOK}]({root}notebooks/{module.NOTEBOOK}.ipynb)"
        total = f"[{sum(row.values())}]({claims_md}#{module.NOTEBOOK})"
        lines.append(f"| {notebook} | {module.WORK} | {total} | " + " | ".join(str(row[h]) for h in shown) + " |")
    return lines


def claim_headline(claim: dict[str, Any], rechecked: dict[str, str]) -> str:
    """A claim's headline: the one notebook 05 combined from its runs, else its own run's."""
    return rechecked.get("headline") or claim.get("headline") or headline_of(claim["verdict"],
                                                                              claim.get("magnitude", ""))


FIGURE = re.compile(r"\b[\w-]+\.png\b")  # a figure named in a claim's evidence, linked in CLAIMS.md


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _failure(root: Path, notebook: str) -> dict[str, str] | None:
    path = root / FAILED_DIR / notebook / FAILURE_FILE
    return json.loads(path.read_text()) if path.exists() else None


# Which study's rules a claim ID falls under (the prefix of FS-5, AB-9, ...).
CLAIM_STUDIES = {"QS": "quickstart", "FS": "suppression", "BL": "broken_latents", "AB": "alignment", "GS": "gated"}
STALE_RECHECK = "stale: rechecked under older rules"


def claim_study(claim_id: str) -> str:
    return CLAIM_STUDIES.get(claim_id.split("-")[0], "")


def _older_rules(data: dict[str, Any], versions: dict[str, int]) -> str:
    """Which of a claims table's studies ran under a VERSION other than now ("" if none)."""
    made_under = data.get("study_versions", {})
    studies = sorted({claim_study(c["id"]) for c in data["claims"]} - {""})
    return ", ".join(f"{study} version {made_under.get(study, 'unrecorded')}, now {versions[study]}"
                     for study in studies if study in versions and made_under.get(study) != versions[study])


class _Read(NamedTuple):
    files: dict[str, Path]  # notebook -> its claims.json
    failed: set[str]  # notebooks whose last run failed
    loaded: dict[str, dict[str, Any]]  # notebook -> its claims.json, read
    rechecked: dict[str, dict[str, str]]  # a claim's seeds, length study and headline from notebook 05
    headlines: dict[str, str]  # claim ID -> its one headline


def _read_claims(root: Path, versions: dict[str, int] | None) -> _Read:
    """Every notebook's claims under ``root`` and each claim's one headline (see ``assemble``)."""
    files = {p.parent.name: p for p in root.glob("*/claims.json") if p.parent.name != FAILED_DIR}
    failed = {p.parent.name for p in root.glob(f"{FAILED_DIR}/*/{FAILURE_FILE}")}
    loaded = {name: json.loads(path.read_text()) for name, path in files.items()}
    rechecked: dict[str, dict[str, str]] = {}  # a claim's seeds, length study and headline from notebook 05
    stale: set[str] = set()
    for data in loaded.values():
        made_under = data.get("study_versions", {})
        for c in data["claims"]:
            if c.get("seeds"):  # a claim that combines runs: its headline is the claim's
                study = claim_study(c["id"])
                if versions is not None and made_under.get(study) != versions.get(study):
                    rechecked.setdefault(c["id"], {}).update({"seeds": STALE_RECHECK, "more_training": STALE_RECHECK})
                    stale.add(c["id"])
                    continue
                rechecked.setdefault(c["id"], {}).update(
                    {k: c[k] for k in ("seeds", "more_training", "headline") if c.get(k)})
    # once per claim, wherever it recurs; a stale recheck counts only where nothing else measured the claim
    everywhere = [c for data in loaded.values() for c in data["claims"]]
    headlines = {c["id"]: claim_headline(c, rechecked.get(c["id"], {})) for c in everywhere
                 if c["id"] in stale and c.get("seeds")}
    headlines.update({c["id"]: claim_headline(c, rechecked.get(c["id"], {})) for c in everywhere
                      if not (c["id"] in stale and c.get("seeds"))})
    return _Read(files, failed, loaded, rechecked, headlines)


README_START = "<!-- claims summary: the table of figures/offline/CLAIMS.md (tests/test_committed_pages.py checks it) -->"
README_END = "<!-- end of claims summary -->"


def readme_summary(versions: dict[str, int] | None = None) -> list[str]:
    """The README's table of claims per paper: CLAIMS.md's, for the offline profile, linked
    from the repository's root."""
    return summary_table(claim_headlines("offline", versions), "", "figures/offline/CLAIMS.md")


def update_readme(readme: Path, versions: dict[str, int] | None = None) -> None:
    """Put ``readme_summary`` between the README's markers, so its counts are the committed run's."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme.name} lacks the claims-summary markers {README_START!r} ... {README_END!r}.")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    atomic_write_text(readme, "\n".join([head + README_START, *readme_summary(versions), README_END]) + tail)


def claim_headlines(profile: str, versions: dict[str, int] | None = None) -> dict[str, str]:
    """Each claim's one headline, as ``figures/<profile>/CLAIMS.md`` counts it."""
    return _read_claims(figures_dir(profile), versions).headlines


def assemble(profile: str, versions: dict[str, int] | None = None) -> Path:
    """Write ``figures/<profile>/CLAIMS.md``: one table over every notebook's claims.json.

    A notebook whose last run failed is flagged at the top of its section: its claims, if
    any are shown, come from the earlier run named there, not from the current code. The
    "seeds held" and "with more training" columns come from the claim itself or, for a claim
    another notebook rechecks under the same ID (05 over seeds and training length), from there,
    provided that run was made under the claim's study ``versions`` of now (every study's
    current VERSION); a recheck made under older rules is marked stale and not combined.
    """
    root = figures_dir(profile)
    files, failed, loaded, rechecked, headlines = _read_claims(root, versions)
    tally = counts(list(headlines.values()))
    lines = [f"# Claims, profile `{profile}`", "",
             "Generated by `make figures` from each notebook's `claims.json`; do not edit.", "",
             f"**{len(headlines)} claims:** " + ", ".join(f"{n} {h}" for h, n in tally.items() if n) + ".", "",
             *summary_table(headlines, "../../", ""), "",
             "**Headline verdict.** " + " ".join(line.strip() for line in HEADLINE_RULE), "",
             *[f"- **{h}**: {meaning}" for h, meaning in HEADLINES.items()], ""]
    for notebook in sorted(set(files) | failed):
        failure = _failure(root, notebook)
        if notebook not in files:
            lines += [f"## {notebook}", "", f"**Last run failed ({failure['at']}): {failure['error']}** "
                      "No earlier run left claims.", ""]
            continue
        data = loaded[notebook]
        lines += [f"## {data['notebook']}", ""]
        if failure is not None:
            lines += [f"**Last run failed ({failure['at']}): {failure['error']}** The claims below are from the "
                      f"earlier run of {data['created']} and may not match the current code.", ""]
        if versions is not None and (older := _older_rules(data, versions)):
            lines += [f"**Judged under older rules ({older}).** Rerun this notebook to judge its claims by the "
                      "rules of the current code.", ""]
        lines += [f"Model `{data['model']}`, commit `{data['git_commit']}`, created {data['created']}.", "",
                  "| id | headline | claim | paper | measured | seeds held | with more training | figure |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in data["claims"]:
            found = rechecked.get(c["id"], {})
            seeds = c.get("seeds") or found.get("seeds") or ("-" if c["verdict"] in NO_EVIDENCE else "seed 0 only")
            more = c.get("more_training") or found.get("more_training") or "-"
            figure = FIGURE.sub(lambda m, nb=notebook: f"[{m[0]}]({nb}/{m[0]})", _cell(c["evidence"]))
            lines.append("| " + " | ".join([*(_cell(v) for v in (
                c["id"], claim_headline(c, found), c["statement"], c["paper_value"], c["measured"], seeds, more)),
                figure]) + " |")
        notes = [f"- **{c['id']}**: {' '.join(c['notes'].split())}" for c in data["claims"] if c["notes"]]
        lines += ["", "Notes:", "", *notes, ""] if notes else [""]
    if not files and not failed:
        lines.append("No notebook has written claims for this profile yet.")
    out = root / "CLAIMS.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


PROVENANCE_KEYS = ("created", "git_commit")
OPTIONAL_FIELDS = ("seeds", "more_training", "magnitude", "headline")  # added later: empty is the same as absent


def compare_runs(before: Path, after: Path) -> list[str]:
    """One line per notebook: whether two runs' claims.json agree apart from when and at which
    commit they were made, and, where not, which claims or setup entries differ. A claim
    field added later (``OPTIONAL_FIELDS``) that is empty counts as absent; how a claim was
    judged (``RULE_FIELDS``: the rule and what it read) is not compared, what it found is."""
    lines = []
    for path in sorted(Path(before).glob("*/claims.json")):
        other = Path(after) / path.parent.name / "claims.json"
        if not other.exists():
            lines.append(f"{path.parent.name}: missing in {after}")
            continue
        a, b = (json.loads(p.read_text()) for p in (path, other))
        for data in (a, b):
            for key in PROVENANCE_KEYS:
                data.pop(key, None)
        if a == b:
            lines.append(f"{path.parent.name}: identical apart from {', '.join(PROVENANCE_KEYS)}")
            continue
        claims_a, claims_b = ({c["id"]: {k: v for k, v in c.items()
                                         if k not in RULE_FIELDS and (k not in OPTIONAL_FIELDS or v)}
                               for c in d["claims"]} for d in (a, b))
        if claims_a == claims_b and a["setup"] == b["setup"] and {**a, "claims": 0} == {**b, "claims": 0}:
            lines.append(f"{path.parent.name}: identical apart from {', '.join(PROVENANCE_KEYS)}")
            continue
        changed = [i for i in dict.fromkeys([*claims_a, *claims_b]) if claims_a.get(i) != claims_b.get(i)]
        setup = sorted(k for k in set(a["setup"]) | set(b["setup"]) if a["setup"].get(k) != b["setup"].get(k))
        lines.append(f"{path.parent.name}: differs in claims [{', '.join(changed)}], setup [{', '.join(setup)}]")
    return lines
