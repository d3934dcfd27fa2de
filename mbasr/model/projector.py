"""The projector (docs/paper.md "System": concatenate k=5 consecutive frames -> Linear(5120->2048) -> ReLU ->
Linear(2048->3072)), the SLAM-LLM `EncoderProjectorConcat`.

The last `T mod k` frames of the padded batch and, for each utterance, its last `length mod k` real
frames are dropped (as in SLAM-LLM): an utterance of `n` frames gives `n // k` LLM input vectors.
"""

from __future__ import annotations

import torch
from torch import nn


class ConcatProjector(nn.Module):
    def __init__(self, k: int, d_enc: int, d_hidden: int, d_llm: int):
        super().__init__()
        self.k = k
        self.linear1 = nn.Linear(k * d_enc, d_hidden)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(d_hidden, d_llm)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, D = feats.shape
        T2 = T // self.k
        x = feats[:, : T2 * self.k].reshape(B, T2, self.k * D)  # (B, T // k, k * D)
        x = self.linear2(self.relu(self.linear1(x)))  # (B, T // k, H)
        return x, torch.div(lengths, self.k, rounding_mode="floor")  # (B, T // k, H), (B,)
