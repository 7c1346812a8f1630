"""`python -m bench [--quick]`: run the benchmark suite, print its table, write it as JSON.

Run from the repository root. The full suite takes about six minutes on two cores; `--quick`
(smaller sizes, shorter timeouts, fewer runs) about one. Progress goes to stderr, the table to
stdout, the JSON to `--json` (default `bench/results/latest.json`). The exit status is 0 when
the suite ran (whatever the bars say) unless `--check-bars` is given, then 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import report
from bench.scenarios import SCENARIOS, params
from bench.servers import REPO
from bench.suite import evaluate_bars, machine, run_suite


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Race preflight against the programs users would otherwise run, on "
        "loopback servers it starts itself, and judge it against issue 5's bars.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="about a minute: fewer targets, shorter timeouts"
    )
    parser.add_argument(
        "--targets", type=int, metavar="N", help="targets in the many-target scenarios"
    )
    parser.add_argument("--reps", type=int, metavar="N", help="runs of every contestant")
    parser.add_argument(
        "--cap",
        type=float,
        metavar="S",
        help="seconds a hanging baseline gets before it is killed (30; --quick: 4)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        default=[],
        choices=[s.key for s in SCENARIOS],
        metavar="SCENARIO",
        help="run only these scenarios: " + ", ".join(s.key for s in SCENARIOS),
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=REPO / "bench" / "results" / "latest.json",
        metavar="FILE",
        help="where to write the results (default: bench/results/latest.json)",
    )
    parser.add_argument("--check-bars", action="store_true", help="exit 1 when a bar is missed")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.targets is not None and args.targets < 1:
        raise SystemExit("--targets must be at least 1")
    if args.reps is not None and args.reps < 1:
        raise SystemExit("--reps must be at least 1")
    if args.cap is not None and args.cap <= 0:
        raise SystemExit("--cap must be positive")
    p = params(args.quick, args.targets, args.reps, args.cap)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    started = time.monotonic()
    info = machine()
    results = run_suite(p, args.only, log)
    bars = evaluate_bars(p, results)
    table = report.render(p, results, bars, info)
    print(table)
    report.write_json(args.json, report.to_json(p, results, bars, info, table))
    log(f"suite done in {time.monotonic() - started:.0f} s; JSON written to {args.json}")
    if args.check_bars and any(b.met is False for b in bars):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
