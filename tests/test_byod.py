"""Bring-your-own data: the four readers, loud validation, conversion to 16 kHz mono PCM_16."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mbasr.data.byod import DataError, describe, detect_format, import_data, read_folder, read_nemo
from mbasr.data.manifest import read_manifest

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


def wav(path: Path, seconds: float = 0.5, sr: int = 16_000, channels: int = 1, **kw) -> Path:
    """A quiet deterministic tone (`kw`: soundfile's subtype/format)."""
    t = np.arange(round(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([y] * channels, axis=1) if channels > 1 else y, sr, **kw)
    return path


def jsonl(path: Path, rows: list) -> Path:
    """Rows are dicts (dumped as JSON) or raw bytes/str lines written as they are."""
    lines = [
        r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode() for r in rows
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run(path, fmt, tmp_path, **kw):
    return import_data(path, fmt, "mydomain", "train", tmp_path / "out", verbose=False, **kw)


def assert_round_trip(report, expected: dict[str, tuple[str, float]]):
    """expected: key -> (transcript, duration) in the manifest written and read back."""
    assert report.manifest_path == report.manifest_path.parent / "mydomain_train.jsonl"
    utts = read_manifest(report.manifest_path)
    assert [u.key for u in utts] == list(expected)
    for u in utts:
        assert u.target == expected[u.key][0]
        assert u.duration == pytest.approx(expected[u.key][1], abs=1e-3)
        assert (u.domain, u.split) == ("mydomain", "train")
        if u.has_audio:
            assert Path(u.source).is_file() and u.voice == "user"
            assert sf.info(u.source).duration == pytest.approx(u.duration, abs=1e-3)
    assert report.kept == len(expected) and not report.skipped


def test_authors_round_trip(tmp_path):
    wav(tmp_path / "data" / "a.wav", 0.5)
    b = wav(tmp_path / "elsewhere" / "b.wav", 1.25)
    path = jsonl(
        tmp_path / "data" / "train.jsonl",
        [
            {"key": "a", "source": "a.wav", "target": "  Hello there. "},
            {"key": "b", "source": str(b), "target": "What's my BALANCE?"},
        ],
    )
    report = run(path, "authors", tmp_path)
    assert_round_trip(report, {"a": ("Hello there.", 0.5), "b": ("What's my BALANCE?", 1.25)})
    assert detect_format(path) == "authors" and not report.converted


def test_nemo_round_trip_keys_unique(tmp_path):
    wav(tmp_path / "x" / "utt.wav", 0.5)
    wav(tmp_path / "y" / "utt.wav", 0.75)
    rows = [
        {"audio_filepath": "x/utt.wav", "duration": 0.5, "text": "one"},
        {"audio_filepath": "y/utt.wav", "duration": 0.75, "text": "two"},
    ]
    path = jsonl(tmp_path / "nemo.json", rows)
    assert [r.key for r in read_nemo(path)] == ["utt", "utt-2"]
    assert detect_format(path) == "nemo"
    assert_round_trip(run(path, "auto", tmp_path), {"utt": ("one", 0.5), "utt-2": ("two", 0.75)})


def test_folder_round_trip_recursive(tmp_path):
    root = tmp_path / "corpus"
    wav(root / "001.wav", 0.5)
    (root / "001.txt").write_text("first one\n")
    wav(root / "sub" / "002.wav", 0.8)
    (root / "sub" / "002.txt").write_text("second\nline\n")
    assert detect_format(root) == "folder"
    report = run(root, "folder", tmp_path)
    assert_round_trip(report, {"001": ("first one", 0.5), "sub/002": ("second line", 0.8)})


def test_text_round_trip(tmp_path):
    path = jsonl(tmp_path / "lm.jsonl", [{"key": "k1", "target": "pay my bill"}, {"text": "open an account"}])
    assert detect_format(path) == "text"
    report = run(path, "text", tmp_path)
    assert_round_trip(report, {"k1": ("pay my bill", 0.0), "lm-2": ("open an account", 0.0)})
    assert all(u.source == "" and u.voice == "" for u in read_manifest(report.manifest_path))


def test_conversion_is_done_and_reported(tmp_path):
    cases = {
        "stereo44": dict(sr=44_100, channels=2),
        "rate8k": dict(sr=8_000),
        "flac": dict(format="FLAC"),
        "pcm24": dict(subtype="PCM_24"),
        "float": dict(subtype="FLOAT"),
        "pcm8": dict(subtype="PCM_U8"),
        "plain": {},
    }
    rows = []
    for name, kw in cases.items():
        suffix = ".flac" if kw.get("format") == "FLAC" else ".wav"
        wav(tmp_path / "in" / f"{name}{suffix}", 0.6, **kw)
        rows.append({"key": name, "source": f"{name}{suffix}", "target": name})
    report = run(jsonl(tmp_path / "in" / "m.jsonl", rows), "authors", tmp_path)
    assert len(report.converted) == 6 and report.kept == 7
    text = str(report)
    assert "6 converted" in text and "44100 Hz, 2 channels" in text and "FLAC/PCM_16" in text
    for u in report.utterances:
        info = sf.info(u.source)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16_000, 1, "PCM_16", "WAV")
        assert u.duration == pytest.approx(0.6, abs=1e-3)
        converted = u.key != "plain"
        assert (Path(u.source).parent == tmp_path / "out" / "audio" / "mydomain" / "train") is converted
        if converted:  # the tone survives conversion (not silence, not clipped)
            y, _ = sf.read(u.source)
            assert 0.15 < np.abs(y).max() < 0.4
    assert_round_trip(report, {k: (k, 0.6) for k in cases})


def test_every_bad_line_is_named(tmp_path):
    d = tmp_path / "in"
    for name in ("good", "dup", "empty", "short", "long"):
        wav(d / f"{name}.wav", {"short": 0.05, "long": 61.0}.get(name, 0.5))
    (d / "garbage.wav").write_bytes(b"RIFF not really a wave file" * 10)
    wav(d / "dupkey.wav", 0.5)
    rows = [
        {"key": "good", "source": "good.wav", "target": "fine"},  # 1
        {"key": "missing", "source": "nowhere.wav", "target": "x"},  # 2
        {"key": "garbage", "source": "garbage.wav", "target": "x"},  # 3
        {"key": "empty", "source": "empty.wav", "target": "   "},  # 4
        b'{"key": "latin1", "source": "good.wav", "target": "caf\xe9"}',  # 5
        {"key": "good", "source": "dupkey.wav", "target": "again"},  # 6
        {"key": "short", "source": "short.wav", "target": "x"},  # 7
        {"key": "long", "source": "long.wav", "target": "x"},  # 8
        '{"key": "broken", "source": ',  # 9
        {"key": "notarget", "source": "dup.wav"},  # 10
        {"key": "dupaudio", "source": "good.wav", "target": "same file"},  # 11
    ]
    path = jsonl(d / "m.jsonl", rows)
    report = run(path, "authors", tmp_path)
    expected = {
        2: "missing audio",
        3: "unreadable audio",
        4: "empty transcript",
        5: "not UTF-8",
        6: "duplicate key: 'good' (first at " + f"{path}:1)",
        7: "absurd duration: 0.050 s",
        8: "absurd duration: 61.000 s",
        9: "bad JSON",
        10: "missing field 'target'",
        11: f"duplicate audio: {d / 'good.wav'} (first at {path}:1)",
    }
    assert [(o.file, o.line) for o, _ in report.skipped] == [(str(path), n) for n in expected]
    text = str(report)
    for (_, reason), (line, want) in zip(report.skipped, expected.items(), strict=True):
        assert reason.startswith(want), (line, reason)
        assert f"{path}:{line}: {reason}" in text
    assert report.kept == 1 and report.n_records == 11 and "11 lines: 1 kept" in text
    assert "skipped by reason:" in text and "absurd duration 2" in text
    assert [u.key for u in read_manifest(report.manifest_path)] == ["good"]
    assert describe(report, limit=2).count("\n  /") == 2 and "... and 8 more" in describe(report, limit=2)


def test_folder_mode_unpaired_and_non_utf8(tmp_path):
    root = tmp_path / "corpus"
    wav(root / "ok.wav")
    (root / "ok.txt").write_text("fine")
    (root / "orphan.txt").write_text("no audio for me")
    wav(root / "lonely.wav")
    wav(root / "latin.wav")
    (root / "latin.txt").write_bytes(b"caf\xe9")
    records = {r.key: r for r in read_folder(root)}
    assert set(records) == {"ok", "orphan", "lonely", "latin"}
    report = run(root, "folder", tmp_path)
    reasons = {str(o): r for o, r in report.skipped}
    assert reasons[f"{root / 'orphan.txt'}:1"].startswith("transcript without audio")
    assert reasons[str(root / "lonely.wav")].startswith("audio without transcript")
    assert reasons[f"{root / 'latin.txt'}:1"].startswith("not UTF-8: byte 0xe9")
    assert report.kept == 1


def test_nemo_duration_disagreement_uses_real_one(tmp_path):
    wav(tmp_path / "a.wav", 2.0)
    wav(tmp_path / "b.wav", 1.0)
    rows = [
        {"audio_filepath": "a.wav", "duration": 3.0, "text": "off by one second"},
        {"audio_filepath": "b.wav", "duration": 1.3, "text": "within tolerance"},
    ]
    path = jsonl(tmp_path / "nemo.jsonl", rows)
    report = run(path, "nemo", tmp_path)
    assert [str(o) for o, _ in report.corrected] == [f"{path}:1"]
    assert "disagrees with the audio's 2.000 s" in str(report)
    assert_round_trip(report, {"a": ("off by one second", 2.0), "b": ("within tolerance", 1.0)})


def test_strict_raises_with_whole_report_and_writes_nothing(tmp_path):
    wav(tmp_path / "a.wav", 0.5, sr=8_000)
    rows = [
        {"key": "a", "source": "a.wav", "target": "ok"},
        {"key": "b", "source": "b.wav", "target": "missing"},
        {"key": "c", "source": "a.wav", "target": ""},
        "not json",
    ]
    path = jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DataError) as err:
        run(path, "authors", tmp_path, strict=True)
    msg = str(err.value)
    for line in (2, 3, 4):
        assert f"{path}:{line}:" in msg
    assert "3 skipped" in msg and f"{path}:1: WAV/PCM_16, 8000 Hz" in msg
    assert not (tmp_path / "out").exists()
    ok = jsonl(tmp_path / "ok.jsonl", rows[:1])
    assert run(ok, "authors", tmp_path, strict=True).kept == 1  # a clean file passes strict mode


def test_parameters_and_empty_results_are_loud(tmp_path):
    path = jsonl(tmp_path / "t.jsonl", [{"key": "k", "target": "x"}])
    with pytest.raises(ValueError, match="fmt='csv'"):
        import_data(path, "csv", "d", "train", tmp_path)
    with pytest.raises(ValueError, match="split='training'"):
        import_data(path, "text", "d", "training", tmp_path)
    with pytest.raises(ValueError, match="domain='a/b'"):
        import_data(path, "text", "a/b", "train", tmp_path)
    with pytest.raises(DataError, match="not found"):
        import_data(tmp_path / "nope.jsonl", "auto", "d", "train", tmp_path)
    bad = jsonl(tmp_path / "bad.jsonl", [{"key": "k", "target": ""}])
    with pytest.raises(DataError, match=re.escape(f"{bad}:1: empty transcript")):
        import_data(bad, "text", "d", "train", tmp_path, verbose=False)
    with pytest.raises(DataError, match="cannot detect the format"):
        detect_format(jsonl(tmp_path / "odd.jsonl", [{"foo": 1}]))


def test_default_mode_prints_the_report(tmp_path, capsys):
    path = jsonl(tmp_path / "t.jsonl", [{"key": "k", "target": "x"}, {"key": "k", "target": "y"}])
    import_data(path, "text", "d", "dev", tmp_path)
    assert f"{path}:2: duplicate key" in capsys.readouterr().out


@pytest.mark.skipif(
    not (POCKETSPHINX / "librivox" / "transcription").is_file(),
    reason="Debian's pocketsphinx-testdata is not installed (no /usr/share/pocketsphinx/test/data/librivox)",
)
def test_real_recordings_pocketsphinx(tmp_path):
    """LibriVox clips from pocketsphinx-testdata: lines `<s> words </s> (file id)`."""
    rows, expected = [], {}
    for line in (POCKETSPHINX / "librivox" / "transcription").read_text().splitlines():
        m = re.fullmatch(r"<s> (.*) </s> \((\S+)\)", line.strip())
        assert m, line
        audio = POCKETSPHINX / "librivox" / f"{m[2]}.wav"
        rows.append({"key": m[2], "source": str(audio), "target": m[1]})
        expected[m[2]] = (m[1], sf.info(str(audio)).duration)
    report = run(jsonl(tmp_path / "librivox.jsonl", rows), "auto", tmp_path)
    assert report.fmt == "authors" and not report.converted and len(expected) == 5
    assert_round_trip(report, expected)
