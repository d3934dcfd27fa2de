"""The paper's five claims (docs/paper.md "The claims to test"), judged on our runs: the tidy table of
`mbasr.study.results.gather`, one (preset, scale, seed, source domain) at a time, test-set rows only.

Each claim gets a verdict, "held", "not held" or "inconclusive", and a `why` quoting our WERs with their
95 % CIs beside the paper's published numbers (`data/paper/published_results.csv`).

The curves compared are the paper's: MB is a `mixed` run at the paper's tau (`MB_TAU`), at p = 0 the
`text_only` run with tau_t = MB_TAU; ASR is an `asr` run, at p = 0 the `base` model.

Seeds: the table may hold several seeds of the same grid; unless one `seed` is chosen they are pooled,
each point being all its seeds' test utterances together (each seed has its own corpus, so the pool is
larger, not repeated).

Significance rule: two systems scored on the same utterances are compared by a paired bootstrap
(`mbasr.evaluation.scoring.paired_bootstrap`): 2,000 resamples of the pooled utterances, each scoring both systems
on the same draw; A is significantly lower than B when the 95 % CI of WER(A) - WER(B) lies wholly below 0.
Each verdict lists its tests (`tests`: the two systems, the difference, its CI, the utterances). Where a
record lacks its per-utterance errors (older records), the rule falls back to non-overlapping 95 % CIs, a
conservative test, and the test says so.

Verdict rules, each judged per target domain, then combined: "not held" if any target is "not held",
"held" if every target is "held", "inconclusive" otherwise. A comparison that refutes the claim counts
even when other runs are missing; the claim is only "held" when every run it needs is there, and the
missing ones are named by their run id.
1. text-only vs base and vs ASR at p = 1: held if text-only is significantly lower than base AND ASR p=1
   significantly lower than text-only; not held if either is significantly the other way round.
2. MB at the smallest p in [0.1, 0.2] vs ASR at p = 1: held if MB's WER is at most the upper end of ASR's
   CI (as good, within the CI); not held if MB is significantly higher.
3. MB vs ASR at each p > 0 present for either (p = 0 is claim 1): held if MB's WER is lower at every p
   and significantly lower at one p at least; not held if ASR is significantly lower at some p.
4. Forgetting: the same rule as claim 3 on the source test set, at each p where MB or ASR was evaluated
   on it (targets with no such evaluation are not judged; with none at all, inconclusive).
5. The text-only tau_t sweep on `SWEEP_TARGET`: with best = the lowest WER, held if best's tau_t is in
   [0.4, 0.6] and best is significantly lower than some point outside it (the sweep locates an interior
   optimum); not held if best lies outside and is significantly lower than the tau_t = 0.5 point;
   inconclusive otherwise (a flat sweep cannot place the optimum).

    python -m mbasr claims results.csv --out claims.json
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from mbasr.io import atomic_write_json
from mbasr.study.evidence import (
    Judgement,
    Runs,
    paper_curve,
    paper_rows,
    rounded,
    show,
    verdict_of,
)
from mbasr.study.premises import format_premises, table_premises
from mbasr.study.results import PREMISES_FILE, read_table
from mbasr.vocab import MB_TAU, load_paper

SWEEP_TARGET = "banking"  # Figure 1's sweep is on Banking
BEST_TAU_T = (0.4, 0.6)  # "about 50 %": Figure 1's grid points next to 0.5
SMALL_P = (0.1, 0.2)  # "about 10 %": the paper's 11.24 % point; 20 % is its first main-grid point
STATEMENTS = {
    1: "Text-only adaptation helps, but leaves a gap to full-audio fine-tuning.",
    2: "MB with ~10% of the target audio is as good as, or better than, fine-tuning on 100% of it.",
    3: "At every audio share p, MB beats standard fine-tuning on the same audio.",
    4: "MB forgets the source domain far less than standard fine-tuning.",
    5: "The best target-text share tau_t is about 50%.",
}


def claim_1(runs: Runs, pub: pd.DataFrame, t: str) -> Judgement:
    """Claim 1 on target `t` (Figure 2 at p = 0 and p = 1): text-only adaptation against the base model and
    against standard fine-tuning on all the target audio (rule 1 of the module docstring)."""
    need = {"base": (None, 0.0), "text_only": (t, 0.0), "asr": (t, 1.0)}
    pts = {e: runs.get(e, tt, p, t) for e, (tt, p) in need.items()}
    missing = [f"{runs.run_id(e, tt, p)} on {t} test" for e, (tt, p) in need.items() if pts[e] is None]
    base, text, asr = pts["base"], pts["text_only"], pts["asr"]
    helps = runs.cmp(text, base) if text and base else 0
    gap = runs.cmp(asr, text) if asr and text else 0
    why = f"text-only {show(text)} vs base {show(base)} and ASR p=1 {show(asr)}"
    mb_curve, asr_curve = paper_curve(pub, t, "mb"), paper_curve(pub, t, "asr")
    b, x, a = asr_curve.get(0.0), mb_curve.get(0.0), asr_curve.get(1.0)
    if None not in (b, x, a):
        why += f" (paper: text-only {x:.2f}% vs base {b:.2f}% and ASR p=1 {a:.2f}%)"
    return Judgement(
        verdict_of(helps == 1 or gap == 1, missing, helps == -1 and gap == -1),
        why,
        missing,
        sum((runs.evidence(t, e, p, pts[e]) for e, (_, p) in need.items()), []),
        paper_rows(t, {("base", 0.0): b, ("text_only", 0.0): x, ("asr", 1.0): a}),
    )


def claim_2(runs: Runs, pub: pd.DataFrame, t: str) -> Judgement:
    """Claim 2 on target `t` (Figure 2): the mixed batch with about 10% of the audio against standard
    fine-tuning on all of it (rule 2)."""
    asr = runs.get("asr", t, 1.0, t)
    small = sorted(p for p in runs.ps("mixed", t, t) if SMALL_P[0] <= p <= SMALL_P[1])
    p_mb = small[0] if small else None
    mb = runs.get("mixed", t, p_mb, t) if small else None
    missing = [] if asr else [f"{runs.run_id('asr', t, 1.0)} on {t} test"]
    lo, hi = SMALL_P
    if mb is None:
        missing.append(f"a mixed run on {t} with {lo:g} <= p <= {hi:g}, e.g. {runs.run_id('mixed', t, lo)}")
    c = runs.cmp(mb, asr) if mb and asr else 0
    held = mb is not None and asr is not None and mb.wer <= asr.ci_high
    why = f"MB p={p_mb:g} {mb}" if mb else f"MB at p in [{lo:g}, {hi:g}] missing"
    why += f" vs ASR p=1 {show(asr)}"
    mb_curve, asr_curve = paper_curve(pub, t, "mb"), paper_curve(pub, t, "asr")
    paper_small = sorted(p for p in mb_curve if SMALL_P[0] <= p <= SMALL_P[1])
    pp = paper_small[0] if paper_small else None
    x, a = mb_curve.get(pp), asr_curve.get(1.0)
    if x is not None and a is not None:
        why += f" (paper: MB p={pp:g} {x:.2f}% vs ASR p=1 {a:.2f}%)"
    return Judgement(
        verdict_of(c == 1, missing, held),
        why,
        missing,
        runs.evidence(t, "mixed", p_mb, mb) + runs.evidence(t, "asr", 1.0, asr),
        paper_rows(t, {("mixed", pp): x, ("asr", 1.0): a}),
    )


def _curves(runs: Runs, pub: pd.DataFrame, t: str, domain: str, metric: str) -> Judgement:
    """Claims 3 and 4: MB vs ASR at each p > 0 where either was evaluated on `domain`'s test set."""
    mb_curve, asr_curve = paper_curve(pub, t, "mb", metric), paper_curve(pub, t, "asr", metric)
    out = Judgement("inconclusive", "")
    cmps, parts = [], []
    for p in sorted(runs.ps("mixed", t, domain) | runs.ps("asr", t, domain)):
        mb, asr = runs.get("mixed", t, p, domain), runs.get("asr", t, p, domain)
        out.missing += [
            f"{runs.run_id(e, t, p)} on {domain} test" for e, x in (("mixed", mb), ("asr", asr)) if x is None
        ]
        out.evidence += runs.evidence(t, "mixed", p, mb, eval_domain=domain)
        out.evidence += runs.evidence(t, "asr", p, asr, eval_domain=domain)
        out.paper += paper_rows(
            t, {("mixed", p): mb_curve.get(p), ("asr", p): asr_curve.get(p)}, metric=metric
        )
        if mb and asr:
            cmps.append((mb.wer < asr.wer, runs.cmp(mb, asr)))
            paper = (
                f" (paper {mb_curve[p]:.2f}% vs {asr_curve[p]:.2f}%)"
                if p in mb_curve and p in asr_curve
                else ""
            )
            parts.append(f"p={p:g}: MB {mb} vs ASR {asr}{paper}")
    confirmed = bool(cmps) and all(lower for lower, _ in cmps) and any(c == -1 for _, c in cmps)
    out.verdict = verdict_of(any(c == 1 for _, c in cmps), out.missing, confirmed)
    out.why = "; ".join(parts) or f"no MB and ASR pair evaluated on {domain} test"
    return out


def claim_3(runs: Runs, pub: pd.DataFrame, t: str) -> Judgement:
    """Claim 3 on target `t` (Figure 2): the mixed batch against standard fine-tuning at each audio share (rule 3)."""
    return _curves(runs, pub, t, t, "target_wer")


def claim_4(runs: Runs, pub: pd.DataFrame, t: str) -> Judgement:
    """Claim 4 on target `t` (Figure 3): forgetting, the rule of claim 3 on the source test set (rule 4)."""
    return _curves(runs, pub, t, runs.source, "source_wer")


def claim_5(runs: Runs, pub: pd.DataFrame) -> Judgement:
    """Claim 5 (Figure 1): where the text-only tau_t sweep on Banking has its lowest WER (rule 5)."""
    t = SWEEP_TARGET
    sweep = {k[3]: pt for k, pt in runs.points.items() if k[:3] == ("text_only", t, 0.0) and k[4] == t}
    inside = {tt for tt in sweep if BEST_TAU_T[0] <= tt <= BEST_TAU_T[1]}
    outside = set(sweep) - inside
    out = Judgement("inconclusive", "")
    if rounded(MB_TAU) not in sweep:
        out.missing.append(f"{runs.run_id('text_only', t)} on {t} test")
    if not outside:
        example = runs.run_id("text_only", t, tau=0.1)
        out.missing.append(f"a text-only run on {t} with tau_t outside {list(BEST_TAU_T)}, e.g. {example}")
    out.evidence = sum((runs.evidence(t, "text_only", 0.0, sweep[tt], tau_t=tt) for tt in sorted(sweep)), [])
    fig1 = pub[(pub.figure == "1") & (pub.target == t)]
    out.paper = [
        {"target": t, "system": "text_only", "p": 0.0, "tau_t": r.tau_t, "wer_pct": r.value}
        for r in fig1.itertuples()
    ]
    paper = ""
    if not fig1.empty:
        best = fig1.loc[fig1.value.idxmin()]
        paper = f" (paper: best tau_t={best.tau_t:g} at {best.value:.2f}%)"
    if not sweep:
        out.why = f"no text-only runs on {t}{paper}; missing: " + ", ".join(out.missing)
        return out
    best_tt = min(sweep, key=lambda tt: sweep[tt].wer)
    best, mid = sweep[best_tt], sweep.get(rounded(MB_TAU))
    if best_tt in inside:
        refuted, confirmed = False, any([runs.cmp(best, sweep[tt]) == -1 for tt in outside])
    else:
        refuted, confirmed = mid is not None and runs.cmp(best, mid) == -1, False
    out.verdict = verdict_of(refuted, out.missing, confirmed)
    out.why = f"best tau_t={best_tt:g} at {best}"
    if mid is not None and mid is not best:
        out.why += f", tau_t={MB_TAU:g} at {mid}"
    if out.verdict == "inconclusive" and not out.missing:
        out.why += ": the sweep is flat within the CIs, so it cannot place the optimum"
    out.why += "; sweep: " + ", ".join(f"{tt:g}: {100 * sweep[tt].wer:.2f}%" for tt in sorted(sweep)) + paper
    if out.missing and out.verdict == "inconclusive":
        out.why += "; missing: " + ", ".join(out.missing)
    return out


def _combine(per_target: dict[str, Judgement], yours: set[str] = frozenset()) -> Judgement:
    """One judgement from the targets'; a target of `yours` (an imported domain: no paper numbers) is
    named as "your domain"."""
    verdicts = {j.verdict for j in per_target.values()}
    verdict = "not held" if "not held" in verdicts else "held" if verdicts == {"held"} else "inconclusive"
    whys = [
        f"{t}{' (your domain)' if t in yours else ''}: {j.verdict}: {j.why}"
        + ("; missing: " + ", ".join(j.missing) if j.missing and j.verdict == "inconclusive" else "")
        for t, j in per_target.items()
    ]
    return Judgement(
        verdict,
        ". ".join(whys),
        [m for j in per_target.values() for m in j.missing],
        [e for j in per_target.values() for e in j.evidence],
        [e for j in per_target.values() for e in j.paper],
    )


def _select(table: pd.DataFrame, seed: int | None = None, **chosen) -> tuple[pd.DataFrame, tuple | None]:
    df = table[table.split == "test"]
    if seed is not None:
        df = df[df.seed == seed]
    for col, val in chosen.items():
        if val is not None:
            df = df[df[col] == val]
    combos = sorted(set(df[list(chosen)].itertuples(index=False, name=None)))
    if len(combos) > 1:
        raise ValueError(f"the table holds several ({', '.join(chosen)}): {combos}; choose one")
    return df, (combos[0] if combos else None)


def evaluate_claims(
    table: pd.DataFrame,
    preset: str | None = None,
    scale: str | None = None,
    seed: int | None = None,
    source_domain: str | None = None,
    published: pd.DataFrame | None = None,
    records: dict[str, dict] | None = None,
) -> list[dict[str, Any]]:
    """The five claims on `table` (rules in the module docstring): one dict per claim with claim,
    statement, verdict, why, evidence (our points, WER as fractions), tests (each comparison's paired
    test), seeds and paper (published WER in %). The table must hold one (preset, scale, source_domain)
    once filtered by the arguments; its seeds are pooled unless `seed` picks one. `records` ({run_id:
    record}, e.g. from `read_records`) give the per-utterance errors the paired tests need."""
    pub = load_paper() if published is None else published
    df, combo = _select(table, preset=preset, scale=scale, source_domain=source_domain, seed=seed)
    seeds = sorted(int(x) for x in df.seed.unique()) if combo is not None else []
    judged, tests = {}, {}
    if combo is None:
        empty = Judgement("inconclusive", "no test-set runs in the table (after filtering)")
        judged = dict.fromkeys(STATEMENTS, empty)
    else:
        runs = Runs(df, combo[0], combo[1], seeds, combo[2], records)
        for n, judge in ((1, claim_1), (2, claim_2), (3, claim_3), (4, claim_4)):
            runs.tests = []
            per_target = {t: judge(runs, pub, t) for t in runs.targets}
            if n == 4:  # forgetting is measured only where a run was evaluated on the source test set
                per_target = {t: j for t, j in per_target.items() if j.evidence}
            yours = set(runs.targets) - set(pub.target)
            judged[n] = (
                _combine(per_target, yours) if per_target else Judgement("inconclusive", _none_why(runs, n))
            )
            tests[n] = runs.tests
        runs.tests = []
        judged[5] = claim_5(runs, pub)
        tests[5] = runs.tests
    return [
        {
            "claim": n,
            "statement": STATEMENTS[n],
            "verdict": j.verdict,
            "why": j.why,
            "seeds": seeds,
            "tests": tests.get(n, []),
            "evidence": j.evidence,
            "paper": j.paper,
        }
        for n, j in judged.items()
    ]


def records_for(results_csv: str | Path) -> dict[str, dict]:
    """The records beside a results table ({run_id: record}): in its folder (a work dir's results/) or in
    its `records/` subfolder (the published results/); empty when there are none."""
    from mbasr.study.results import read_records

    folder = Path(results_csv).parent
    for where in (folder, folder / "records"):
        recs = read_records(where) if where.is_dir() else []
        if recs:
            return {r["run_id"]: r for r in recs}
    return {}


def _none_why(runs: Runs, n: int) -> str:
    if n != 4 or not runs.targets:
        return "no adapted runs in the table; missing: text-only, MB and ASR runs on a target domain"
    t = runs.targets[0]
    return (
        f"no MB or ASR run was evaluated on the {runs.source} test set; missing, e.g. "
        f"{runs.run_id('mixed', t, 0.2)} and {runs.run_id('asr', t, 0.2)} on {runs.source} test"
    )


def write_claims(claims: list[dict[str, Any]], path: str | Path) -> None:
    atomic_write_json(path, claims)


def format_claims(claims: list[dict[str, Any]], width: int = 100) -> str:
    lines = []
    for c in claims:
        lines.append(f"{c['claim']}. {c['statement']}  -> {c['verdict'].upper()}")
        lines += textwrap.wrap(c["why"], width, initial_indent="     ", subsequent_indent="     ")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mbasr claims", description=__doc__.split("\n\n")[0])
    parser.add_argument("results_csv", help="the table of `python -m mbasr results gather`")
    parser.add_argument("--out", help="JSON file for the verdicts")
    parser.add_argument("--preset")
    parser.add_argument("--scale")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--source-domain")
    args = parser.parse_args(argv)
    try:
        table = read_table(args.results_csv)
        records = records_for(args.results_csv)
        claims = evaluate_claims(
            table, args.preset, args.scale, args.seed, args.source_domain, records=records
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_claims(claims))
    premises = table_premises(table)
    print("\nPremise: fine-tuning on all the target audio pays off (mbasr/study/premises.py)")
    print(format_premises(premises))
    if args.out:
        write_claims(claims, args.out)
        atomic_write_json(Path(args.out).with_name(PREMISES_FILE), premises)
    return 0


if __name__ == "__main__":
    sys.exit(main())
