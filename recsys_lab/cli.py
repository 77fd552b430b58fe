"""The ``recsys-lab`` command (also ``python -m recsys_lab``).

    recsys-lab reports [--profile quick|full] [--only NAME ...] [--output DIR]
                       [--notebooks DIR] [-p KEY VALUE ...] [--quiet]
    recsys-lab datasets
    recsys-lab bench (--grid GRID.json | --preset NAME) --out DIR [--backend process|serial|ray]

Exit codes: 0 success; 1 at least one notebook failed (each named with its cell and error on
stderr; the other notebooks still ran); 2 bad usage: unknown option, profile, notebook or
parameter name, or an output directory that cannot be written (nothing was run or written);
130 interrupted by SIGINT or SIGTERM (one line says which reports were kept; the index lists
exactly the pages on disk).
"""
from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    from .reports import PROFILES

    parser = argparse.ArgumentParser(
        prog="recsys-lab",
        description="recsys_lab: notebook workbench for real-time recommendation inference.",
        epilog="exit codes: 0 ok, 1 a notebook failed, 2 bad usage",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rep = sub.add_parser(
        "reports", help="execute the notebooks into offline HTML reports",
        description="Execute notebooks/NN_*.ipynb with papermill and export self-contained HTML, "
                    "index.html and summary.md into the output directory.",
        epilog="exit codes: 0 all notebooks ok, 1 a notebook failed, 2 bad usage (nothing ran), "
               "130 interrupted (the reports finished before the signal are kept)")
    rep.add_argument("--profile", choices=PROFILES, default="quick",
                     help="PROFILE parameter of every notebook (default: %(default)s)")
    rep.add_argument("--only", nargs="+", action="extend", metavar="NAME",
                     help="run only these notebooks (file name or stem, e.g. 00_quickstart)")
    rep.add_argument("--output", default="reports", metavar="DIR",
                     help="where the reports go (default: %(default)s)")
    rep.add_argument("--notebooks", default="notebooks", metavar="DIR",
                     help="where the notebooks are (default: %(default)s)")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("KEY", "VALUE"),
                     help="extra notebook parameter; VALUE is a Python literal or a string "
                          "(repeatable; each KEY must be in every selected notebook's "
                          "parameters cell)")
    rep.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                     help="notebooks run at once (default: one per core, at most 4; "
                          "1 gives the quietest latency numbers)")
    rep.add_argument("-q", "--quiet", action="store_true", help="no per-notebook progress lines")

    sub.add_parser("datasets", help="list the data sets load_dataset() knows")

    bench = sub.add_parser(
        "bench", help="run a model x accelerator sweep headless, write CSV and JSON",
        description="Run recsys_lab.eval.sweep on a grid (a JSON file {\"grid\": [...], \"data\": "
                    "..., \"split\": ..., \"eval\": ...} or a preset) and write DIR/bench.csv and "
                    "DIR/bench.json (rows plus the environment). Results are cached in DIR/cache.",
        epilog="exit codes: 0 ok, 1 the sweep failed, 2 bad usage (unreadable grid, unknown name)")
    src = bench.add_mutually_exclusive_group(required=True)
    src.add_argument("--grid", metavar="GRID.json", help="sweep spec as JSON")
    src.add_argument("--preset", metavar="NAME", help="a named spec (recsys_lab.eval.sweep.PRESETS)")
    bench.add_argument("--out", required=True, metavar="DIR", help="output directory")
    bench.add_argument("--backend", choices=("process", "serial", "ray"), default="process",
                       help="where configurations run (default: %(default)s)")
    bench.add_argument("--n-jobs", type=int, default=2, metavar="N", help="parallel workers (default: 2)")
    bench.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="Ray cluster address for --backend ray (default: a local instance)")
    bench.add_argument("--cache", default=None, metavar="DIR", help="result cache (default: OUT/cache)")
    bench.add_argument("--refresh", action="store_true", help="ignore cached results")
    return parser


def _reports(args, parser) -> int:
    from .reports import (ReportError, ReportsInterrupted, default_jobs, parse_value,
                          run_reports)

    params = {k: parse_value(v) for k, v in args.parameter}
    try:
        results = run_reports(args.notebooks, args.output, profile=args.profile, only=args.only,
                              params=params, progress=not args.quiet,
                              jobs=default_jobs() if args.jobs is None else args.jobs)
    except ReportError as e:
        parser.exit(EXIT_USAGE, f"{parser.prog} reports: error: {e}\n")
    except ReportsInterrupted as e:
        print(f"{parser.prog} reports: {e.line()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before the run started or after it ended: nothing half-written
        print(f"{parser.prog} reports: interrupted outside the run; no report was changed",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} of {len(results)} reports ok -> {args.output}/index.html")
    if failed:
        print(f"{len(failed)} notebook(s) failed:", file=sys.stderr)
        for r in failed:
            print(f"  {r.describe()}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _datasets(args, parser) -> int:
    try:
        from .data import list_datasets
    except ImportError:
        parser.exit(EXIT_FAILED, "recsys-lab datasets: this version has no data registry\n")
    listing = list_datasets()
    if hasattr(listing, "to_string"):  # a DataFrame
        print(listing.to_string(index=False))
    elif isinstance(listing, dict):
        for name, about in listing.items():
            print(f"{name}\t{about}")
    else:
        for name in listing:
            print(name)
    return EXIT_OK


def _bench(args, parser) -> int:
    import json
    import time
    from pathlib import Path

    from .eval import environment
    from .eval.sweep import check_spec, run_spec

    err = f"{parser.prog} bench: error: "
    if args.grid:
        try:
            spec = json.loads(Path(args.grid).read_text())
        except OSError as e:
            parser.exit(EXIT_USAGE, f"{err}cannot read {args.grid}: {e.strerror}\n")
        except json.JSONDecodeError as e:
            parser.exit(EXIT_USAGE, f"{err}{args.grid} is not valid JSON ({e})\n")
    try:
        if args.n_jobs < 1:
            raise ValueError(f"--n-jobs must be >= 1, got {args.n_jobs}")
        spec = check_spec(spec if args.grid else args.preset)
    except (ValueError, KeyError, TypeError) as e:
        parser.exit(EXIT_USAGE, f"{err}{e}\n")
    out = Path(args.out)
    t0 = time.perf_counter()
    try:
        df = run_spec(spec, cache_dir=args.cache or out / "cache", backend=args.backend,
                      n_jobs=args.n_jobs, ray_address=args.ray_address, refresh=args.refresh)
    except Exception as e:  # noqa: BLE001 - any failure of a configuration is reported, exit 1
        print(f"{err}the sweep failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "bench.csv", index=False)
    doc = {"spec": spec, "backend": args.backend, "n_jobs": args.n_jobs,
           "wall_s": time.perf_counter() - t0, "environment": environment(),
           "rows": json.loads(df.to_json(orient="records"))}
    (out / "bench.json").write_text(json.dumps(doc, indent=1))
    print(f"{df['label'].nunique()} configurations, {len(df)} rows "
          f"({int(df['cached'].sum())} from cache) -> {out / 'bench.csv'}, {out / 'bench.json'}")
    return EXIT_OK


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return {"reports": _reports, "datasets": _datasets, "bench": _bench}[args.command](args, parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
