"""Stage 0 of a from-scratch encoder (`encoder.name: tiny`, not the default: `tiny` uses Whisper tiny.en,
frozen): CTC pretraining on the general speech pool with channel and SpecAugment-style augmentation, and its
character error rate per domain."""

from __future__ import annotations

import math
import random
import time

import soundfile as sf
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mbasr.config import Config, StageConfig
from mbasr.data import augment
from mbasr.data.corpus import GENERAL, Corpus, load_split
from mbasr.model.encoders import TinyEncoder
from mbasr.model.precision import autocast
from mbasr.progress import bar as progress_bar
from mbasr.training.optim import make_optimizer, make_scheduler, optimizer_step
from mbasr.training.stage0_lm import ENCODER_PRECISION, allow_tf32, check_finite


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
    allow_tf32(device)
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
        check_finite(loss, "encoder", step)
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
    allow_tf32(device)
    out = {}
    for domain in (d for d in corpus.params["domains"] if d != GENERAL):
        utts = load_split(corpus, domain, split)[:n]
        out[domain], _ = _cer(encoder, _load_waves(utts), [u.target for u in utts], device)
    return out
