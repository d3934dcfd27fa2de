"""The domain store (mbasr/data/domains.py) and the importer's bad-input cases."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from conftest import needs_tts, needs_whisper
from test_byod import POCKETSPHINX, jsonl, wav

from mbasr.cli import main
from mbasr.data import byod, tts
from mbasr.data.corpus import DOMAINS, SOURCE, TARGETS
from mbasr.data.domains import (
    check_domain,
    import_domain,
    imported_domains,
    load,
    require_target,
    store_dir,
)
from mbasr.data.manifest import read_manifest
from mbasr.data.validate import AudioProblem, DataError


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_format_is_detected_from_every_line(tmp_path):
    wav(tmp_path / "b.wav")
    # the first line's empty source once made the whole file text-only, dropping line 2's audio silently
    rows = [{"key": "a", "source": "", "target": "no audio"}, {"key": "b", "source": "b.wav", "target": "x"}]
    path = jsonl(tmp_path / "authors.jsonl", rows)
    assert byod.detect_format(path) == "authors"
    report = byod.import_data(path, "auto", "d", "train", tmp_path / "out", verbose=False)
    assert [u.key for u in report.utterances] == ["b"] and report.utterances[0].has_audio
    assert [(o.line, r.split(":")[0]) for o, r in report.skipped] == [(1, "missing audio")]
    with pytest.raises(DataError, match=f"{path}:1: missing audio"):
        byod.import_data(path, "auto", "d", "train", tmp_path / "strict", strict=True, verbose=False)
    # a manifest's own text-only lines (source "") are text
    assert byod.detect_format(jsonl(tmp_path / "t.jsonl", [rows[0]])) == "text"


@pytest.mark.parametrize(
    "rows, named",
    [
        ([{"key": "a", "source": "a.wav", "target": "x"}, {"key": "b", "target": "y"}], ("authors", "text")),
        ([{"audio_filepath": "a.wav", "text": "x"}, {"text": "y"}], ("nemo", "text")),
        ([{"audio_filepath": "a.wav", "text": "x"}, {"key": "b", "source": "", "target": "y"}], ("nemo",)),
    ],
)
def test_mixed_schemas_are_refused_naming_lines(tmp_path, rows, named):
    path = jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(DataError, match="lines of several formats") as err:
        byod.detect_format(path)
    for kind in named:
        assert kind in str(err.value)
    assert f"{path}:1" in str(err.value) and f"{path}:2" in str(err.value)


def test_converted_audio_is_named_by_domain_split_and_content(tmp_path):
    store = tmp_path / "store"
    wav(tmp_path / "one" / "k.wav", 0.5, sr=8_000)
    wav(tmp_path / "two" / "k.wav", 0.9, sr=8_000)  # same key, other content
    one = jsonl(tmp_path / "one" / "m.jsonl", [{"key": "k", "source": "k.wav", "target": "first"}])
    two = jsonl(tmp_path / "two" / "m.jsonl", [{"key": "k", "source": "k.wav", "target": "second"}])
    first = byod.import_data(one, "auto", "alpha", "test", store, verbose=False).utterances[0]
    before = _digest(first.source)
    others = [
        byod.import_data(two, "auto", dom, split, store, verbose=False).utterances[0]
        for dom, split in (("beta", "test"), ("alpha", "train"))
    ]
    assert len({first.source, *(u.source for u in others)}) == 3
    assert _digest(first.source) == before  # the first manifest's audio was not replaced
    assert Path(first.source).parent == store / "audio" / "alpha" / "test"
    assert sf.info(read_manifest(store / "alpha_test.jsonl")[0].source).duration == pytest.approx(0.5)
    # the same import again finds its own file (same content, same name)
    again = byod.import_data(one, "auto", "alpha", "test", store, verbose=False).utterances[0]
    assert again.source == first.source and len(list((store / "audio" / "alpha" / "test").iterdir())) == 1


def test_strict_failing_late_and_failed_synthesis_leave_nothing(tmp_path, monkeypatch):
    for name in ("a", "b"):
        wav(tmp_path / f"{name}.wav", 0.5, sr=8_000)
    rows = [{"key": k, "source": f"{k}.wav", "target": k} for k in ("a", "b")]
    path = jsonl(tmp_path / "m.jsonl", rows)
    real = byod.to_16k_mono

    def fails_on_b(info):  # b's header is fine; reading its samples fails (after a was converted)
        if info.path.name == "b.wav":
            raise AudioProblem(f"unreadable audio: {info.path} (truncated)")
        return real(info)

    monkeypatch.setattr(byod, "to_16k_mono", fails_on_b)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=f"{path}:2: unreadable audio"):
        byod.import_data(path, "auto", "d", "train", out, strict=True, verbose=False)
    assert not [p for p in out.rglob("*") if p.is_file()]
    monkeypatch.setattr(byod, "to_16k_mono", real)

    def broken(utts):
        raise RuntimeError("engine crashed")

    with pytest.raises(RuntimeError, match="engine crashed"):
        byod.import_data(path, "auto", "d", "train", out, verbose=False, synthesize=broken)
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_cli_prints_the_report_once_and_bad_input_exits_2(tmp_path, capsys):
    path = jsonl(tmp_path / "t.jsonl", [{"key": "k", "target": "x"}, {"key": "k", "target": "y"}])
    argv = ["import", str(path), "--domain", "mine", "--split", "train", "--work-dir", str(tmp_path / "w")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(f"import {path}") == 1 and out.count(f"{path}:2: duplicate key") == 1
    assert main(["import", str(tmp_path / "nope.jsonl"), *argv[2:]]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "nope.jsonl: not found" in err and "Traceback" not in err
    assert main([*argv, "--format", "csv"]) == 2 and "fmt='csv'" in capsys.readouterr().err
    assert main([*argv, "--strict"]) == 2 and f"{path}:2: duplicate key" in capsys.readouterr().err


def test_names_of_synthetic_domains_need_replace(tmp_path):
    path = jsonl(tmp_path / "t.jsonl", [{"key": "k", "target": "pay the bill"}])
    work = tmp_path / "w"
    target = TARGETS[0]
    with pytest.raises(ValueError, match=f"domain='{target}': a synthetic domain.*--replace"):
        import_domain(path, target, "train", work, verbose=False)
    assert not store_dir(work).exists()
    import_domain(path, target, "train", work, replace=True, verbose=False)
    assert imported_domains(work) == [target]
    with pytest.raises(ValueError, match=f"domain='{SOURCE}'.*cannot be replaced"):
        import_domain(path, SOURCE, "train", work, replace=True, verbose=False)
    with pytest.raises(ValueError, match="applies to synthesised lines only"):
        import_domain(path, "mine", "train", work, condition="reverb", verbose=False)


def test_one_lookup_for_synthetic_and_imported_domains(tmp_path, micro):
    work = tmp_path / "w"
    jsonl(tmp_path / "t.jsonl", [{"key": "k1", "target": "check the pump"}, {"text": "oil the gears"}])
    import_domain(tmp_path / "t.jsonl", "plant", "train", work, verbose=False)
    check_domain(work, "plant")
    for d in DOMAINS:
        check_domain(work, d)
    with pytest.raises(ValueError) as err:
        check_domain(work, "nowhere")
    msg = str(err.value)
    assert "target_domain='nowhere'" in msg and "plant" in msg and all(d in msg for d in DOMAINS)
    assert [u.target for u in load(micro, work, "plant", "train")] == ["check the pump", "oil the gears"]
    assert load(micro, work, TARGETS[0], "test") == load(micro, tmp_path / "empty", TARGETS[0], "test")
    with pytest.raises(FileNotFoundError, match="no test split imported"):
        load(micro, work, "plant", "test")
    # the minimum of a target: train text and a test set with audio
    with pytest.raises(ValueError, match="plant_test.jsonl: missing; a target needs a test set with audio"):
        require_target(work, "plant", SOURCE)
    jsonl(tmp_path / "test.jsonl", [{"key": "t1", "target": "replace the belt"}])
    import_domain(tmp_path / "test.jsonl", "plant", "test", work, verbose=False)
    with pytest.raises(ValueError, match="plant_test.jsonl: no line has audio.*--synthesize"):
        require_target(work, "plant", SOURCE)
    with pytest.raises(ValueError, match="source domain cannot be its own target"):
        require_target(work, SOURCE, SOURCE)


@needs_tts
def test_synthesize_speaks_train_with_training_voices_and_test_with_held_out_ones(tmp_path):
    work = tmp_path / "w"
    wav(tmp_path / "own.wav", 0.6, sr=22_050)
    lines = [
        {"key": f"l{i}", "source": "", "target": t}
        for i, t in enumerate(
            ["check the pump", "oil the gears", "replace the belt", "log the pressure", "close the valve"]
        )
    ]
    own = {"key": "own", "source": "own.wav", "target": "my own recording"}
    path = jsonl(tmp_path / "m.jsonl", [own, *lines])
    voices = {}
    for split in ("train", "dev", "test"):
        rep = import_domain(path, "plant", split, work, synthesize=True, verbose=False)
        utts = {u.key: u for u in read_manifest(rep.manifest_path)}
        assert utts["own"].voice == "user"  # brought its audio: kept (converted to 16 kHz)
        assert Path(utts["own"].source).parent == (work / "imported" / "audio" / "plant" / split).resolve()
        spoken = [utts[f"l{i}"] for i in range(len(lines))]
        assert all(u.has_audio and u.duration > 0.3 for u in spoken)
        assert all(Path(u.source).is_relative_to((work / "audio").resolve()) for u in spoken)
        voices[split] = {u.voice for u in spoken}
    assert voices["train"] <= set(tts.TRAIN_VOICES) and len(voices["train"]) == len(lines)
    assert voices["dev"] | voices["test"] <= set(tts.TEST_VOICES)
    # cached as the corpus's audio: the same import again synthesises nothing
    test = read_manifest(work / "imported" / "plant_test.jsonl")
    stamps = [Path(u.source).stat().st_mtime_ns for u in test if u.voice != "user"]
    import_domain(path, "plant", "test", work, synthesize=True, verbose=False)
    again = read_manifest(work / "imported" / "plant_test.jsonl")
    assert again == test and stamps == [Path(u.source).stat().st_mtime_ns for u in again if u.voice != "user"]
    # an acoustic condition is other audio
    import_domain(path, "plant", "test", work, synthesize=True, condition="telephone", verbose=False)
    phone = read_manifest(work / "imported" / "plant_test.jsonl")
    assert {u.source for u in phone if u.voice != "user"}.isdisjoint(u.source for u in test)
    require_target(work, "plant", SOURCE, need_dev=True)


PLANT_TEXT = [
    f"{verb} the {part} on line {n}"
    for n, (verb, part) in enumerate(
        [(v, p) for v in ("check", "oil", "replace", "tighten") for p in ("pump", "belt", "valve", "gear")]
    )
]


@needs_tts
@needs_whisper
@pytest.mark.slow
def test_imported_domain_through_adapt_records_and_claims(micro, micro_work_dir, tmp_path):
    """A text-only domain with a spoken test set, adapted at micro scale (random stage 0, 2 steps)."""
    from test_adapt import MICRO_RUN
    from test_train import _random_stage0

    from mbasr.report.site import build
    from mbasr.runs.adapt import adapt, base_record, compare, side_by_side
    from mbasr.runs.base import base_model
    from mbasr.study.claims import evaluate_claims, write_claims
    from mbasr.study.results import gather, write_table

    work = tmp_path / "w"
    work.mkdir()
    for d in ("corpus", "audio"):  # the session's micro corpus, without its imported domains or runs
        (work / d).symlink_to(micro_work_dir / d)
    train = jsonl(tmp_path / "train.jsonl", [{"text": t} for t in PLANT_TEXT[:12]])
    test = jsonl(tmp_path / "test.jsonl", [{"text": t} for t in PLANT_TEXT[12:]])
    import_domain(train, "plant", "train", work, verbose=False)  # text only
    import_domain(test, "plant", "test", work, synthesize=True, verbose=False)
    common = dict(preset="tiny", work_dir=work, seed=0, scale="micro", stage0=_random_stage0(tmp_path))
    kw = dict(common, base_steps=2, overrides=MICRO_RUN, results_dir=tmp_path / "results", progress=False)
    # refused before any heavy work: an unknown name, and p > 0 on a domain without train audio
    with pytest.raises(ValueError, match="target_domain='nowhere'.*plant"):
        adapt(**kw, target_domain="nowhere", strategy="text_only", p=0.0)
    with pytest.raises(ValueError, match="an audio share p > 0 draws from the lines with audio"):
        adapt(**kw, target_domain="plant", strategy="mixed", p=0.5)
    assert not (work / "base").exists()

    text = adapt(**kw, target_domain="plant", strategy="text_only", p=0.0)
    import_domain(train, "plant", "train", work, synthesize=True, verbose=False)
    mixed = adapt(**kw, target_domain="plant", strategy="mixed", p=0.5)
    assert mixed.record["audio_subset"]["utterances"] == 6
    assert mixed.run_dir.name.split("-")[-1] != text.run_dir.name.split("-")[-1]
    base = base_record(**kw)
    for res in (text, mixed):
        assert res.record["target_domain"] == "plant"
        assert [(e["domain"], e["split"], e["n_utts"]) for e in res.record["eval"]] == [("plant", "test", 4)]
    assert "plant" in {e["domain"] for e in base["eval"]}
    table = gather(tmp_path / "results")
    assert set(table[table.eval_domain == "plant"].experiment) == {"base", "text_only", "mixed"}
    b = base_model(**common, steps=2, overrides=MICRO_RUN, progress=False)
    assert list(compare({"base": b, "mixed": mixed}, ["plant"])["system"]) == ["base", "mixed"]
    assert len(side_by_side(mixed, b, n=2)) == 2
    claims = evaluate_claims(table)
    assert "plant (your domain)" in claims[0]["why"] and "paper" not in claims[0]["why"]
    assert not [e for e in claims[0]["paper"] if e["target"] == "plant"]
    # the report: figure 2 gains the domain's panel (ours only), the claims table its row
    results = tmp_path / "results"
    write_table(table, results / "results.csv")
    write_claims(claims, results / "claims.json")
    build(results)
    fig2 = pd.read_csv(results / "tables" / "figure-2.csv")
    plant = fig2[fig2.target == "plant"]
    assert len(plant) and plant["mb_paper_wer"].isna().all() and plant["mb_ours_wer"].notna().any()
    assert "Plant (your domain)" in (results / "figures" / "figure-2.svg").read_text()
    assert "plant (your domain)" in (results / "report" / "home.md").read_text()


def test_grid_names_imported_domains_and_reruns_on_reimport(tmp_path):
    import yaml

    from mbasr.study.grid import expand_grid

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "workflow/grids/your_domain.yaml").read_text())
    cfg |= {"work_dir": str(tmp_path / "w"), "stage2_lr_file": ""}
    with pytest.raises(ValueError, match="grid config: target='my_domain': no such domain.*banking"):
        expand_grid(cfg)
    for split in ("train", "test"):
        path = jsonl(tmp_path / f"{split}.jsonl", [{"text": t} for t in PLANT_TEXT[:4]])
        import_domain(path, "my_domain", split, tmp_path / "w", verbose=False)
    jobs = expand_grid(cfg)
    runs = {n: j for n, j in jobs.items() if j.record}
    manifests = [str(tmp_path / "w" / "imported" / f"my_domain_{s}.jsonl") for s in ("test", "train")]
    assert "tiny-default-s0-mixed-my_domain-p0.1-tau0.5" in runs
    assert len(runs) == 1 + 1 + 2 * 2  # base, text-only, mixed and asr at two p
    for name, job in runs.items():
        assert set(manifests) <= set(job.files), name  # a re-import reruns the base model and every run
        if name != "tiny-default-s0-base":
            assert job.params["target_domain"] == "my_domain" and job.params["eval_source"] is True
    assert "07_forgetting-my_domain-p0.1-s0" in jobs


AUSTEN_LIKE = [
    "she was not an ill tempered young woman",
    "he had then leisure to consider what might be done for his sisters",
    "mister dashwood might have been made more respectable by a better marriage",
    "to be rather cold and rather selfish is not to be ill disposed",
    "he might have been made amiable by a more amiable wife",
    "how much there might be in his power to do for them he could not say",
    "the young man was not an ill disposed young man",
    "his wife was rather cold hearted and rather selfish",
]


@needs_tts
@needs_whisper
@pytest.mark.slow
@pytest.mark.skipif(
    not (POCKETSPHINX / "librivox" / "transcription").is_file(),
    reason="Debian's pocketsphinx-testdata is not installed (no /usr/share/pocketsphinx/test/data/librivox)",
)
def test_real_speech_test_set_of_a_text_only_domain(micro, micro_work_dir, tmp_path):
    """Five LibriVox clips (pocketsphinx-testdata) as the test set of a text-only domain whose train text
    is their transcripts plus similar sentences (the WER shows the plumbing on real
    speech, not generalisation), adapted text-only at micro scale from the shipped stage 0."""
    from mbasr.runs.adapt import adapt

    rows, train = [], list(AUSTEN_LIKE)
    for line in (POCKETSPHINX / "librivox" / "transcription").read_text().splitlines():
        m = re.fullmatch(r"<s> (.*) </s> \((\S+)\)", line.strip())
        rows.append({"key": m[2], "source": str(POCKETSPHINX / "librivox" / f"{m[2]}.wav"), "target": m[1]})
        train.append(m[1])
    work = tmp_path / "w"
    work.mkdir()
    for d in ("corpus", "audio"):
        (work / d).symlink_to(micro_work_dir / d)
    test = import_domain(jsonl(tmp_path / "test.jsonl", rows), "austen", "test", work, verbose=False)
    assert test.kept == 5 and {u.voice for u in test.utterances} == {"user"}
    import_domain(jsonl(tmp_path / "train.jsonl", [{"text": t} for t in train]), "austen", "train", work)
    res = adapt(
        preset="tiny",
        work_dir=work,
        scale="micro",
        target_domain="austen",
        strategy="text_only",
        p=0.0,
        base_steps=100,
        steps=20,
        progress=False,
    )
    e = res.wer("austen")
    assert e["n_utts"] == 5 and e["n_words"] == sum(len(r["target"].split()) for r in rows)
    assert 0 <= e["ci_low"] <= e["wer"] <= e["ci_high"]
    print(f"\nLibriVox clips, text-only adaptation at micro scale: WER {100 * e['wer']:.1f}% "
          f"[{100 * e['ci_low']:.1f}, {100 * e['ci_high']:.1f}] on {e['n_words']} words")  # fmt: skip
