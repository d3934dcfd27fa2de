"""The five claims' verdicts on small hand-built tables, each built to give held, not held or
inconclusive."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mbasr.runs.ids import run_id_for
from mbasr.study.claims import evaluate_claims, main
from mbasr.study.results import COLUMNS, write_table
from mbasr.vocab import load_paper

HALF = 0.002  # CI half-width: narrow enough that 1-point WER differences are significant
PS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def _row(exp, target, p, tau, eval_domain, wer, half=HALF, seed=0, split="test"):
    tau_t = None if tau is None else (1 - p) * tau
    run_id = run_id_for(exp, "tiny", "default", seed, target, p, tau)
    values = [run_id, exp, "tiny", "default", seed, "source", target, p, tau, tau_t, 100, 1e-3,
              eval_domain, split, wer, wer - half, wer + half, 400,
              "test", "2026-01-01T00:00:00+00:00", None]  # fmt: skip
    return dict(zip(COLUMNS, values, strict=True))


def _paper_like(target="banking"):
    """A table that reproduces the paper's banking shape: every claim held."""
    rows = [_row("base", None, 0.0, None, d, w) for d, w in (("source", 0.128), (target, 0.080))]
    rows += [_row("asr", target, p, None, target, 0.070 - 0.025 * p) for p in PS]
    rows += [_row("mixed", target, p, 0.5, target, 0.046 - 0.004 * p) for p in PS]
    rows += [
        _row("text_only", target, 0.0, t, target, w) for t, w in ((0.1, 0.079), (0.5, 0.064), (0.9, 0.069))
    ]
    rows += [
        _row("mixed", target, 0.2, 0.5, "source", 0.113),
        _row("asr", target, 0.2, None, "source", 0.174),
    ]
    return rows


def _table(rows):
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _set(rows, exp, p, wer, eval_domain="banking", half=HALF, tau_t=None):
    """`rows` with the WER of one point replaced."""
    out = []
    for r in rows:
        hit = (r["experiment"], round(r["p"], 4), r["eval_domain"]) == (exp, p, eval_domain)
        if hit and (tau_t is None or round(r["tau_t"], 4) == tau_t):
            r = {**r, "wer": wer, "ci_low": wer - half, "ci_high": wer + half}
        out.append(r)
    return out


def _drop(rows, exp, p, eval_domain="banking", tau_t=None):
    return [
        r
        for r in rows
        if not (
            (r["experiment"], round(r["p"], 4), r["eval_domain"]) == (exp, p, eval_domain)
            and (tau_t is None or round(r["tau_t"], 4) == tau_t)
        )
    ]


def _claim(rows, n):
    return next(c for c in evaluate_claims(_table(rows)) if c["claim"] == n)


def test_the_paper_like_table_holds_every_claim():
    claims = evaluate_claims(_table(_paper_like()))
    assert [c["claim"] for c in claims] == [1, 2, 3, 4, 5]
    assert {c["claim"]: c["verdict"] for c in claims} == dict.fromkeys(range(1, 6), "held")
    assert all(c["statement"] and c["evidence"] and c["paper"] for c in claims)


def test_why_quotes_our_cis_and_the_paper():
    c1 = _claim(_paper_like(), 1)
    assert "text-only 6.40% [6.20, 6.60] vs base 8.00% [7.80, 8.20]" in c1["why"]
    assert "paper: text-only 6.38% vs base 8.02% and ASR p=1 4.55%" in c1["why"]
    assert {(e["system"], e["wer_pct"]) for e in c1["paper"]} == {
        ("base", 8.02),
        ("text_only", 6.38),
        ("asr", 4.55),
    }
    c4 = _claim(_paper_like(), 4)
    assert "paper 11.30% vs 17.40%" in c4["why"]


def test_claim1_text_only_worse_than_base_is_not_held():
    assert _claim(_set(_paper_like(), "text_only", 0.0, 0.090, tau_t=0.5), 1)["verdict"] == "not held"


def test_claim1_no_gap_to_full_audio_is_not_held():
    assert _claim(_set(_paper_like(), "asr", 1.0, 0.070), 1)["verdict"] == "not held"


def test_claim1_overlapping_cis_are_inconclusive():
    rows = _set(_paper_like(), "text_only", 0.0, 0.078, half=0.004, tau_t=0.5)
    assert _claim(rows, 1)["verdict"] == "inconclusive"


def test_claim1_missing_run_is_named():
    c = _claim(_drop(_paper_like(), "asr", 1.0), 1)
    assert c["verdict"] == "inconclusive"
    assert "missing: tiny-default-s0-asr-banking-p1 on banking test" in c["why"]


def test_claim2_verdicts():
    rows = _paper_like()  # MB at p=0.1: 4.56 % vs ASR at p=1: 4.50 % [4.30, 4.70]
    assert _claim(rows, 2)["verdict"] == "held"  # within ASR's CI
    assert _claim(_set(rows, "mixed", 0.1, 0.0485), 2)["verdict"] == "inconclusive"  # above it, CIs overlap
    assert _claim(_set(rows, "mixed", 0.1, 0.060), 2)["verdict"] == "not held"


def test_claim2_uses_the_smallest_p_from_0_1_and_names_a_missing_one():
    rows = _set(_drop(_paper_like(), "mixed", 0.1), "mixed", 0.2, 0.044)
    c = _claim(rows, 2)
    assert (c["verdict"], c["evidence"][0]["p"]) == ("held", 0.2)
    c = _claim(_drop(_drop(rows, "mixed", 0.2), "mixed", 0.2, "source"), 2)
    assert c["verdict"] == "inconclusive"
    assert "a mixed run on banking with 0.1 <= p <= 0.2" in c["why"]


def test_claim3_asr_better_somewhere_is_not_held():
    c = _claim(_set(_paper_like(), "asr", 0.6, 0.030), 3)
    assert c["verdict"] == "not held"
    assert "p=0.6: MB 4.36% [4.16, 4.56] vs ASR 3.00% [2.80, 3.20]" in c["why"]


def test_claim3_never_significant_is_inconclusive():
    rows = _paper_like()
    for p in PS:  # ASR 0.3 points above MB everywhere, with CIs of +-0.5 points
        rows = _set(rows, "mixed", p, 0.046, half=0.005)
        rows = _set(rows, "asr", p, 0.049, half=0.005)
    assert _claim(rows, 3)["verdict"] == "inconclusive"


def test_claim3_missing_asr_point_is_named():
    c = _claim(_drop(_paper_like(), "asr", 0.4), 3)
    assert c["verdict"] == "inconclusive"
    assert "tiny-default-s0-asr-banking-p0.4 on banking test" in c["why"]


def test_claim3_a_refutation_stands_with_runs_missing():
    rows = _set(_drop(_paper_like(), "asr", 0.4), "asr", 0.8, 0.030)
    assert _claim(rows, 3)["verdict"] == "not held"


def test_claim3_every_target_must_hold():
    rows = _paper_like() + [r for r in _paper_like("agriculture") if r["experiment"] != "base"]
    rows += [_row("base", None, 0.0, None, "agriculture", 0.080)]
    assert _claim(rows, 3)["verdict"] == "held"
    rows = _set(rows, "asr", 0.4, 0.030, eval_domain="agriculture")
    c = _claim(rows, 3)
    assert c["verdict"] == "not held"
    assert "agriculture: not held" in c["why"] and "banking: held" in c["why"]


def test_claim4_verdicts():
    rows = _paper_like()
    assert _claim(_set(rows, "mixed", 0.2, 0.180, "source"), 4)["verdict"] == "not held"
    assert _claim(_set(rows, "mixed", 0.2, 0.173, "source", half=0.01), 4)["verdict"] == "inconclusive"


def test_claim4_missing_source_evaluations():
    c = _claim(_drop(_paper_like(), "asr", 0.2, "source"), 4)
    assert c["verdict"] == "inconclusive"
    assert "tiny-default-s0-asr-banking-p0.2 on source test" in c["why"]
    c = _claim(_drop(_drop(_paper_like(), "asr", 0.2, "source"), "mixed", 0.2, "source"), 4)
    assert c["verdict"] == "inconclusive"
    assert "no MB or ASR run was evaluated on the source test set" in c["why"]


def test_claim5_verdicts():
    rows = _paper_like()
    assert _claim(_set(rows, "text_only", 0.0, 0.058, tau_t=0.9), 5)["verdict"] == "not held"
    flat = _set(_set(rows, "text_only", 0.0, 0.065, tau_t=0.9), "text_only", 0.0, 0.066, tau_t=0.1)
    c = _claim(flat, 5)
    assert c["verdict"] == "inconclusive" and "flat" in c["why"]
    near = _set(rows, "text_only", 0.0, 0.0635, tau_t=0.9)  # best outside, within the CI of tau_t = 0.5
    assert _claim(near, 5)["verdict"] == "inconclusive"
    assert "paper: best tau_t=0.5 at 6.38%" in _claim(rows, 5)["why"]


def test_claim5_missing_points_are_named():
    c = _claim(_drop(_paper_like(), "text_only", 0.0, tau_t=0.5), 5)
    assert c["verdict"] == "inconclusive"
    assert "tiny-default-s0-text_only-banking-p0-tau0.5 on banking test" in c["why"]
    only_mid = [r for r in _paper_like() if r["experiment"] != "text_only" or r["tau_t"] == 0.5]
    c = _claim(only_mid, 5)
    assert c["verdict"] == "inconclusive" and "tau_t outside [0.4, 0.6]" in c["why"]


def test_empty_and_ambiguous_tables():
    claims = evaluate_claims(_table([]))
    assert [c["verdict"] for c in claims] == ["inconclusive"] * 5
    rows = _paper_like() + [
        {**r, "seed": 1, "run_id": r["run_id"].replace("-s0-", "-s1-")} for r in _paper_like()
    ]
    pooled = evaluate_claims(_table(rows))  # seeds are pooled
    assert [c["verdict"] for c in pooled] == ["held"] * 5 and all(c["seeds"] == [0, 1] for c in pooled)
    assert [c["verdict"] for c in evaluate_claims(_table(rows), seed=1)] == ["held"] * 5
    other = [{**r, "preset": "small", "run_id": r["run_id"].replace("tiny", "small")} for r in _paper_like()]
    with pytest.raises(ValueError, match="several"):
        evaluate_claims(_table(_paper_like() + other))


def test_dev_rows_are_ignored_and_duplicates_rejected():
    dev = [{**r, "split": "dev", "wer": 0.5, "ci_low": 0.4, "ci_high": 0.6} for r in _paper_like()]
    assert [c["verdict"] for c in evaluate_claims(_table(_paper_like() + dev))] == ["held"] * 5
    dup = _paper_like() + [{**_paper_like()[0], "run_id": "another-base"}]
    with pytest.raises(ValueError, match="another-base"):
        evaluate_claims(_table(dup))


def test_published_numbers_load():
    pub = load_paper()
    fig1 = pub[pub.figure == "1"]
    assert fig1.loc[fig1.value.idxmin()].tau_t == 0.5
    assert set(pub.figure) >= {"1", "2", "2-low", "3"}


def test_cli_writes_json_and_prints_the_table(tmp_path, capsys):
    write_table(_table(_paper_like()), tmp_path / "results.csv")
    assert main([str(tmp_path / "results.csv"), "--out", str(tmp_path / "claims.json")]) == 0
    out = capsys.readouterr().out
    assert out.count("-> HELD") == 5
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert [c["verdict"] for c in claims] == ["held"] * 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims.json", "premises.json", "results.csv"]
    premises = json.loads((tmp_path / "premises.json").read_text())
    assert [(r["premise"], r["met"]) for r in premises] == [
        ("fine-tuning on all banking audio cuts its WER", True)
    ]
    assert "8.0% -> 4.5% (44% relative)" in premises[0]["measured"] and "Premise" in out


# --- paired tests over utterances, pooled over seeds --------------------------------------------------------


def _record(row, errors, words):
    keys = [f"{row['eval_domain']}-test-{i:05d}" for i in range(len(errors))]
    utts = {"keys": keys, "errors": [int(e) for e in errors], "words": [int(w) for w in words]}
    entry = {"domain": row["eval_domain"], "split": "test", "utterances": utts}
    return {"run_id": row["run_id"], "eval": [entry]}


def _paired_table(diff_errors: int, seeds=(0, 1, 2), n=300, seed=0):
    """Text-only and base on banking for each seed: the same per-utterance errors, plus `diff_errors`
    fewer for text-only on random utterances; the table's CIs overlap widely, so only pairing can tell."""
    rng = np.random.default_rng(seed)
    rows, records = [], {}
    for s in seeds:
        words = rng.integers(5, 15, n)
        base = rng.binomial(words, 0.3)
        text = base.copy()
        for i in rng.choice(n, diff_errors, replace=False):
            text[i] = max(0, text[i] - 1)
        for exp, tau, err in (("base", None, base), ("text_only", 0.5, text)):
            wer = err.sum() / words.sum()
            r = _row(exp, None if exp == "base" else "banking", 0.0, tau, "banking", wer, half=0.05, seed=s)
            rows.append(r)
            records[r["run_id"]] = _record(r, err, words)
    return _table(rows), records


def test_paired_bootstrap_detects_a_known_difference_and_not_identical_systems():
    from mbasr.evaluation.scoring import paired_bootstrap

    rng = np.random.default_rng(1)
    words = rng.integers(5, 15, 400)
    a = rng.binomial(words, 0.3)
    diff, lo, hi = paired_bootstrap(a, a, words)
    assert diff == 0 and lo == 0 and hi == 0  # identical systems: never significant
    b = a + (rng.random(400) < 0.3)  # B makes ~120 more errors over ~4,000 words
    diff, lo, hi = paired_bootstrap(a, b, words)
    assert diff < 0 and hi < 0, (diff, lo, hi)
    with pytest.raises(ValueError, match="same non-zero number"):
        paired_bootstrap(a, b[:10], words)


def test_claims_pair_utterances_pooled_over_seeds():
    table, records = _paired_table(diff_errors=60)
    claim1 = evaluate_claims(table, records=records)[0]
    tests = [t for t in claim1["tests"] if t["a"].startswith("tiny-default-s0-text_only")]
    assert len(tests) == 1 and tests[0]["test"] == "paired bootstrap"
    assert tests[0]["n_utts"] == 900 and tests[0]["significant"] == "a lower"  # text-only below base
    assert tests[0]["ci"][1] < 0
    # without the per-utterance errors, the overlapping CIs cannot show it
    unpaired = evaluate_claims(table)[0]
    assert all(t["significant"] == "no" for t in unpaired["tests"])
    # identical systems: no difference found
    same, recs = _paired_table(diff_errors=0)
    assert all(t["significant"] == "no" for t in evaluate_claims(same, records=recs)[0]["tests"])
