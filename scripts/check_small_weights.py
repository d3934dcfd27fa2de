"""Check the converted `small` weights on real speech: transcribe the clips of Debian's
pocketsphinx-testdata (LibriVox read speech and spoken card names) with the converted Whisper (HF
generate, greedy), score them with mbasr's normaliser, and print per-clip hypotheses and the WER.
Optionally (--llm) ask the converted SmolLM2 one chat question.

    python scripts/check_small_weights.py [--weights weights] [--whisper tiny.en] [--max-wer 0.15]

Exits 1 when the WER is not below --max-wer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mbasr.evaluation.scoring import save_alignments, score
from mbasr.tools.pocketsphinx import POCKETSPHINX_TESTDATA, pocketsphinx_clips, transcribe_whisper
from mbasr.tools.weights import SMOLLM2_SOURCE, WHISPER_SOURCES


def check_llm(folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    question = "What is the capital of France?"
    ids = tok.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=24, do_sample=False)
    print(
        f"SmolLM2: {question!r} -> {tok.decode(out[0, ids['input_ids'].shape[1] :], skip_special_tokens=True)!r}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--weights", type=Path, default=Path("weights"), help="folder made by build_small_weights.py"
    )
    ap.add_argument("--whisper", choices=sorted(WHISPER_SOURCES), default="tiny.en")
    ap.add_argument(
        "--testdata", type=Path, default=POCKETSPHINX_TESTDATA, help="pocketsphinx test data folder"
    )
    ap.add_argument("--max-wer", type=float, default=0.15, help="fail when the WER (a fraction) is not below")
    ap.add_argument("--alignments", type=Path, help="also write per-clip alignments (JSONL) here")
    ap.add_argument("--llm", action="store_true", help="also ask the converted SmolLM2 a question")
    args = ap.parse_args(argv)

    folder = args.weights / WHISPER_SOURCES[args.whisper].folder
    if not (folder / "SOURCE.md").is_file():
        print(
            f"{folder} not built: run scripts/build_small_weights.py --whisper {args.whisper}",
            file=sys.stderr,
        )
        return 1
    clips = pocketsphinx_clips(args.testdata)
    if not clips:
        print(f"no clips under {args.testdata}: apt-get install pocketsphinx-testdata", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    hyps = transcribe_whisper(folder, [wav for _, wav, _ in clips])
    elapsed = time.perf_counter() - t0
    result = score([ref for _, _, ref in clips], hyps, keys=[key for key, _, _ in clips])
    for row in result.rows:
        print(f"{row['key']}  WER {100 * row['wer']:5.1f}%  ({row['subs']}S {row['dels']}D {row['ins']}I)")
        print(f"    ref: {row['ref']}\n    hyp: {row['hyp_raw']}")
    print(
        f"\nWhisper {args.whisper}: WER {100 * result.wer:.2f}% "
        f"(95% CI {100 * result.ci_low:.1f}-{100 * result.ci_high:.1f}) over {result.n_utts} clips, "
        f"{result.n_words} words; {result.subs} S, {result.dels} D, {result.ins} I; transcribed in {elapsed:.0f} s"
    )
    if args.alignments:
        save_alignments(result, args.alignments)
    if args.llm:
        check_llm(args.weights / SMOLLM2_SOURCE.folder)
    return 0 if result.wer < args.max_wer else 1


if __name__ == "__main__":
    sys.exit(main())
