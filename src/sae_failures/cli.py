"""Command line: ``python -m sae_failures.cli {figures,seeds,lengths,parts,compare,pins,assets,estimate,gpu-check,bench,rehearse}`` (what the Makefile calls)."""

from __future__ import annotations

import argparse
import os
import sys

from sae_failures.profiles import PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sae-failures", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="run the notebooks for a profile")
    fig.add_argument("--profile", default="offline", help=f"one of {', '.join(PROFILES)}")
    fig.add_argument("--notebooks", nargs="*", help="name prefixes, e.g. 00 02 (default: all)")
    fig.add_argument("--params", nargs="*", default=[], metavar="NAME=VALUE",
                     help="notebook parameters, e.g. start_from_release=pythia-70m-deduped-res-sm")
    fig.add_argument("--device", default="", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    fig.add_argument("--scale", default="", help="times every SAE's training tokens, e.g. 0.1 (default: 1)")
    cmp = sub.add_parser("compare", help="do two runs' claims.json agree? (figures/<profile> folders)")
    cmp.add_argument("before")
    cmp.add_argument("after")
    seeds = sub.add_parser("seeds", help="run (or find cached) the language-model notebooks at more seeds")
    seeds.add_argument("--profile", default="offline", help=f"one of {', '.join(PROFILES)}")
    seeds.add_argument("--seeds", nargs="+", type=int, required=True, help="e.g. 1 2")
    seeds.add_argument("--notebooks", nargs="*", help="name prefixes, e.g. 01 03 (default: 00 01 03 04)")
    status = sub.add_parser("parts", help="which parts of notebook 05 are recorded, and the commands for the rest")
    status.add_argument("--profile", default="offline", help=f"one of {', '.join(PROFILES)}")
    lengths = sub.add_parser("lengths", help="train and measure one part of notebook 05's training-length study")
    lengths.add_argument("--profile", default="offline", help=f"one of {', '.join(PROFILES)}")
    lengths.add_argument("--family", required=True, help="suppression, alignment, alignment_reference, alignment_sweeps or gated")
    lengths.add_argument("--seeds", nargs="+", type=int, required=True, help="e.g. 0 1 2")
    sub.add_parser("assets", help="fetch and convert the offline model and corpus")
    est = sub.add_parser("estimate", help="the paper profile's SAEs, tokens, FLOPs and estimated GPU-hours per notebook")
    est.add_argument("--scale", default="1", help="times every SAE's training tokens, e.g. 0.1")
    sub.add_parser("bench", help="throughput next to the matmul roofline")
    check = sub.add_parser("gpu-check", help="load the paper profile's model, release and corpus, train one "
                                             "paper-sized SAE, project each notebook's hours")
    check.add_argument("--tokens", type=int, default=None, help="training tokens of the checked SAE (default 2^24)")
    check.add_argument("--device", default=None, help="auto (default), cuda, cuda:1, cpu")
    check.add_argument("--standins", action="store_true", help="against the rehearsal's local stand-ins (CPU, seconds)")
    rehearsal = sub.add_parser("rehearse", help="run the paper profile's notebooks against local stand-ins (CPU, minutes)")
    rehearsal.add_argument("--notebooks", nargs="+", default=None, help="of 00 01 03 04 (default: all four)")
    pins = sub.add_parser("pins", help="compare the smoke run's numbers with tests/pins/smoke.json, or rewrite it")
    pins.add_argument("--write", action="store_true", help="pin the smoke run's numbers under the current versions")
    args = parser.parse_args(argv)

    if args.command == "figures":
        from sae_failures.engine import distributed
        from sae_failures.engine.devices import resolve_device
        from sae_failures.engine.network import NetworkUnavailableError
        from sae_failures.engine.paths import data_dir
        from sae_failures.profiles import DEVICE_ENV, SCALE_ENV, scaled
        from sae_failures.runs.notebooks import NotebooksFailed, parse_params, run

        try:
            if distributed.rank() > 0:  # torchrun: only rank 0 writes figures/, results/ and notebooks/
                scratch = data_dir() / "ranks" / str(distributed.rank())
                os.environ.update({"SAE_FAILURES_FIGURES": str(scratch), "SAE_FAILURES_RECORDS": str(scratch / "results")})
            if not args.device and distributed.local_device():
                args.device = distributed.local_device()
            if args.scale:
                scaled(PROFILES["smoke"], args.scale)  # one line now if it is not a number
                os.environ[SCALE_ENV] = args.scale  # every notebook's get_profile applies it
            if args.device:
                resolve_device(args.device)  # one line now, not one per notebook
                os.environ[DEVICE_ENV] = args.device  # the notebooks' ``device`` parameter defaults to it
            update = False if distributed.rank() > 0 else None
            print(f"Claims table: {run(args.profile, args.notebooks, update_committed=update, params=parse_params(args.params))}")
        except (ValueError, NetworkUnavailableError) as err:  # what the user asked for cannot run
            print(f"error: {err}", file=sys.stderr)
            return 2
        except NotebooksFailed as err:
            for line in str(err).splitlines():
                print(f"error: {line}", file=sys.stderr)
            return 1
    elif args.command == "gpu-check":
        from sae_failures.engine.network import NetworkUnavailableError
        from sae_failures.runs.gpu_check import CHECK_TOKENS, gpu_check, gpu_check_on_standins

        try:
            print(gpu_check_on_standins() if args.standins else gpu_check(args.tokens or CHECK_TOKENS, args.device))
        except (ValueError, NetworkUnavailableError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    elif args.command == "estimate":
        from sae_failures.profiles import scaled
        from sae_failures.runs.estimates import ASSUMED_FLOPS, notebook_costs

        try:
            costs = notebook_costs(scaled(PROFILES["paper"], args.scale))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(costs.to_string(float_format=lambda x: f"{x:.3g}"))
        print(f"total: {costs['GPU-hours (estimate)'].sum():.3g} GPU-hours at an assumed {ASSUMED_FLOPS / 1e12:g} "
              "TFLOP/s (counted, not measured; make gpu-check measures this box's rate)")
        print("Notebook 05 is not counted: make figures PROFILE=paper leaves it out unless NOTEBOOKS names it.")
    elif args.command == "rehearse":
        from sae_failures.engine.paths import shown
        from sae_failures.runs.notebooks import NotebooksFailed
        from sae_failures.runs.rehearsal import NOTEBOOKS, rehearse

        try:
            print(f"rehearsal: every paper branch ran; outputs in {shown(rehearse(args.notebooks or NOTEBOOKS))}")
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except NotebooksFailed as err:
            for line in str(err).splitlines():
                print(f"error: {line}", file=sys.stderr)
            return 1
    elif args.command == "seeds":
        from sae_failures.profiles import get_profile
        from sae_failures.runs.seed_runs import seed_counts, seed_outcomes

        try:
            get_profile(args.profile)
            outcomes = seed_outcomes(args.profile, args.seeds, args.notebooks)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for claim, count in seed_counts(outcomes).items():
            print(f"{claim}: held in {count}")
    elif args.command == "lengths":
        from sae_failures.profiles import get_profile
        from sae_failures.studies.scale_and_seeds.experiment import FAMILIES, family_results

        try:
            settings = get_profile(args.profile)
            if args.family not in FAMILIES:
                raise ValueError(f"Unknown family {args.family!r}. Valid: {', '.join(FAMILIES)}.")
            for seed in args.seeds:
                for row in family_results(settings, args.family, seed):
                    print(f"seed {seed} {row['claim']} {row['tokens']:>10,} tokens: {row['quantity']:.4g} "
                          f"({row['verdict']})")
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    elif args.command == "parts":
        from sae_failures.profiles import get_profile
        from sae_failures.studies.scale_and_seeds.experiment import parts

        try:
            table = parts(get_profile(args.profile))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(table.to_string(index=False))
        done = (table.state == "current").sum()
        print(f"{done} of {len(table)} parts recorded for the current code")
    elif args.command == "compare":
        from sae_failures.engine.claims import compare_runs

        print("\n".join(compare_runs(args.before, args.after)))
    elif args.command == "assets":
        from sae_failures.engine.corpus import brown_documents
        from sae_failures.engine.model import OFFLINE_MODEL, load_model

        load_model(OFFLINE_MODEL)
        print(f"offline model ready; Brown corpus: {len(brown_documents())} documents")
    elif args.command == "pins":
        from sae_failures.runs.pins import check_pins, rejudge_problems, smoke_numbers, write_pins

        numbers = smoke_numbers()
        if args.write:
            print(f"pinned {len(numbers)} studies' smoke numbers in {write_pins(numbers)}")
            return 0
        problems = check_pins(numbers) + rejudge_problems()
        for line in problems:
            print(f"pins: {line}", file=sys.stderr)
        if problems:
            return 1
        print(f"pins: every study's smoke numbers match its pins ({len(numbers)} studies), and every recorded "
              "claim is judged the same again from its inputs")
    elif args.command == "bench":
        from sae_failures.runs.bench import report

        print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
