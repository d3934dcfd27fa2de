"""A thin command line over the package (the notebooks are the main interface):

mbasr corpus --scale micro --work-dir runs          build (or find) the synthetic corpus
mbasr import PATH --domain mydomain --split train   validate and import your own data
"""

from __future__ import annotations

import argparse
import sys


def _corpus(args) -> int:
    from mbasr.data.corpus import prepare_corpus

    corpus = prepare_corpus(
        args.work_dir, scale=args.scale, seed=args.seed, conditions=not args.clean, jobs=args.jobs
    )
    print(corpus.root)
    return 0


def _import(args) -> int:
    from mbasr.data.byod import describe, import_data

    report = import_data(args.path, args.format, args.domain, args.split, args.out_dir, strict=args.strict)
    print(describe(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mbasr", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.add_argument("--out-dir", default="runs/imported")
    p.add_argument("--strict", action="store_true", help="fail on the first report of bad lines")
    p.set_defaults(func=_import)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
