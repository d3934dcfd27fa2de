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
import io
import json
import math
import platform
import random
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mbasr.config import DEFAULT_STAGE0, Config, StageConfig, load_preset
from mbasr.data import augment
from mbasr.data.corpus import DOMAINS, GENERAL, SOURCE, Corpus, general_text, load_split, prepare_corpus
from mbasr.evaluation.scoring import score
from mbasr.io import atomic_write_bytes, code_version
from mbasr.method.corrupt import PAPER_CORRUPTION, CorruptionConfig, corrupt
from mbasr.model import LLMItem, build_model
from mbasr.model.cache import encode_cached
from mbasr.model.decode import transcribe
from mbasr.model.encoders import TinyEncoder
from mbasr.model.llm import load_tokenizer
from mbasr.model.precision import autocast
from mbasr.model.tokenizer import train_tokenizer
from mbasr.progress import bar as progress_bar
from mbasr.training.optim import make_optimizer, make_scheduler, optimizer_step

HEAVY_CORRUPTION = CorruptionConfig(word_p=0.35)


# Stage 0 sets its own precision, whatever the preset's: the from-scratch encoder in bfloat16 on a GPU, the
# LM in float32 with TF32 matmuls (in bfloat16 its loss went NaN on an H200: mbasr/assets/tiny/RECORD.md).
ENCODER_PRECISION, LM_PRECISION = "bfloat16", "float32"


def _allow_tf32(device) -> None:
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True


def _check_finite(loss: torch.Tensor, part: str, step: int) -> None:
    # a non-finite loss poisons every weight at the next update: stop, do not train on
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"stage 0 {part}: loss is {loss.item()} at step {step}; lower the learning rate or use float32 "
            "(the GPU run in bfloat16 gave NaN for the LM: see mbasr/assets/tiny/RECORD.md)"
        )


def _load_waves(utts) -> list[torch.Tensor]:
    return [torch.from_numpy(sf.read(u.source, dtype="int16")[0]) for u in utts]


def _length_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar lengths (little padding), in random order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(waves: list[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves])
    out = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
    for i, w in enumerate(waves):
        out[i, : len(w)] = w.float() / 32768.0
    return out.to(device), lengths.to(device)


def _augment(
    wavs: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator, channels: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Speed perturbation (0.9-1.1, one factor a batch), then either generic random channels
    (`mbasr.data.augment.channel`: band limits, rooms, coloured noise) or, half the time, white noise at 15-40
    dB SNR (how the first stage-0 encoder was trained): the encoder must generalise to unseen voices and
    to channels it never heard."""
    factor = 0.9 + 0.2 * float(torch.rand(1, generator=gen))
    new_len = int(wavs.shape[1] / factor)
    wavs = F.interpolate(wavs[:, None], size=new_len, mode="linear", align_corners=False)[:, 0]
    lengths = (lengths.float() / factor).long().clamp(max=new_len)
    if channels:
        return augment.channel(wavs, lengths, gen), lengths
    if float(torch.rand(1, generator=gen)) < 0.5:
        snr = 15 + 25 * torch.rand(wavs.shape[0], 1, generator=gen)
        power = wavs.pow(2).mean(1, keepdim=True)
        noise = torch.randn(wavs.shape, generator=gen) if wavs.device.type == "cpu" else None
        if noise is None:
            noise = torch.randn(wavs.shape, device=wavs.device)
        wavs = wavs + noise.to(wavs.device) * (power / 10 ** (snr.to(wavs.device) / 10)).sqrt()
    return wavs, lengths


def _cer(encoder: TinyEncoder, waves, texts, device, batch_size=32) -> tuple[float, list[str]]:
    encoder.eval()
    hyps = []
    for i in range(0, len(waves), batch_size):
        w, n = _pad(waves[i : i + batch_size], device)
        with autocast(device, ENCODER_PRECISION):
            hyps += encoder.ctc_greedy(w, n)
    encoder.train()
    import jiwer

    return jiwer.cer(list(texts), hyps), hyps


def train_encoder(
    cfg: Config,
    corpus: Corpus,
    device: torch.device,
    stage: StageConfig | None = None,
    max_minutes: float | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> dict:
    """CTC pretraining of the from-scratch encoder on general speech; returns its best state and metrics.
    `init`: an encoder state to continue from (e.g. to add channel augmentation to a trained encoder)."""
    stage = stage or cfg.stage0.encoder
    _allow_tf32(device)
    torch.manual_seed(cfg.seed)
    encoder = TinyEncoder(cfg.encoder.scratch)
    if init is not None:
        encoder.load_state_dict({k: v.float() for k, v in init.items()}, strict=True)
    encoder = encoder.to(device).train()
    train, dev = load_split(corpus, GENERAL, "train"), load_split(corpus, GENERAL, "dev")
    t0 = time.perf_counter()
    train_w, dev_w = _load_waves(train), _load_waves(dev)
    texts = [u.target for u in train]
    opt = make_optimizer(encoder.parameters(), stage)
    sched = make_scheduler(opt, stage)
    rng, gen = random.Random(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    batches: list[list[int]] = []
    best = {"cer": math.inf, "step": 0, "state": None}
    curve, skipped = [], 0
    for step in progress_bar(range(stage.steps), desc="stage 0: encoder (CTC)", mininterval=5):
        if not batches:
            batches = _length_batches([len(w) for w in train_w], stage.batch_size, rng)
        idx = batches.pop()
        wavs, lengths = _pad([train_w[i] for i in idx], device)
        wavs, lengths = _augment(wavs, lengths, gen, channels=cfg.stage0.channel_augment)
        with autocast(device, ENCODER_PRECISION):
            loss = encoder.ctc_loss(wavs, lengths, [texts[i] for i in idx], augment=gen)
        _check_finite(loss, "encoder", step)
        skipped += not optimizer_step(loss, opt, sched, encoder.parameters(), stage.grad_clip)
        out_of_time = max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes
        if (step + 1) % stage.eval_every == 0 or step + 1 == stage.steps or out_of_time:
            cer, _ = _cer(encoder, dev_w, [u.target for u in dev], device)
            curve.append({"step": step + 1, "loss": loss.item(), "dev_cer": cer})
            tqdm.write(
                f"encoder step {step + 1}: ctc loss {loss.item():.3f}, held-out-voice CER {100 * cer:.1f}%"
            )
            if cer < best["cer"]:
                best = {
                    "cer": cer,
                    "step": step + 1,
                    "state": {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()},
                }
            if out_of_time:
                tqdm.write(f"encoder: stopped after {step + 1} steps (--max-minutes {max_minutes})")
                break
    encoder.load_state_dict(best["state"])
    cer, hyps = _cer(encoder, dev_w, [u.target for u in dev], device)
    return {
        "state": best["state"],
        "dev_cer": cer,
        "best_step": best["step"],
        "steps_done": step + 1,
        "skipped_steps": skipped,
        "curve": curve,
        "examples": [{"ref": u.target, "hyp": h} for u, h in list(zip(dev, hyps, strict=True))[:5]],
        "seconds": time.perf_counter() - t0,
        "train_hours": sum(u.duration for u in train) / 3600,
        "dev_voices": sorted({u.voice for u in dev}),
    }


def encoder_cer_by_domain(
    encoder: TinyEncoder, corpus: Corpus, split: str = "test", n: int = 100, device=None
) -> dict[str, float]:
    """CTC greedy CER of a stage-0 encoder on the first `n` utterances of each domain's `split`
    (held-out voices, each domain in its own acoustic condition): how much of each condition survives
    the encoder. Stage 2 cannot bring back what the frozen encoder lost."""
    device = device or torch.device("cpu")
    _allow_tf32(device)
    out = {}
    for domain in (d for d in corpus.params["domains"] if d != GENERAL):
        utts = load_split(corpus, domain, split)[:n]
        out[domain], _ = _cer(encoder, _load_waves(utts), [u.target for u in utts], device)
    return out


def lm_text(corpus: Corpus, exclude: set[str] = frozenset()) -> list[str]:
    """What the LM is pretrained on: the general text and the source domain's training transcripts,
    minus any sentence in `exclude` (the dev and test sets it must never see). The source text stands
    in for the everyday, customer-service talk a real LLM has read plenty of (the paper's source is a
    call centre); no target-domain sentence is included, so the targets stay unfamiliar to it."""
    source = [u.target for u in load_split(corpus, SOURCE, "train")]
    held_out = set(exclude)
    for split in ("dev", "test"):
        held_out |= {u.target for u in load_split(corpus, SOURCE, split)}
    return [s for s in general_text(corpus) + source if s not in held_out]


def _held_out_elsewhere(work_dir, seed: int, scale: str) -> set[str]:
    """Source dev/test sentences of the main job's corpus ("default" scale, same seed): when stage 0 runs
    on a larger corpus, its source training text must not contain them."""
    if scale in ("default", "micro"):  # the same corpus, or a test one
        return set()
    other = prepare_corpus(work_dir, scale="default", seed=seed, audio_domains=(), progress=False)
    return {u.target for split in ("dev", "test") for u in load_split(other, SOURCE, split)}


def _copy_items(sentences: list[str], rng: random.Random) -> list[LLMItem]:
    """Clean (1/4), paper-corrupted (1/2) or heavily corrupted (1/4) text in the slot, clean answer."""
    items = []
    for s in sentences:
        r = rng.random()
        text = (
            s
            if r < 0.25
            else corrupt(s, PAPER_CORRUPTION if r < 0.75 else HEAVY_CORRUPTION, rng.randrange(2**31))
        )
        items.append(LLMItem(target=s, text=text))
    return items


def _lm_loss(model, tok, sentences: list[str], device) -> torch.Tensor:
    """Plain next-token loss on BOS + sentence + EOS."""
    enc = tok(
        [tok.bos_token + s + tok.eos_token for s in sentences],
        add_special_tokens=False,
        return_tensors="pt",
        padding=True,
    )
    ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
    labels = ids.masked_fill(mask == 0, -100)
    return model.llm(input_ids=ids, attention_mask=mask, labels=labels).loss


@torch.no_grad()
def lm_perplexity(model, tok, sentences: list[str], device, batch_size: int = 64) -> float:
    """Per-token perplexity of plain text (BOS + sentence + EOS) under the LM."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(sentences), batch_size):
        enc = tok(
            [tok.bos_token + s + tok.eos_token for s in sentences[i : i + batch_size]],
            add_special_tokens=False,
            return_tensors="pt",
            padding=True,
        )
        ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
        logits = model.llm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        total += float(
            F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100, reduction="sum")
        )
        count += int((target != -100).sum())
    return math.exp(total / count)


@torch.no_grad()
def copy_wer(
    model,
    sentences: list[str],
    corruption: CorruptionConfig | None,
    device,
    seed: int = 0,
    max_new_tokens: int = 64,
) -> dict:
    """WER of the LM reproducing `sentences` from the slot (clean text, or corrupted with `corruption`)."""
    _allow_tf32(device)
    model.eval()
    hyps = []
    for i in range(0, len(sentences), 64):
        chunk = sentences[i : i + 64]
        items = [
            LLMItem(target=s, text=s if corruption is None else corrupt(s, corruption, seed + i + j))
            for j, s in enumerate(chunk)
        ]
        with autocast(device, LM_PRECISION):
            hyps += model.generate(items, max_new_tokens=max_new_tokens)
    res = score(sentences, hyps, n_boot=200, seed=seed)
    return {
        "wer": res.wer,
        "ci": [res.ci_low, res.ci_high],
        "examples": [{"ref": r, "hyp": h} for r, h in list(zip(sentences, hyps, strict=True))[:5]],
    }


def _speech_wer(model, utts, feats, device) -> dict:
    """WER of the model transcribing general speech from the slot (held-out voices)."""
    model.eval()
    with autocast(device, LM_PRECISION):
        hyps = transcribe(model, utts, feats, batch_size=64, max_new_tokens=64)
    res = score([u.target for u in utts], hyps, n_boot=200, seed=0)
    return {
        "wer": res.wer,
        "ci": [res.ci_low, res.ci_high],
        "examples": [{"ref": u.target, "hyp": h} for u, h in list(zip(utts, hyps, strict=True))[:5]],
    }


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
    _allow_tf32(device)
    model = build_model(cfg, tokenizer=tok)
    if init is not None:
        _load_llm(model, init, "init")
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
        items = _copy_items(copies, rng)
        if speech:
            if len(order) < stage.batch_size:
                order = list(speech["train"])
                rng.shuffle(order)
            batch, order = order[: stage.batch_size], order[stage.batch_size :]
            items += [LLMItem(target=u.target, feats=speech["feats"][u.key]) for u in batch]
        with autocast(device, LM_PRECISION):
            loss_lm = _lm_loss(model, tok, plain, device)
            loss_slot = model(items)
        loss = loss_lm + loss_slot
        _check_finite(loss, "LM", step)
        skipped += not optimizer_step(loss, opt, sched, params, stage.grad_clip)
        out_of_time = max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes
        if (step + 1) % stage.eval_every == 0 or step + 1 == stage.steps or out_of_time:
            point = {"step": step + 1, "loss_lm": loss_lm.item(), "loss_slot": loss_slot.item()}
            point["dev_copy_wer_corrupted"] = copy_wer(model, dev[:100], PAPER_CORRUPTION, device)["wer"]
            if speech:
                point["dev_speech_wer"] = _speech_wer(model, speech["dev"][:100], speech["feats"], device)[
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
                best = {"score": score_now, "step": step + 1, "state": _stage0_state(model)}
            if out_of_time:
                tqdm.write(f"LM: stopped after {step + 1} steps (--max-minutes {max_minutes})")
                break
    _load_llm(model, best["state"]["llm"], "best")
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
        metrics["speech_general_dev"] = _speech_wer(model, speech["dev"], speech["feats"], device)
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


def _stage0_state(model) -> dict[str, dict[str, torch.Tensor]]:
    llm = model.llm.get_base_model().state_dict().items()
    return {
        "llm": {k: v.detach().cpu().clone() for k, v in llm if "lora_" not in k},
        "projector": {k: v.detach().cpu().clone() for k, v in model.projector.state_dict().items()},
    }


def _load_llm(model, state: dict[str, torch.Tensor], where: str) -> None:
    result = model.llm.get_base_model().load_state_dict(
        {k: v.float() for k, v in state.items()}, strict=False
    )
    missing = [k for k in result.missing_keys if "lora_" not in k]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{where}: LM keys not loaded: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def _stage0_corpus(preset: str, work_dir, scale: str, seed: int, overrides: dict | None):
    cfg = load_preset(preset, overrides)
    if cfg.stage0 is None:
        raise ValueError(f"preset {preset!r} has no stage0: it loads pretrained weights")
    # Only the general speech is synthesised: stage 0 never sees a domain's audio.
    corpus = prepare_corpus(work_dir, scale=scale, seed=seed, domains=DOMAINS, audio_domains=(GENERAL,))
    return cfg, corpus


def _write(out: str | Path, obj: dict, what: str) -> Path:
    """A part file or checkpoint, written atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(out, buf.getvalue())
    print(f"{what} written to {out}")
    return Path(out)


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored in float16 (half the size in the repository; loading casts back to float32)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


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
        start = _read_part(init, "encoder") if init else None
        if start is not None:
            kept = ("dev_cer", "best_step", "steps_done", "seconds", "train_hours", "corpus")
            prior = start["record"].get("encoder", {})
            record["init"] = {"path": str(init), "encoder": {k: prior[k] for k in kept if k in prior}}
        result = train_encoder(
            cfg, corpus, dev, max_minutes=max_minutes, init=start["state"] if start else None
        )
    elif part == "lm":
        tok_dir = Path(tempfile.mkdtemp(prefix="mbasr_tok_"))
        text = lm_text(corpus, _held_out_elsewhere(work_dir, seed, scale))
        train_tokenizer(text, cfg.stage0.tokenizer_vocab_size, tok_dir)
        tokenizer = {p.name: p.read_text(encoding="utf-8") for p in sorted(tok_dir.iterdir()) if p.is_file()}
        result = train_lm(cfg, corpus, load_tokenizer(tok_dir), dev, max_minutes=max_minutes, text=text)
        result["text_sentences"] = len(text)
    else:
        raise ValueError(f"part={part!r}: choose 'encoder', 'lm' or 'speech'")
    state = _half(result.pop("state"))
    record[part] = result
    record = json.loads(json.dumps(record, default=float))  # plain types: loadable with weights_only
    return _write(out, {"record": record, "state": state, "tokenizer": tokenizer}, f"stage 0 {part}")


def _train_speech(cfg, corpus, record, work_dir, scale, seed, device, init, out, max_minutes) -> Path:
    """The `speech` part: continue the LM of `init` on the general speech (features of the preset's
    pretrained encoder, cached) with a projector (a fresh one, or `init`'s when `init` is a stage-0
    checkpoint that has one: a longer part 2), keeping its text skills; writes a whole stage-0
    checkpoint (LM, projector, tokenizer, and the record of both parts)."""
    if cfg.stage0.speech is None:
        raise ValueError("stage0.speech is null in this preset: nothing to train")
    start = _read_part(init, "lm")
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
    text = lm_text(corpus, _held_out_elsewhere(work_dir, seed, scale))
    # The source's training text is what this part must teach the LM anew (the source holds banking calls
    # that the first LM never read): repeated so that it is about half of the text items.
    source = [u.target for u in load_split(corpus, SOURCE, "train")]
    text += source * max(1, (len(text) - len(source)) // max(1, len(source)) - 1)
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
        "parts": {"llm": _half(state["llm"]), "projector": _half(state["projector"])},
        "tokenizer": start["tokenizer"],
    }
    return _write(out, ckpt, "stage 0 (LM + speech)")


def _read_part(path: str | Path, part: str) -> dict:
    """One part ("encoder" or "lm") of a part file or of a merged stage-0 checkpoint, as a part file."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    if "parts" not in ckpt:  # a part file
        if part not in ckpt["record"]:
            raise ValueError(f"{path}: a stage-0 part file without the `{part}` part")
        return ckpt
    rec = ckpt["record"]
    commands = [c for c in rec.get("commands", []) if f"pretrain {part} " in c]
    part_rec = {
        "config": rec["config"],
        "code_version": rec.get("code_version"),
        "corpus": rec[part].get("corpus", rec["corpus"]),
        "made_on": rec["made_on"][part],
        "command": commands[0] if commands else f"(merged into {path})",
        part: rec[part],
    }
    state = ckpt["parts"]["encoder" if part == "encoder" else "llm"]
    return {"record": part_rec, "state": state, "tokenizer": ckpt["tokenizer"]}


def merge_parts(encoder_part: str | Path, lm_part: str | Path, out: str | Path = DEFAULT_STAGE0) -> Path:
    """One stage-0 checkpoint from the two parts (each a part file or a stage-0 checkpoint: e.g. a new
    encoder with the LM of the shipped checkpoint). Their architectures must match; each part keeps the
    record of the corpus it was trained on."""
    enc, lm = _read_part(encoder_part, "encoder"), _read_part(lm_part, "lm")

    def arch(rec):  # what the checkpoint holds; stage 0-2 settings and wording may differ between parts
        return {k: rec["config"][k] for k in ("encoder", "llm")}

    if arch(enc["record"]) != arch(lm["record"]):
        raise ValueError(f"{encoder_part} and {lm_part} were made for different model architectures")
    record = {k: v for k, v in lm["record"].items() if k not in ("lm", "made_on", "command")}
    record["config"]["stage0"] = {
        **lm["record"]["config"]["stage0"],
        "encoder": enc["record"]["config"]["stage0"]["encoder"],
        "channel_augment": enc["record"]["config"]["stage0"].get("channel_augment", False),
    }
    encoder_rec = dict(enc["record"]["encoder"])
    encoder_rec.setdefault("corpus", enc["record"]["corpus"])
    if "init" in enc["record"]:
        encoder_rec.setdefault("init", enc["record"]["init"])
    record.update(encoder=encoder_rec, lm=lm["record"]["lm"])
    record["made_on"] = {"encoder": enc["record"]["made_on"], "lm": lm["record"]["made_on"]}
    record["commands"] = [enc["record"]["command"], lm["record"]["command"]]
    ckpt = {
        "record": record,
        "parts": {"encoder": enc["state"], "llm": lm["state"]},
        "tokenizer": lm["tokenizer"],
    }
    return _write(out, ckpt, "stage 0")


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
        encoder.load_state_dict({k: v.float() for k, v in _read_part(path, "encoder")["state"].items()})
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


def stage0_record(path: str | Path = DEFAULT_STAGE0) -> dict:
    """What made a stage-0 checkpoint, and its measured targets."""
    return torch.load(str(path), map_location="cpu", weights_only=True)["record"]


def load_stage0(cfg: Config, path: str | Path = DEFAULT_STAGE0):
    """A SpeechLLM of the tiny preset with its stage-0 LM and tokenizer, its encoder (from scratch: from
    the checkpoint; pretrained: from its weights) and the stage-0 projector when the checkpoint has one
    (else a fresh one from `cfg.seed`; LoRA is always fresh). The architecture in `cfg` must be the one
    pretrained."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no stage-0 checkpoint; build it with `python -m mbasr pretrain all --out {path}` "
            "(hours on a CPU, minutes on a GPU: scripts/stage0_gpu.sh)"
        )
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    made, parts = ckpt["record"]["config"], ckpt["parts"]
    sections = ("encoder", "llm") + (("projector",) if parts.get("projector") is not None else ())
    for section in sections:
        if made[section] != cfg.to_dict()[section]:
            raise ValueError(
                f"{path}: pretrained with a different `{section}` section than the preset asks for "
                f"(checkpoint: {made[section]}, preset: {cfg.to_dict()[section]}); rebuild stage 0 or restore it"
            )
    with tempfile.TemporaryDirectory() as d:
        for name, text in ckpt["tokenizer"].items():
            (Path(d) / name).write_text(text, encoding="utf-8")
        tok = load_tokenizer(d)
    model = build_model(cfg, tokenizer=tok)
    if cfg.encoder.scratch is not None:
        model.encoder.load_state_dict({k: v.float() for k, v in parts["encoder"].items()}, strict=True)
    _load_llm(model, parts["llm"], str(path))
    if parts.get("projector") is not None:
        model.projector.load_state_dict({k: v.float() for k, v in parts["projector"].items()}, strict=True)
    return model
