"""Result records (schema, validation, atomic files) and the tidy table."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

import mbasr.io
from mbasr.evaluation.scoring import score
from mbasr.study.results import (
    COLUMNS,
    SCHEMA_ID,
    eval_entry,
    gather,
    main,
    make_record,
    read_records,
    read_table,
    run_id_for,
    validate_record,
    write_record,
    write_table,
)


def _eval(domain="banking", wer=0.05, half=0.01, split="test"):
    return {
        "domain": domain,
        "split": split,
        "wer": wer,
        "ci_low": wer - half,
        "ci_high": wer + half,
        "n_utts": 400,
        "n_words": 3000,
        "alignments": None,
    }


def _fields(**over):
    fields = {
        "experiment": "mixed",
        "notebook": "06_mixed_batch.ipynb",
        "executed_notebook": "results/notebooks/tiny-default-s0-mixed-banking-p0.2-tau0.5.ipynb",
        "preset": "tiny",
        "scale": "default",
        "seed": 0,
        "source_domain": "source",
        "target_domain": "banking",
        "p": 0.2,
        "tau": 0.5,
        "steps": 300,
        "lr": 1e-3,
        "params": {"preset": "tiny", "p": 0.2, "tau": 0.5},
        "config": {"stage2": {"lr": 1e-3}},
        "seconds": {"train": 12.5, "decode": 3.0, "total": 15.5},
        "model_path": "runs/adapt/x/model.pt",
        "eval": [_eval(), _eval("source", wer=0.12)],
    }
    return fields | over


def _base_fields():
    return _fields(
        experiment="base",
        notebook="03_base_model.ipynb",
        target_domain=None,
        p=0.0,
        tau=None,
        eval=[_eval("source", 0.1), _eval("banking", 0.08)],
    )


def test_make_record_fills_derived_fields_and_round_trips(tmp_path):
    rec = make_record(**_fields())
    assert rec["schema"] == SCHEMA_ID
    assert rec["run_id"] == "tiny-default-s0-mixed-banking-p0.2-tau0.5"
    assert math.isclose(rec["tau_t"], 0.4)
    assert rec["code_version"] == mbasr.io.code_version()
    path = write_record(rec, tmp_path)
    assert path == tmp_path / f"{rec['run_id']}.json"
    assert read_records(tmp_path) == [rec]


def test_make_record_keeps_given_fields():
    rec = make_record(**_fields(run_id="custom-id", created="2026-01-02T03:04:05+00:00", code_version="abc"))
    assert (rec["run_id"], rec["created"], rec["code_version"]) == (
        "custom-id",
        "2026-01-02T03:04:05+00:00",
        "abc",
    )


def test_run_id_for():
    assert run_id_for("base", "tiny", "default", 0) == "tiny-default-s0-base"
    assert (
        run_id_for("asr", "paper", "large", 2, "musical_instruments", 1.0)
        == "paper-large-s2-asr-musical_instruments-p1"
    )
    assert (
        run_id_for("text_only", "tiny", "default", 0, "banking", 0.0, 0.3)
        == "tiny-default-s0-text_only-banking-p0-tau0.3"
    )
    assert run_id_for("mixed", "tiny", "micro", 1, "banking", 0.1124, 0.5, extra=("steps50",)) == (
        "tiny-micro-s1-mixed-banking-p0.1124-tau0.5-steps50"
    )
    with pytest.raises(ValueError, match="letters, digits"):
        run_id_for("asr", "tiny", "default", 0, "my domain", 0.5)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"experiment": "finetune"}, "experiment"),
        ({"seed": 0.5}, "seed"),
        ({"p": 1.5}, "p"),
        ({"eval": []}, "eval"),
        ({"eval": [_eval(split="train")]}, "eval[0].split"),
        ({"eval": [_eval(), {**_eval(), "n_utts": 0}]}, "eval[1].n_utts"),
        ({"eval": [{**_eval(), "wer": 0.2}]}, "eval[0]"),  # above its CI
        ({"eval": [{**_eval(), "wer": float("nan")}]}, "eval[0].wer"),
        ({"eval": [_eval(), _eval()]}, "eval"),  # banking test twice
        ({"tau_t": 0.25}, "tau_t"),  # not (1 - p) * tau
        ({"experiment": "asr"}, "tau"),  # an ASR run has no text share
        ({"experiment": "text_only"}, "p"),  # text-only with audio
        ({"created": "yesterday"}, "created"),
        ({"seconds": {"train": "long"}}, "seconds.train"),
        ({"seconds": {"train": float("inf")}}, "seconds.train"),
    ],
)
def test_validation_names_the_field(over, field):
    rec = {**make_record(**_fields()), **over}
    with pytest.raises(ValueError, match=rf"runs/x\.json: .*\n  field {re.escape(field)}:"):
        validate_record(rec, where="runs/x.json")


def test_validation_names_missing_and_unknown_fields():
    fields = _fields(extra_field=1)
    del fields["notebook"]
    with pytest.raises(ValueError) as err:
        make_record(**fields)
    assert "'notebook' is a required property" in str(err.value)
    assert "'extra_field' was unexpected" in str(err.value)


def test_base_record_needs_no_target():
    make_record(**_base_fields())
    with pytest.raises(ValueError, match="field target_domain"):
        make_record(**_base_fields() | {"target_domain": "banking"})


def test_read_records_names_the_bad_file(tmp_path):
    good = make_record(**_fields())
    write_record(good, tmp_path)
    bad = {**good, "run_id": "bad", "eval": [{**_eval(), "ci_low": 0.07}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"bad\.json: .*\n  field eval\[0\]: needs ci_low <= wer"):
        read_records(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        read_records(tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps({**good, "run_id": "other"}))
    with pytest.raises(ValueError, match=r"bad\.json: field run_id: 'other' does not match"):
        read_records(tmp_path)


def test_read_records_skips_the_claims_file_beside_them(tmp_path):
    write_record(make_record(**_fields()), tmp_path)
    (tmp_path / "claims.json").write_text(json.dumps([{"claim": 1, "verdict": "held"}]))
    assert len(read_records(tmp_path)) == 1


def test_write_record_validates_first_and_leaves_no_temp_files(tmp_path, monkeypatch):
    rec = make_record(**_fields())
    with pytest.raises(ValueError, match="field p"):
        write_record({**rec, "p": -1}, tmp_path)
    assert list(tmp_path.iterdir()) == []
    write_record(rec, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{rec['run_id']}.json"]

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(mbasr.io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_record({**rec, "run_id": "second"}, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{rec['run_id']}.json"]


def test_eval_entry_from_a_score():
    res = score(
        ["the card was declined", "open an account"], ["the card was declined", "open account"], n_boot=50
    )
    entry = eval_entry("banking", "test", res, alignments="eval/banking_test.jsonl")
    sizes = {"n_utts": 2, "n_words": 7, "alignments": "eval/banking_test.jsonl"}
    assert (
        entry
        == {
            "domain": "banking",
            "split": "test",
            "wer": res.wer,
            "ci_low": res.ci_low,
            "ci_high": res.ci_high,
        }
        | sizes
    )
    make_record(**_fields(eval=[entry]))


def test_gather_is_one_row_per_eval_entry(tmp_path):
    write_record(make_record(**_fields()), tmp_path)
    write_record(make_record(**_base_fields()), tmp_path)
    df = gather(tmp_path)
    assert tuple(df.columns) == COLUMNS
    assert len(df) == 4
    base = df[df.experiment == "base"]
    assert base.target_domain.isna().all() and set(base.eval_domain) == {"source", "banking"}
    mixed = df[(df.experiment == "mixed") & (df.eval_domain == "source")].iloc[0]
    assert (mixed.wer, mixed.p, mixed.tau_t, mixed.split) == (0.12, 0.2, 0.4, "test")
    out = tmp_path / "table" / "results.csv"
    write_table(df, out)
    assert [p.name for p in out.parent.iterdir()] == ["results.csv"]
    back = read_table(out)
    assert back.run_id.tolist() == df.run_id.tolist()
    assert back.wer.tolist() == pytest.approx(df.wer.tolist())


def test_gather_of_an_empty_folder_has_the_columns(tmp_path):
    assert tuple(gather(tmp_path).columns) == COLUMNS
    with pytest.raises(FileNotFoundError):
        gather(tmp_path / "missing")


def test_read_table_checks_columns(tmp_path):
    pd.DataFrame({"run_id": ["a"], "wer": [0.1]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match="not the results table"):
        read_table(tmp_path / "t.csv")


def test_cli_gather(tmp_path, capsys):
    write_record(make_record(**_fields()), tmp_path / "results")
    assert main(["gather", str(tmp_path / "results"), "--out", str(tmp_path / "results.csv")]) == 0
    assert "2 rows from 1 runs" in capsys.readouterr().out
    assert len(read_table(tmp_path / "results.csv")) == 2


def test_cli_gather_reports_a_bad_record(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{}")
    assert main(["gather", str(tmp_path)]) == 1
    assert "broken.json" in capsys.readouterr().err
