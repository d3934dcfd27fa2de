"""The prompt (docs/paper.md "System", prompt): the chat template's user turn "Transcribe speech to text.
Speech: <speech>." with the projected speech, or the embeddings of a (corrupted) text, in the slot; the
assistant answer is the transcript + EOS, and the loss covers only those tokens.

The slot is found by rendering the template with the placeholder and splitting the string around it
(no hard-coded token ids); prefix and suffix are tokenised once. Batches are left-padded (what batched
generation needs) with position ids that count from each sequence's first real token, as `generate`
derives them from the attention mask, so training and decoding see the same positions.

    [pad ... pad][prefix][slot_i][suffix][answer_i + EOS]      labels: -100 except answer_i + EOS
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mbasr.config import PromptConfig
from mbasr.model.tokenizer import chat_template

IGNORE = -100  # label of positions without loss (PyTorch cross-entropy's ignore_index)


@dataclass
class PromptBatch:
    inputs_embeds: torch.Tensor  # (B, L, H)
    attention_mask: torch.Tensor  # (B, L) long, 0 on left padding
    position_ids: torch.Tensor  # (B, L)
    labels: torch.Tensor | None  # (B, L), IGNORE except answer tokens + EOS; None for a prompt-only batch
    slot_spans: list[tuple[int, int]]  # per item (start, length) of the slot in the padded sequence


class PromptBuilder:
    def __init__(self, tokenizer, cfg: PromptConfig):
        self.tokenizer = tokenizer
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": cfg.instruction}],
            tokenize=False,
            add_generation_prompt=True,
            chat_template=chat_template(cfg.chat_template),
        )
        if rendered.count(cfg.placeholder) != 1:
            raise ValueError(
                f"prompt.instruction: the rendered chat template holds the placeholder {cfg.placeholder!r} "
                f"{rendered.count(cfg.placeholder)} times (expected once): {rendered!r}"
            )
        pre, post = rendered.split(cfg.placeholder)
        self.prefix_ids: list[int] = tokenizer(pre, add_special_tokens=False).input_ids
        # the suffix ends with the assistant header: a prompt-only batch is ready for generation
        self.suffix_ids: list[int] = tokenizer(post, add_special_tokens=False).input_ids
        self.eos_id: int = tokenizer.eos_token_id
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id

    def text_ids(self, text: str) -> list[int]:
        """Token ids of a text placed in the speech slot."""
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def answer_ids(self, transcript: str) -> list[int]:
        return self.tokenizer(transcript, add_special_tokens=False).input_ids + [self.eos_id]

    def build(
        self,
        embed: Callable[[torch.Tensor], torch.Tensor],
        slots: list[torch.Tensor | list[int]],
        answers: list[str] | None = None,
    ) -> PromptBatch:
        """`embed`: the LLM's input embedding; `slots`: per item, speech vectors (T_i, H) or token ids of a
        text; `answers`: the transcripts (None: a prompt-only batch for generation)."""
        if answers is not None and len(answers) != len(slots):
            raise ValueError(f"PromptBuilder.build: {len(slots)} slots but {len(answers)} answers")
        B = len(slots)
        ans = [self.answer_ids(a) for a in answers] if answers is not None else [[] for _ in slots]
        P, S = len(self.prefix_ids), len(self.suffix_ids)
        lens = [P + len(s) + S + len(a) for s, a in zip(slots, ans, strict=True)]
        L = max(lens)
        ids = torch.full((B, L), self.pad_id, dtype=torch.long)  # (B, L)
        labels = torch.full((B, L), IGNORE, dtype=torch.long)
        attn = torch.zeros(B, L, dtype=torch.long)
        speech_mask = torch.zeros(B, L, dtype=torch.bool)  # positions that receive speech vectors
        spans, vectors = [], []
        for i, (slot, a) in enumerate(zip(slots, ans, strict=True)):
            start = L - lens[i]  # left padding
            n = len(slot)
            if isinstance(slot, torch.Tensor):
                slot_ids = [self.pad_id] * n  # placeholders, overwritten below
                speech_mask[i, start + P : start + P + n] = True
                vectors.append(slot)
            else:
                slot_ids = list(slot)
            row = self.prefix_ids + slot_ids + self.suffix_ids + a
            ids[i, start:] = torch.tensor(row, dtype=torch.long)
            attn[i, start:] = 1
            if a:
                labels[i, L - len(a) :] = torch.tensor(a, dtype=torch.long)
            spans.append((start + P, n))
        weight = embed.weight if hasattr(embed, "weight") else None
        device = weight.device if weight is not None else None
        x = embed(ids.to(device))  # (B, L, H)
        if vectors:
            v = torch.cat(vectors).to(x.device, x.dtype)  # (sum T_i, H)
            x = x.masked_scatter(speech_mask.to(x.device)[..., None], v)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, L), as generate() derives from the mask
        return PromptBatch(
            inputs_embeds=x,
            attention_mask=attn.to(x.device),
            position_ids=pos.to(x.device),
            labels=labels.to(x.device) if answers is not None else None,
            slot_spans=spans,
        )
