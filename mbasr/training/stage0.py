"""Stage 0 of the `tiny` preset: what the paper gets from a pretrained LLM, made here from scratch.

The paper's LLM (Llama-3.2-3B-Instruct) was pretrained on general data and reads projected speech after
a projector-only stage 1, because it is a strong instruction-following LM. A 4-layer LM must first be
taught that skill. The tiny preset's encoder is pretrained (Whisper tiny.en, frozen); its LM is made here:
- `lm`: a BPE tokenizer and the LM on general text and the source domain's training text (never a
  target's), plus "copy" examples in the prompt format: a clean or corrupted sentence in the speech slot,
  the clean sentence as the answer (what text-only adaptation relies on);
- `speech`: the LM continues with a fresh projector on the *general* speech pool (never a domain's audio:
  `general` holds generic channels), each batch keeping plain text and copy examples so the LM keeps
  reading text in the slot; the source's training text is weighted up (it is new to the LM when the
  source changes). The result knows general English and call-centre language, reads speech and text in
  the slot, and has never seen a target.
A from-scratch encoder (`encoder.name: tiny`) is pretrained with CTC instead (`encoder`, then `merge`).

The result is one small checkpoint (`stage0.pt`: LM, projector and tokenizer, the resolved config, the
measures and where and how it was made), shipped in the repository so the main job starts at stage 1.
Rebuild: `python -m mbasr pretrain lm --out lm.pt`, then `python -m mbasr pretrain speech --init lm.pt
--out mbasr/assets/tiny/stage0.pt` (mbasr/assets/tiny/RECORD.md says how the shipped one was made).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mbasr.config import DEFAULT_STAGE0, Config, StageConfig, load_preset
from mbasr.data.corpus import DOMAINS, GENERAL, Corpus, load_split, prepare_corpus
from mbasr.io import code_version
from mbasr.method.corrupt import PAPER_CORRUPTION
from mbasr.model import LLMItem, build_model
from mbasr.model.cache import encode_cached
from mbasr.model.encoders import TinyEncoder
from mbasr.model.llm import load_tokenizer
from mbasr.model.precision import autocast
from mbasr.model.tokenizer import train_tokenizer
from mbasr.progress import bar as progress_bar
from mbasr.training.optim import make_optimizer, make_scheduler, optimizer_step
from mbasr.training.stage0_checkpoint import (
    half,
    load_llm_state,
    merge_parts,
    read_part,
    stage0_state,
    write_checkpoint,
)
from mbasr.training.stage0_encoder import encoder_cer_by_domain, train_encoder
from mbasr.training.stage0_lm import (
    LM_PRECISION,
    allow_tf32,
    check_finite,
    copy_items,
    copy_wer,
    held_out_elsewhere,
    lm_loss,
    lm_perplexity,
    lm_text,
    speech_part_text,
    speech_wer,
)


def train_lm(
    cfg: Config,
    corpus: Corpus,
    tok,
    device: torch.device,
    stage: StageConfig | None = None,
    eval_n: int = 300,
    max_minutes: float | None = None,
    text: list[str] | None = None,
    init: dict[str, torch.Tensor] | None = None,
    speech: dict | None = None,
    init_projector: dict[str, torch.Tensor] | None = None,
) -> dict:
    """The LM on general and source text (`lm_text`; plain LM loss) + copy examples of its sentences in
    the prompt format (answer loss). With `speech` ({"train": utts, "dev": utts, "feats": {key: frames}};
    general speech only) each batch also holds `stage.batch_size` speech items, the projector trains with
    the LM (`stage.train`), and half a batch each of plain and copy text keeps the text skills. `init`:
    an LM state to continue from (`init_projector`: a projector state, else a fresh one). The kept state is the best dev score: speech WER, else corrupted-copy
    WER."""
    stage = stage or cfg.stage0.lm
    allow_tf32(device)
    model = build_model(cfg, tokenizer=tok)
    if init is not None:
        load_llm_state(model, init, "init")
    if init_projector is not None:
        model.projector.load_state_dict({k: v.float() for k, v in init_projector.items()})
    model = model.to(device)
    params = model.set_trainable(stage.train)
    model.train()
    text = text if text is not None else lm_text(corpus)
    dev = [u.target for u in load_split(corpus, GENERAL, "dev")][:eval_n]
    opt = make_optimizer(params, stage)
    sched = make_scheduler(opt, stage)
    rng = random.Random(cfg.seed)
    t0 = time.perf_counter()
    curve, skipped = [], 0
    half = max(1, stage.batch_size // 2)
    best = {"score": math.inf, "step": 0, "state": None}
    order: list = []
    desc = "stage 0: LM (text + copy" + (" + speech)" if speech else ")")
    for step in progress_bar(range(stage.steps), desc=desc, mininterval=5):
        plain, copies = rng.sample(text, half), rng.sample(text, half)
        items = copy_items(copies, rng)
        if speech:
            if len(order) < stage.batch_size:
                order = list(speech["train"])
                rng.shuffle(order)
            batch, order = order[: stage.batch_size], order[stage.batch_size :]
            items += [LLMItem(target=u.target, feats=speech["feats"][u.key]) for u in batch]
        with autocast(device, LM_PRECISION):
            loss_lm = lm_loss(model, tok, plain, device)
            loss_slot = model(items)
        loss = loss_lm + loss_slot
        check_finite(loss, "LM", step)
        skipped += not optimizer_step(loss, opt, sched, params, stage.grad_clip)
        out_of_time = max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes
        if (step + 1) % stage.eval_every == 0 or step + 1 == stage.steps or out_of_time:
            point = {"step": step + 1, "loss_lm": loss_lm.item(), "loss_slot": loss_slot.item()}
            point["dev_copy_wer_corrupted"] = copy_wer(model, dev[:100], PAPER_CORRUPTION, device)["wer"]
            if speech:
                point["dev_speech_wer"] = speech_wer(model, speech["dev"][:100], speech["feats"], device)[
                    "wer"
                ]
            model.train()
            curve.append(point)
            tqdm.write(
                f"LM step {step + 1}: lm {point['loss_lm']:.3f} slot {point['loss_slot']:.3f}; "
                f"corrupted-copy WER {100 * point['dev_copy_wer_corrupted']:.1f}%"
                + (f"; speech WER {100 * point['dev_speech_wer']:.1f}%" if speech else "")
            )
            score_now = point["dev_speech_wer"] if speech else point["dev_copy_wer_corrupted"]
            if score_now <= best["score"]:
                best = {"score": score_now, "step": step + 1, "state": stage0_state(model)}
            if out_of_time:
                tqdm.write(f"LM: stopped after {step + 1} steps (--max-minutes {max_minutes})")
                break
    load_llm_state(model, best["state"]["llm"], "best")
    model.projector.load_state_dict(best["state"]["projector"])
    metrics = {
        "copy_clean": copy_wer(model, dev, None, device),
        "copy_corrupted": copy_wer(model, dev, PAPER_CORRUPTION, device),
        "perplexity": {
            d: lm_perplexity(model, tok, [u.target for u in load_split(corpus, d, "test")], device)
            for d in corpus.params["domains"]
        },
        "perplexity_general_dev": lm_perplexity(model, tok, dev, device),
    }
    if speech:
        metrics["speech_general_dev"] = speech_wer(model, speech["dev"], speech["feats"], device)
        metrics["speech_hours"] = sum(u.duration for u in speech["train"]) / 3600
    state = best["state"] if speech else best["state"]["llm"]
    return {
        "state": state,
        "best_step": best["step"],
        "steps_done": step + 1,
        "skipped_steps": skipped,
        "curve": curve,
        "seconds": time.perf_counter() - t0,
        **metrics,
    }


def _stage0_corpus(preset: str, work_dir, scale: str, seed: int, overrides: dict | None):
    cfg = load_preset(preset, overrides)
    if cfg.stage0 is None:
        raise ValueError(f"preset {preset!r} has no stage0: it loads pretrained weights")
    # Only the general speech is synthesised: stage 0 never sees a domain's audio.
    corpus = prepare_corpus(work_dir, scale=scale, seed=seed, domains=DOMAINS, audio_domains=(GENERAL,))
    return cfg, corpus


def train_part(
    part: str,
    preset: str = "tiny",
    work_dir: str | Path = "runs",
    scale: str = "default",
    seed: int = 0,
    out: str | Path = "stage0-part.pt",
    device: str | None = None,
    overrides: dict | None = None,
    max_minutes: float | None = None,
    init: str | Path | None = None,
) -> Path:
    """Pretrain one part ("encoder" or "lm") and write it, with its record, to `out`. `init` (encoder
    only): a part file or stage-0 checkpoint whose encoder the training continues from."""
    cfg, corpus = _stage0_corpus(preset, work_dir, scale, seed, overrides)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    record = {
        "config": cfg.to_dict(),
        "code_version": code_version(),
        "corpus": {"scale": scale, "seed": seed, "content": corpus.params["content"]},
        "made_on": {
            "device": torch.cuda.get_device_name(dev)
            if dev.type == "cuda"
            else (platform.processor() or "cpu"),
            "torch": str(torch.__version__),
        },
        "command": f"python -m mbasr pretrain {part} --preset {preset} --scale {scale} --seed {seed}"
        + (f" --init {init}" if init else "")
        + "".join(f" --set {k}={v}" for k, v in (overrides or {}).items()),
    }
    if init is not None and part == "lm":
        raise ValueError(f"init={init}: the lm part starts from scratch (encoder and speech continue one)")
    if part == "speech":
        if init is None:
            raise ValueError("part 'speech' continues an LM: pass init=<lm part file or stage-0 checkpoint>")
        return _train_speech(cfg, corpus, record, work_dir, scale, seed, dev, init, out, max_minutes)
    tokenizer = None
    if part == "encoder":
        start = read_part(init, "encoder") if init else None
        if start is not None:
            kept = ("dev_cer", "best_step", "steps_done", "seconds", "train_hours", "corpus")
            prior = start["record"].get("encoder", {})
            record["init"] = {"path": str(init), "encoder": {k: prior[k] for k in kept if k in prior}}
        result = train_encoder(
            cfg, corpus, dev, max_minutes=max_minutes, init=start["state"] if start else None
        )
    elif part == "lm":
        tok_dir = Path(tempfile.mkdtemp(prefix="mbasr_tok_"))
        text = lm_text(corpus, held_out_elsewhere(work_dir, seed, scale))
        train_tokenizer(text, cfg.stage0.tokenizer_vocab_size, tok_dir)
        tokenizer = {p.name: p.read_text(encoding="utf-8") for p in sorted(tok_dir.iterdir()) if p.is_file()}
        result = train_lm(cfg, corpus, load_tokenizer(tok_dir), dev, max_minutes=max_minutes, text=text)
        result["text_sentences"] = len(text)
    else:
        raise ValueError(f"part={part!r}: choose 'encoder', 'lm' or 'speech'")
    state = half(result.pop("state"))
    record[part] = result
    record = json.loads(json.dumps(record, default=float))  # plain types: loadable with weights_only
    return write_checkpoint(
        out, {"record": record, "state": state, "tokenizer": tokenizer}, f"stage 0 {part}"
    )


def _train_speech(cfg, corpus, record, work_dir, scale, seed, device, init, out, max_minutes) -> Path:
    """The `speech` part: continue the LM of `init` on the general speech (features of the preset's
    pretrained encoder, cached) with a projector (a fresh one, or `init`'s when `init` is a stage-0
    checkpoint that has one: a longer part 2), keeping its text skills; writes a whole stage-0
    checkpoint (LM, projector, tokenizer, and the record of both parts)."""
    if cfg.stage0.speech is None:
        raise ValueError("stage0.speech is null in this preset: nothing to train")
    start = read_part(init, "lm")
    previous = torch.load(str(init), map_location="cpu", weights_only=True)
    projector = previous.get("parts", {}).get("projector")
    earlier = previous["record"].get("speech") if projector is not None else None
    with tempfile.TemporaryDirectory() as d:
        for name, text in start["tokenizer"].items():
            (Path(d) / name).write_text(text, encoding="utf-8")
        tok = load_tokenizer(d)
    train, dev = load_split(corpus, GENERAL, "train"), load_split(corpus, GENERAL, "dev")
    t0 = time.perf_counter()
    encoder = build_model(cfg, tokenizer=tok).encoder.to(device)
    feats = encode_cached(encoder, train + dev, Path(work_dir) / "cache")
    encode_s = time.perf_counter() - t0
    text = speech_part_text(corpus, work_dir, seed, scale)
    speech = {"train": train, "dev": dev, "feats": feats}
    result = train_lm(
        cfg,
        corpus,
        tok,
        device,
        stage=cfg.stage0.speech,
        max_minutes=max_minutes,
        text=text,
        init=start["state"],
        speech=speech,
        init_projector=projector,
    )
    result.update(text_sentences=len(text), encode_seconds=round(encode_s, 1), init=str(init))
    if earlier is not None:  # what the continued projector and LM had been through
        result["continued"] = {k: earlier.get(k) for k in ("steps_done", "best_step", "seconds", "continued")}
    state = result.pop("state")
    lm_rec = start["record"]
    record = {
        **{k: v for k, v in record.items() if k not in ("made_on", "command")},
        "made_on": {"lm": lm_rec["made_on"], "speech": record["made_on"]},
        "commands": [lm_rec["command"], record["command"]],
        "lm": {**lm_rec["lm"], "corpus": lm_rec.get("corpus")},
        "speech": result,
    }
    record = json.loads(json.dumps(record, default=float))
    ckpt = {
        "record": record,
        "parts": {"llm": half(state["llm"]), "projector": half(state["projector"])},
        "tokenizer": start["tokenizer"],
    }
    return write_checkpoint(out, ckpt, "stage 0 (LM + speech)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="mbasr pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=["corpus", "encoder", "lm", "speech", "merge", "all", "cer"])
    ap.add_argument("parts", nargs="*", help="merge: the encoder and lm part files")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--work-dir", default="runs")
    ap.add_argument("--scale", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop a part's training after this long")
    ap.add_argument(
        "--init", default=None, help="encoder, speech: continue from this part file or stage-0 checkpoint"
    )
    ap.add_argument(
        "--set", action="append", default=[], help="preset override KEY=VALUE (stage0.lm.steps=100)"
    )
    args = ap.parse_args(argv)
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)} or None
    common = dict(preset=args.preset, work_dir=args.work_dir, scale=args.scale, seed=args.seed)
    if args.command == "corpus":
        _stage0_corpus(args.preset, args.work_dir, args.scale, args.seed, overrides)
    elif args.command in ("encoder", "lm", "speech"):
        out = args.out or f"stage0-{args.command}.pt"
        train_part(
            args.command,
            **common,
            out=out,
            device=args.device,
            overrides=overrides,
            max_minutes=args.max_minutes,
            init=args.init,
        )
    elif args.command == "cer":
        path = args.parts[0] if args.parts else DEFAULT_STAGE0
        cfg = load_preset(args.preset, overrides)
        if cfg.encoder.scratch is None:
            ap.error(
                f"cer: the {args.preset} preset's encoder is pretrained ({cfg.encoder.name}), with no CTC head"
            )
        encoder = TinyEncoder(cfg.encoder.scratch)
        encoder.load_state_dict({k: v.float() for k, v in read_part(path, "encoder")["state"].items()})
        corpus = prepare_corpus(args.work_dir, scale=args.scale, seed=args.seed)
        print(f"encoder of {path}: CTC greedy CER on the first 100 {args.scale} test utterances per domain")
        for domain, cer in encoder_cer_by_domain(encoder, corpus).items():
            print(f"  {domain:<22} {100 * cer:5.1f}%")
    elif args.command == "merge":
        if len(args.parts) != 2:
            ap.error("merge takes two files: the encoder part and the lm part")
        merge_parts(*args.parts, out=args.out or DEFAULT_STAGE0)
    else:
        with tempfile.TemporaryDirectory() as d:
            kw = dict(common, device=args.device, overrides=overrides, max_minutes=args.max_minutes)
            lm = train_part("lm", **kw, out=Path(d) / "lm.pt")
            if load_preset(args.preset, overrides).encoder.scratch is not None:
                enc = train_part("encoder", **kw, out=Path(d) / "encoder.pt")
                merge_parts(enc, lm, args.out or DEFAULT_STAGE0)
            else:
                train_part("speech", **kw, init=lm, out=args.out or DEFAULT_STAGE0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
