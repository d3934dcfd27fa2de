"""The corpus at scale "micro": determinism, held-out voices, nested subsets, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import needs_tts

from mbasr.data import tts
from mbasr.data.audio_cache import plan_audio, synth_job
from mbasr.data.corpus import DOMAINS, GENERAL, SCALES, Corpus, load_split, prepare_corpus
from mbasr.data.manifest import read_manifest, subset


@needs_tts
def test_sizes_splits_and_voices(micro):
    n_src, n_tgt = SCALES["micro"]["source"], SCALES["micro"]["target"]
    for d in DOMAINS:
        want = n_src if d == "source" else n_tgt
        splits = {s: load_split(micro, d, s) for s in ("train", "dev", "test")}
        assert [len(splits[s]) for s in ("train", "dev", "test")] == list(want)
        train_text = {u.target for u in splits["train"]}
        assert not train_text & {u.target for u in splits["test"]}, f"{d}: test sentences in train"
        assert {u.voice for u in splits["train"]} <= set(tts.TRAIN_VOICES)
        for s in ("dev", "test"):
            assert {u.voice for u in splits[s]} <= set(tts.TEST_VOICES), f"{d}/{s} uses a training voice"
        assert len({u.voice for u in splits["test"]}) >= 2
        for u in splits["train"][:3] + splits["test"][:3]:
            info = __import__("soundfile").info(u.source)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.duration - u.duration) < 0.01
    assert micro.params["conditions"]["banking"] == "telephone"


@needs_tts
def test_general_pool_excludes_held_out_sentences(micro):
    pool = set(micro.general_text_path.read_text().splitlines())
    for d in DOMAINS:
        for s in ("dev", "test"):
            assert not pool & {u.target for u in load_split(micro, d, s)}
    assert not pool & {u.target for u in load_split(micro, GENERAL, "dev")}
    assert micro.stats["general_text_words"] >= SCALES["micro"]["general_words"] * 0.9


@needs_tts
def test_rebuild_is_a_noop(micro, capsys):
    before = {p: p.stat().st_mtime_ns for p in micro.root.glob("*.jsonl")}
    again = prepare_corpus(micro.root.parent.parent, scale="micro", seed=0)
    assert again.root == micro.root
    assert "nothing to do" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in micro.root.glob("*.jsonl")}


@needs_tts
def test_same_seed_same_text_and_audio(micro, tmp_path, capsys):
    """A fresh build of the source domain alone, in another folder, one process on another number of
    torch threads, gives the same sentences and the same audio, byte for byte."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)  # inherited by the forked worker
    try:
        other = prepare_corpus(tmp_path, scale="micro", seed=0, domains=["source"], jobs=1, progress=True)
    finally:
        torch.set_num_threads(threads)
    n = sum(x["utterances"] for x in other.stats["splits"])  # source and general speech
    out = capsys.readouterr().out  # the build's figure: time, utterances, hours, processes, CPU
    assert f"with 1 process: {n} utterances" in out and " h of audio" in out and "s user +" in out
    assert set(other.stats["build_cpu_seconds"]) == {"user", "sys"}
    a, b = load_split(micro, "source", "test"), load_split(other, "source", "test")
    assert [u.target for u in a] == [u.target for u in b]
    assert [u.voice for u in a] == [u.voice for u in b]
    differ = [
        x.key
        for d, split in [("source", s) for s in ("train", "dev", "test")]
        + [(GENERAL, "train"), (GENERAL, "dev")]
        for x, y in zip(load_split(micro, d, split), load_split(other, d, split), strict=True)
        if Path(x.source).read_bytes() != Path(y.source).read_bytes()
    ]
    assert not differ, f"{len(differ)} files differ between two builds, e.g. {differ[:3]}"
    seed1 = prepare_corpus(tmp_path, scale="micro", seed=1, domains=["source"], jobs=1, progress=False)
    assert [u.target for u in load_split(seed1, "source", "test")] != [u.target for u in a]


@needs_tts
def test_nested_subsets(micro):
    train = load_split(micro, "banking", "train")
    small, big = subset(train, 0.25, seed=3), subset(train, 0.5, seed=3)
    assert len(small) == round(0.25 * len(train)) and len(big) == round(0.5 * len(train))
    assert {u.key for u in small} <= {u.key for u in big}
    assert subset(train, 0.0, 3) == [] and len(subset(train, 1.0, 3)) == len(train)
    with pytest.raises(ValueError, match="p=1.5"):
        subset(train, 1.5, 3)


def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="scale='huge'"):
        prepare_corpus(tmp_path, scale="huge")
    with pytest.raises(ValueError, match="must include 'source'"):
        prepare_corpus(tmp_path, scale="micro", domains=["banking"])
    with pytest.raises(ValueError, match="unknown"):
        prepare_corpus(tmp_path, scale="micro", domains=["source", "astronomy"])
    with pytest.raises(ValueError, match="conditions"):
        prepare_corpus(tmp_path, scale="micro", conditions={"banking": "underwater"})


@needs_tts
def test_manifest_round_trip_is_relative(micro):
    path = micro.manifest("source", "dev")
    row = json.loads(path.read_text().splitlines()[0])
    assert not Path(row["source"]).is_absolute()
    assert read_manifest(path)[0].source == str((path.parent / row["source"]).resolve())


@needs_tts
def test_unreadable_cache_file_is_made_again(micro, tmp_path):
    """Cache files are written without a per-file fsync; one a crash left empty is synthesised again."""
    job = plan_audio("source", "test", ["check my balance please"], tts.TEST_VOICES, "clean", 0, tmp_path)[0]
    Path(job.path).parent.mkdir(parents=True)
    Path(job.path).write_bytes(b"")
    key, dur = synth_job(job)
    assert key == job.key and dur > 0.5
    assert abs(__import__("soundfile").info(job.path).duration - dur) < 1e-3
    assert synth_job(job) == (key, pytest.approx(dur, abs=1e-3))  # now read from the cache


def test_condition_version_keys_only_its_audio(tmp_path, monkeypatch):
    """Changing one acoustic condition makes only that condition's audio again (new cache paths)."""
    from mbasr.data import acoustics

    def paths():
        return {
            c: [
                j.path
                for j in plan_audio("source", "train", ["a b c", "d e f"], tts.TRAIN_VOICES, c, 0, tmp_path)
            ]
            for c in acoustics.CONDITIONS
        }

    before = paths()
    monkeypatch.setitem(acoustics.CONDITION_VERSIONS, "reverb", "changed")
    after = paths()
    assert {c for c in acoustics.CONDITIONS if before[c] != after[c]} == {"reverb"}


def _copy_corpus(corpus, dest: Path) -> Path:
    """A copy of `corpus` and its audio under the work folder `dest` (the same layout, so the same
    parameters find it); returns the copy's corpus folder."""
    import shutil

    work = corpus.root.parent.parent
    shutil.copytree(corpus.root, dest / "corpus" / corpus.root.name)
    shutil.copytree(work / "audio", dest / "audio")
    return dest / "corpus" / corpus.root.name


@needs_tts
def test_truncated_wav_is_named_and_made_again(micro, tmp_path, capsys):
    """A WAV cut short after the build is never reused: the reuse check names it and makes it again."""
    from mbasr.data import integrity

    root = _copy_corpus(micro, tmp_path)
    utt = load_split(Corpus(root, micro.params), "source", "train")[3]
    original = Path(utt.source).read_bytes()
    tts.write_wav(utt.source, tts.read_wav(utt.source)[0][:480])  # 0.03 s left
    again = prepare_corpus(tmp_path, scale="micro", seed=0, progress=False)
    err = capsys.readouterr().err
    assert again.root == root and "1 file(s) differ" in err
    assert f"{utt.source}: " in err and f"0.03 s of audio, {utt.duration:.2f} s when built" in err, err
    assert Path(utt.source).read_bytes() == original
    assert integrity.check(root) == []


@needs_tts
def test_deleted_manifest_line_is_named_and_rebuilt(micro, tmp_path, capsys):
    root = _copy_corpus(micro, tmp_path)
    path = root / "source_dev.jsonl"
    original = path.read_text()
    path.write_text("".join(original.splitlines(keepends=True)[1:]))
    prepare_corpus(tmp_path, scale="micro", seed=0, progress=False)
    err = capsys.readouterr().err
    n = SCALES["micro"]["source"][1]
    assert f"{path}: {n - 1} utterances, {n} when built" in err, err
    assert path.read_text() == original


@needs_tts
def test_marker_without_record_is_not_trusted(micro, tmp_path, capsys):
    root = _copy_corpus(micro, tmp_path)
    (root / "COMPLETE").write_text("")  # as older versions wrote it
    (root / "stats.json").unlink()
    prepare_corpus(tmp_path, scale="micro", seed=0, progress=False)
    assert "no record of the built files" in capsys.readouterr().err
    stats = json.loads((root / "stats.json").read_text())
    assert (stats["splits"], stats["gap"]) == (micro.stats["splits"], micro.stats["gap"])


@needs_tts
def test_cache_file_cut_short_is_not_taken_by_another_corpus(micro, tmp_path):
    """A new corpus sharing audio with a built one checks each cached file against the size the built
    one recorded: a file cut short since is made again, not taken into the new corpus."""
    root = _copy_corpus(micro, tmp_path)
    utt = load_split(Corpus(root, micro.params), "source", "test")[0]
    original = Path(utt.source).read_bytes()
    tts.write_wav(utt.source, tts.read_wav(utt.source)[0][:480])
    other = prepare_corpus(tmp_path, scale="micro", seed=0, domains=["source"], jobs=1, progress=False)
    assert other.root != root and other.stats["synthesised_utterances"] == 1
    assert load_split(other, "source", "test")[0].duration == utt.duration
    assert Path(utt.source).read_bytes() == original
