"""One command line over the package (the notebooks are the main interface), as `mbasr` or
`python -m mbasr`; `mbasr COMMAND --help` explains each:

mbasr corpus --scale micro --work-dir runs          build (or find) the synthetic corpus
mbasr import PATH --domain mydomain --split train   validate and import your own data (see
    [--synthesize] [--condition C] [--work-dir DIR]  mbasr.data.domains); bad input: message, exit 2
mbasr pretrain lm|speech|all ...                    stage 0 of `tiny` (mbasr.training.stage0)
mbasr search ...                                    the stage-2 learning-rate search (mbasr.study.search)
mbasr results ...                                   records -> the tidy results table (mbasr.study.results)
mbasr claims ...                                    the paper's claims judged (mbasr.study.claims)
mbasr report ...                                    the report site's figures and pages (mbasr.report.site)
mbasr publish ...                                   a workflow's results -> results/ (mbasr.report.publish)
mbasr site W                                        a report site for work folder W (mbasr.report.work_site)
mbasr nbtidy ...                                    an executed notebook made fit to publish
"""

from __future__ import annotations

import argparse
import sys

from mbasr.data.acoustics import CONDITIONS as _CONDITIONS

CONDITIONS = " | ".join(_CONDITIONS)


def _corpus(args) -> int:
    from mbasr.data.corpus import prepare_corpus

    corpus = prepare_corpus(
        args.work_dir, scale=args.scale, seed=args.seed, conditions=not args.clean, jobs=args.jobs
    )
    print(corpus.root)
    return 0


def _import(args) -> int:
    from mbasr.data.domains import import_domain

    report = import_domain(
        args.path,
        args.domain,
        args.split,
        args.work_dir,
        fmt=args.format,
        synthesize=args.synthesize,
        condition=args.condition,
        replace=args.replace,
        strict=args.strict,
        seed=args.seed,
        jobs=args.jobs,
        verbose=False,
    )
    print(report)
    return 0


# Commands with their own parser, in the module that does the work.
DELEGATED = {
    "pretrain": "mbasr.training.stage0",
    "search": "mbasr.study.search",
    "results": "mbasr.study.results",
    "claims": "mbasr.study.claims",
    "report": "mbasr.report.site",
    "publish": "mbasr.report.publish",
    "site": "mbasr.report.work_site",
    "nbtidy": "mbasr.report.nbtidy",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        return importlib.import_module(DELEGATED[argv[0]]).main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="mbasr", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in DELEGATED.items():  # listed in --help; parsed by their modules (above)
        sub.add_parser(name, help=f"see: mbasr {name} --help ({module})", add_help=False)

    p = sub.add_parser("corpus", help="build the synthetic corpus")
    p.add_argument("--work-dir", default="runs")
    p.add_argument("--scale", default="default", help="micro | default | large")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="synthesis processes (default: all cores)")
    p.add_argument("--clean", action="store_true", help="no per-domain acoustic conditions")
    p.set_defaults(func=_corpus)

    p = sub.add_parser("import", help="validate and import your own data as a manifest")
    p.add_argument("path")
    p.add_argument("--format", default="auto", help="auto | authors | nemo | folder | text")
    p.add_argument("--domain", required=True)
    p.add_argument("--split", required=True, choices=["train", "dev", "test"])
    p.add_argument(
        "--work-dir", default="runs", help="the notebooks' work_dir (the domain goes to DIR/imported)"
    )
    p.add_argument(
        "--synthesize", action="store_true", help="speak lines without audio with the corpus's voices"
    )
    p.add_argument(
        "--condition", default="none", help="acoustic condition of the spoken lines: none | " + CONDITIONS
    )
    p.add_argument("--replace", action="store_true", help="stand in for the synthetic domain of this name")
    p.add_argument("--seed", type=int, default=0, help="voices and jitter of the spoken lines")
    p.add_argument("--jobs", type=int, default=None, help="synthesis processes (default: all cores)")
    p.add_argument("--strict", action="store_true", help="fail on any bad line, writing nothing")
    p.set_defaults(func=_import)

    args = parser.parse_args(argv)
    from mbasr.data.validate import DataError

    try:
        return args.func(args)
    except (DataError, ValueError) as e:  # bad input: the message names the file:line or parameter
        print(f"mbasr {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
