"""Decoding and evaluation (docs/paper.md "System", rows "decoding" and "scoring"): batched greedy (or beam)
decoding with a length cap, then WER after the paper's normalisation and hallucination guard
(`mbasr.evaluation.scoring.score`).

What fills the speech slot comes from a `SlotInputs`: the cached encoder frames of each utterance
(`mbasr.model.cache.encode_cached`), and, once the projector is frozen (stage 2), its outputs and the
projector-induced noise text of each utterance (docs/paper.md "Corruption", `mbasr.method.corrupt`).

    slots = SlotInputs(model, encode_cached(model.encoder, utts, "runs/cache"))
    hyps = transcribe(model, utts, slots, batch_size=64, max_new_tokens=64)
    res = evaluate(model, utts, slots, cfg.decoding, out_path="eval/source_test.jsonl")
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mbasr.config import DecodingConfig
from mbasr.data.manifest import Utterance
from mbasr.evaluation.scoring import WerResult, save_alignments, score
from mbasr.io import atomic_write_json
from mbasr.method.corrupt import PROJECTOR_MODES, projector_noise_text
from mbasr.method.mixed_batch import AUDIO_KINDS, Item
from mbasr.model import LLMItem, SpeechLLM
from mbasr.model.cache import project_cached
from mbasr.model.precision import autocast
from mbasr.progress import bar as progress_bar


class SlotInputs:
    """Per utterance key, what can go in the speech slot: encoder frames `feats[key]` (T, D); projector
    outputs `proj(key)` (T // k, H) of the frozen projector; the projector-noise text `projector_text(utt)`
    (each projected vector mapped to a vocabulary token, `projector_mode` "nearest" or "argmin_dot",
    then decoded), computed once per utterance.

    Projector outputs need a frozen projector: asking while the projector is trained fails. With
    `cache_dir`, the first call projects every key through `project_cached` (kept on disk); without it,
    each key is projected on its own at its first use and kept in memory, so a 240-step run projects the
    few thousand utterances its batches hold, not every one it has frames for. Either way a key's output
    is computed alone or by the cache, never padded with other keys, so it does not depend on which batch
    asked first.
    """

    def __init__(
        self,
        model: SpeechLLM,
        feats: Mapping[str, torch.Tensor],
        cache_dir: str | Path | None = None,
        projector_mode: str = "nearest",
        progress: bool = False,
    ):
        if projector_mode not in PROJECTOR_MODES:
            raise ValueError(
                f"SlotInputs: projector_mode={projector_mode!r}: choose one of {PROJECTOR_MODES}"
            )
        self.model, self.feats = model, dict(feats)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.projector_mode, self.progress = projector_mode, progress
        self._proj: dict[str, torch.Tensor] = {}
        self._noise: dict[str, str] = {}

    def frames(self, key: str) -> torch.Tensor:
        if key not in self.feats:
            raise KeyError(f"SlotInputs: no encoder frames for utterance {key!r} (not in the feature cache)")
        return self.feats[key]

    def proj(self, key: str) -> torch.Tensor:
        frames = self.frames(key)
        if key not in self._proj:
            if any(p.requires_grad for p in self.model.projector.parameters()):
                raise RuntimeError(
                    "SlotInputs.proj: the projector is being trained; projector outputs (and projector noise) "
                    "are only defined for a frozen projector (stage 2)"
                )
            if self.cache_dir is not None:
                ordered = {k: self.feats[k] for k in sorted(self.feats)}
                self._proj = project_cached(
                    self.model.projector, ordered, self.cache_dir, progress=self.progress
                )
            else:
                with torch.no_grad():  # (1, T', H), (1,)
                    y, n = self.model.project(frames[None], torch.tensor([frames.shape[0]]))
                self._proj[key] = y[0, : int(n[0])].detach().cpu()
        return self._proj[key]

    def projector_text(self, utt: Utterance) -> str:
        """The projector-induced noise text of a source utterance (the sampler's `projector_text`)."""
        if utt.key not in self._noise:
            emb = self.model.llm.get_input_embeddings().weight
            self._noise[utt.key] = projector_noise_text(
                self.proj(utt.key), emb, self.model.tokenizer, self.projector_mode
            )
        return self._noise[utt.key]

    def llm_item(self, item: Item, projector_trained: bool) -> LLMItem:
        """A sampler `Item` as the model's input: audio kinds -> encoder frames (projector trained) or
        projector outputs (projector frozen); projector noise -> its text computed here; other text kinds
        -> the item's text."""
        target = item.utt.target
        if item.kind in AUDIO_KINDS:
            if projector_trained:
                return LLMItem(target=target, feats=self.frames(item.utt.key))
            return LLMItem(target=target, proj=self.proj(item.utt.key))
        if item.kind == "projector_noise":
            if projector_trained:
                raise ValueError(
                    "projector_noise items while the projector is trained: projector noise needs a frozen "
                    "projector (stage 2); set sigma_ta = 0 or freeze the projector (stage.train)"
                )
            return LLMItem(target=target, text=self.projector_text(item.utt))
        return LLMItem(target=target, text=item.text_input)


def as_slot_inputs(model: SpeechLLM, slots: SlotInputs | Mapping[str, torch.Tensor]) -> SlotInputs:
    return slots if isinstance(slots, SlotInputs) else SlotInputs(model, slots)


def _to_item(x: Utterance | LLMItem, slots: SlotInputs) -> LLMItem:
    if isinstance(x, LLMItem):
        return x
    if isinstance(x, Utterance):
        return LLMItem(target=x.target, feats=slots.frames(x.key))
    raise TypeError(f"transcribe: items_or_utts holds a {type(x).__name__}; expected Utterance or LLMItem")


def _slot_length(it: LLMItem) -> int:
    if it.feats is not None:
        return int(it.feats.shape[0])
    if it.proj is not None:
        return int(it.proj.shape[0])
    return len(it.text)


def transcribe(
    model: SpeechLLM,
    items_or_utts: Sequence[Utterance | LLMItem],
    slot_inputs: SlotInputs | Mapping[str, torch.Tensor] | None,
    batch_size: int,
    max_new_tokens: int,
    num_beams: int = 1,
    precision: str | None = None,
    progress: bool = False,
) -> list[str]:
    """Hypotheses, in input order. Utterances are decoded from their cached encoder frames (`slot_inputs`);
    LLMItems as they are. Batches hold items of similar slot length (longest first), each hypothesis is at
    most `max_new_tokens` tokens. `precision` "bfloat16" autocasts on CUDA."""
    for name, v in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens), ("num_beams", num_beams)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"transcribe: {name}={v!r} must be a positive integer")
    slots = None if slot_inputs is None else as_slot_inputs(model, slot_inputs)
    if slots is None and any(isinstance(x, Utterance) for x in items_or_utts):
        raise ValueError("transcribe: slot_inputs=None but utterances were given (their frames are needed)")
    items = [_to_item(x, slots) for x in items_or_utts]
    order = sorted(range(len(items)), key=lambda i: -_slot_length(items[i]))  # stable: ties keep input order
    out: list[str | None] = [None] * len(items)
    was_training = model.training
    model.eval()
    bar = progress_bar(total=len(items), desc="decode", unit="utt", disable=not progress or not items)
    try:
        with autocast(next(model.llm.parameters()).device, precision):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                hyps = model.generate([items[i] for i in idx], max_new_tokens, num_beams=num_beams)
                for i, h in zip(idx, hyps, strict=True):
                    out[i] = h
                bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return out


def evaluate(
    model: SpeechLLM,
    utts: Sequence[Utterance],
    slot_inputs: SlotInputs | Mapping[str, torch.Tensor],
    decoding: DecodingConfig,
    out_path: str | Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    precision: str | None = None,
    progress: bool = False,
) -> WerResult:
    """Decode `utts` with the preset's `decoding` settings and score them (normalisation, the paper's
    hallucination guard, bootstrap CI). With `out_path` (a .jsonl), writes one line per utterance
    (reference, hypothesis, counts, aligned words) and, beside it, `<stem>.json` with the summary."""
    if not utts:
        raise ValueError("evaluate: utts is empty")
    t0 = time.perf_counter()
    hyps = transcribe(
        model,
        utts,
        slot_inputs,
        decoding.batch_size,
        decoding.max_new_tokens,
        decoding.num_beams,
        precision=precision,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    res = score([u.target for u in utts], hyps, keys=[u.key for u in utts], n_boot=n_boot, seed=seed)
    if out_path is not None:
        out_path = Path(out_path)
        save_alignments(res, out_path)
        summary = res.to_dict() | {"decode_seconds": seconds, "utts_per_second": len(utts) / seconds}
        atomic_write_json(out_path.with_suffix(".json"), summary)
    return res
