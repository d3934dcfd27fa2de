"""The speech LLM (docs/paper.md "System"): frozen encoder -> projector -> frozen causal LM with LoRA, the
speech slot of the prompt filled with projected speech or with the token embeddings of a text input
(the corrupted transcripts of text-only items, docs/paper.md "Corruption").

Items carry encoder frames already computed (from the feature cache), projector outputs (cached when the
projector is frozen, stage 2), or a text; the encoder itself is only used by `encode`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig

from mbasr.config import PromptConfig
from mbasr.model.encoders import SpeechEncoder
from mbasr.model.projector import ConcatProjector
from mbasr.model.prompt import IGNORE, PromptBatch, PromptBuilder

PARTS = ("encoder", "projector", "llm", "lora")


@dataclass
class LLMItem:
    """One utterance for the LLM: exactly one of `feats` (T, D) encoder frames, `proj` (T', H) projector
    outputs, or `text` (a text placed in the speech slot, "" for an empty slot); `target` the transcript."""

    target: str
    feats: torch.Tensor | None = None
    proj: torch.Tensor | None = None
    text: str | None = None

    def __post_init__(self):
        given = [n for n in ("feats", "proj", "text") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"LLMItem: exactly one of feats / proj / text must be given, got {given or 'none'}"
            )


def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[(T_i, D)] -> zero-padded (B, T, D) and lengths (B,)."""
    lengths = torch.tensor([f.shape[0] for f in frames], dtype=torch.long)
    out = frames[0].new_zeros(len(frames), int(lengths.max()), frames[0].shape[1])
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out, lengths


class SpeechLLM(nn.Module):
    def __init__(
        self,
        encoder: SpeechEncoder,
        projector: ConcatProjector,
        llm: nn.Module,
        tokenizer,
        prompt: PromptConfig,
    ):
        super().__init__()
        self.encoder, self.projector, self.llm = encoder, projector, llm
        self.tokenizer = tokenizer
        self.prompt = PromptBuilder(tokenizer, prompt)
        self.trainable: tuple[str, ...] = ()
        self.set_trainable(())

    # --- parts -------------------------------------------------------------------------------------------

    def part_parameters(self, part: str) -> list[tuple[str, nn.Parameter]]:
        if part == "encoder":
            return [(f"encoder.{n}", p) for n, p in self.encoder.named_parameters()]
        if part == "projector":
            return [(f"projector.{n}", p) for n, p in self.projector.named_parameters()]
        if part in ("llm", "lora"):
            want_lora = part == "lora"
            return [(f"llm.{n}", p) for n, p in self.llm.named_parameters() if ("lora_" in n) == want_lora]
        raise KeyError(f"SpeechLLM: unknown part {part!r}; known: {', '.join(PARTS)}")

    def set_trainable(self, parts: Iterable[str]) -> list[nn.Parameter]:
        """Give gradients to `parts` only (a stage's `train` list); everything else is frozen and the
        frozen encoder stays in eval mode. Returns the trainable parameters."""
        parts = tuple(parts)
        self.requires_grad_(False)
        params = []
        for part in parts:
            for _, p in self.part_parameters(part):
                p.requires_grad_(True)
                params.append(p)
        self.trainable = parts
        self.train(self.training)
        return params

    def train(self, mode: bool = True):
        """As nn.Module.train, but a frozen encoder and untrained LoRA (its dropout) stay in eval mode."""
        super().train(mode)
        if "encoder" not in self.trainable:
            self.encoder.eval()
        if "lora" not in self.trainable:
            for name, module in self.llm.named_modules():
                if name.endswith("lora_dropout"):
                    module.eval()
        return self

    # --- speech ------------------------------------------------------------------------------------------

    def encode(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) waveforms -> encoder frames (B, T, D), lengths (B,)."""
        with torch.set_grad_enabled("encoder" in self.trainable and torch.is_grad_enabled()):
            return self.encoder(wavs, lengths)

    def project(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder frames (B, T, D) -> LLM input vectors (B, T // k, H), lengths (B,)."""
        w = self.projector.linear1.weight
        return self.projector(feats.to(w.device, w.dtype), lengths.to(w.device))

    def slots(self, items: list[LLMItem]) -> list[torch.Tensor | list[int]]:
        """Per item, the slot content: projected speech (T_i, H) or the token ids of its text."""
        out: list[torch.Tensor | list[int] | None] = [None] * len(items)
        speech = [i for i, it in enumerate(items) if it.feats is not None]
        if speech:
            feats, lengths = pad_frames([items[i].feats for i in speech])
            proj, plen = self.project(feats, lengths)  # (B', T', H), (B',)
            for j, i in enumerate(speech):
                out[i] = proj[j, : int(plen[j])]
        for i, it in enumerate(items):
            if it.proj is not None:
                out[i] = it.proj
            elif it.text is not None:
                out[i] = self.prompt.text_ids(it.text)
        return out

    def batch(self, items: list[LLMItem], with_answers: bool = True) -> PromptBatch:
        answers = [it.target for it in items] if with_answers else None
        return self.prompt.build(self.llm.get_input_embeddings(), self.slots(items), answers)

    # --- training and decoding ---------------------------------------------------------------------------

    def forward(self, items: list[LLMItem]) -> torch.Tensor:
        """Mean cross-entropy over the transcript tokens + EOS of the batch (as the LLM's own loss with
        `labels`, but the output layer only runs on the last positions, where the answers are)."""
        b = self.batch(items)
        n = int((b.labels != IGNORE).sum(1).max()) + 1  # answers are right-aligned (left padding)
        logits = self.llm(
            inputs_embeds=b.inputs_embeds,
            attention_mask=b.attention_mask,
            position_ids=b.position_ids,
            logits_to_keep=n,
            use_cache=False,
        ).logits  # (B, n, V): predictions for the last n - 1 positions + 1 beyond the end
        target = b.labels[:, -(n - 1) :]  # (B, n - 1)
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), ignore_index=IGNORE)

    @torch.no_grad()
    def generate(self, items: list[LLMItem], max_new_tokens: int, num_beams: int = 1) -> list[str]:
        """Batched greedy (num_beams=1) or beam-search decoding; the hypotheses without special tokens."""
        b = self.batch(items, with_answers=False)
        gen = GenerationConfig(
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=False,
            eos_token_id=self.prompt.eos_id,
            pad_token_id=self.prompt.pad_id,
        )
        out = self.llm.generate(
            inputs_embeds=b.inputs_embeds, attention_mask=b.attention_mask, generation_config=gen
        )  # (B, <= max_new_tokens): only the new tokens when no input_ids are given
        return [s.strip() for s in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
