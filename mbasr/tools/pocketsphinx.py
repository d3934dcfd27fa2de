"""Real recorded English speech for tests: the clips and transcripts of Debian's `pocketsphinx-testdata`
(about a dozen utterances: a fixture, not a corpus), and Whisper's own decoder run on them to check a
converted model."""

from __future__ import annotations

import re
from pathlib import Path

# --- The check: transcribe real speech ----------------------------------------------------------------
POCKETSPHINX_TESTDATA = Path("/usr/share/pocketsphinx/test/data")  # Debian package pocketsphinx-testdata


POCKETSPHINX_SETS = ("librivox/transcription", "cards/cards.transcription")  # (wav beside, named by key)


_SPHINX_LINE = re.compile(r"^\s*(?:<s>)?\s*(?P<text>.*?)\s*(?:</s>)?\s*\((?P<key>[^()\s]+)\)\s*$")


def pocketsphinx_clips(root: Path = POCKETSPHINX_TESTDATA) -> list[tuple[str, Path, str]]:
    """(key, wav, reference) for the 16 kHz clips of pocketsphinx-testdata that have a transcript."""
    clips = []
    for rel in POCKETSPHINX_SETS:
        trans = Path(root) / rel
        if not trans.is_file():
            continue
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            m = _SPHINX_LINE.match(line)
            if not m:
                raise ValueError(f"{trans}:{lineno}: not a '<s> text </s> (key)' line")
            wav = trans.parent / f"{m['key']}.wav"
            if not wav.is_file():
                raise FileNotFoundError(f"{trans}:{lineno}: {wav} missing")
            clips.append((f"{trans.parent.name}/{m['key']}", wav, m["text"]))
    return clips


def transcribe_whisper(
    model_dir: Path,
    wavs: list[Path],
    batch_size: int = 8,
    num_beams: int = 1,
    language: str = "en",
    max_new_tokens: int = 128,
) -> list[str]:
    """Greedy (or beam) transcription of 16 kHz WAVs with an HF Whisper folder. A multilingual model is
    told the language (HF's automatic language detection degraded Whisper base into repetition loops)."""
    import soundfile as sf
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(model_dir)
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    sr = processor.feature_extractor.sampling_rate
    lang = {"language": language, "task": "transcribe"} if model.generation_config.is_multilingual else {}
    out: list[str] = []
    for start in range(0, len(wavs), batch_size):
        audio = []
        for wav in wavs[start : start + batch_size]:
            x, rate = sf.read(wav, dtype="float32", always_2d=True)
            if rate != sr:
                raise ValueError(f"{wav}: sample rate {rate}, the feature extractor needs {sr}")
            audio.append(x.mean(axis=1))
        feats = processor(audio, sampling_rate=sr, return_tensors="pt").input_features
        with torch.inference_mode():
            ids = model.generate(feats, num_beams=num_beams, max_new_tokens=max_new_tokens, **lang)
        out += [t.strip() for t in processor.batch_decode(ids, skip_special_tokens=True)]
    return out
