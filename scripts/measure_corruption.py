"""Measure the corruption rates and the mixed-batch composition against what their parameters imply
(the closing figures of the corruption / mixed-batch issue).

    python scripts/measure_corruption.py [--seed 0] [--sentences 10000] [--batches 1000] [--json out.json]

Corruption: corpus sentences of each domain grammar (`mbasr.data.grammar`), corrupted with the paper's
defaults and with the substitution step alone (dup_p = 0); expected rates from
`mbasr.method.corrupt.expected_rates`. Batches: utterance lists of the default corpus scale's training sizes
(source 6,000, target 3,000) built from the same grammars; the composition does not depend on the
audio, so the utterances carry placeholder audio paths and a placeholder projector text.
"""

from __future__ import annotations

import argparse
import json
import time

from mbasr.data.grammar import GRAMMAR_DIR, domain_grammar, generate_sentences
from mbasr.data.manifest import Utterance
from mbasr.method.composition import shares_table
from mbasr.method.corrupt import (
    PAPER_CORRUPTION,
    CorruptionConfig,
    corrupt_all,
    expected_rates,
    measure_rates,
)
from mbasr.method.mixed_batch import KINDS, SHARE_NAMES, MixedBatchSampler


def corruption_table(domains: list[str], n: int, seed: int) -> list[dict]:
    rows = []
    for domain in domains:
        sents = generate_sentences(domain_grammar(domain), n, seed)
        for label, cfg in (("paper", PAPER_CORRUPTION), ("substitution only", CorruptionConfig(dup_p=0.0))):
            got = measure_rates(sents, corrupt_all(sents, cfg, seed=seed))
            want = expected_rates(sents, cfg)
            rows.append(
                {
                    "domain": domain,
                    "config": label,
                    "sentences": len(sents),
                    "chosen_expected": want.chosen,
                    "word_touch_expected": want.word_touch,
                    "word_touch_measured": got.word_touch,
                    "cer_expected": want.cer,
                    "cer_measured": got.cer,
                }
            )
    return rows


def _utts(domain: str, n: int, seed: int) -> list[Utterance]:
    sents = generate_sentences(domain_grammar(domain), n, seed)
    return [
        Utterance(f"{domain}-{i:05d}", f"{domain}-{i:05d}.wav", s, 0.0, domain) for i, s in enumerate(sents)
    ]


def batch_table(
    target: str, ps: list[float], n_batches: int, batch_size: int, tau: float, seed: int
) -> list[dict]:
    source = _utts("source", 6000, seed)
    tgt = _utts(target, 3000, seed)
    rows = []
    for p in ps:
        sampler = MixedBatchSampler(
            source,
            tgt,
            "text_only" if p == 0 else "mixed",
            p=p,
            tau=tau,
            batch_size=batch_size,
            seed=seed,
            projector_text=lambda u: "",
        )
        rows += [{"p": p, **row} for row in shares_table(sampler, n_batches)]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sentences", type=int, default=10_000, help="corpus sentences per domain")
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--target", default="banking", help="target domain of the batch measurement")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    t0 = time.perf_counter()

    domains = sorted(p.stem for p in GRAMMAR_DIR.glob("*.yaml"))
    corr = corruption_table(domains, args.sentences, args.seed)
    print(f"## Corruption: {args.sentences} sentences per domain, seed {args.seed}\n")
    print("| domain | config | words chosen (exp.) | words touched exp. / meas. | CER exp. / meas. |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in corr:
        print(
            f"| {r['domain']} | {r['config']} | {r['chosen_expected']:.2%} | "
            f"{r['word_touch_expected']:.2%} / {r['word_touch_measured']:.2%} | "
            f"{r['cer_expected']:.2%} / {r['cer_measured']:.2%} |"
        )

    ps = [0.0, 0.1, 0.2, 1.0]
    shares = batch_table(args.target, ps, args.batches, args.batch_size, args.tau, args.seed)
    print(
        f"\n## Component shares over {args.batches} batches of {args.batch_size}, tau = {args.tau}, "
        f"target {args.target} (3,000 utterances), seed {args.seed}: setting / measured\n"
    )
    print("| p | " + " | ".join(SHARE_NAMES[k] for k in KINDS) + " |")
    print("| ---: |" + " ---: |" * len(KINDS))
    for p in ps:
        cells = [f"{r['setting']:.2%} / {r['measured']:.2%}" for r in shares if r["p"] == p]
        print(f"| {p:g} | " + " | ".join(cells) + " |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"corruption": corr, "shares": shares, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
