"""Additive (Bahdanau-style) attention pooling: one weight per token, none on padding.

    score_t = v . tanh(W h_t + b)        weights = softmax(score) over each text's own tokens
    pooled  = sum_t weights_t * h_t

The weights come back in ``Output.attention`` so they can be shown per word.
"""

from __future__ import annotations

import torch
from torch import nn


def length_mask(lengths: torch.Tensor, time: int) -> torch.Tensor:
    """True at each text's real tokens, False on its padding."""
    return torch.arange(time, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)  # (batch, time)


class AdditiveAttention(nn.Module):
    def __init__(self, width: int, attention_size: int):
        super().__init__()
        self.project = nn.Linear(width, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled vectors (batch, width) and weights (batch, time) that are exactly 0 on padding."""
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)  # (batch, time)
        scores = scores.masked_fill(~length_mask(lengths, states.shape[1]), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (batch, time)
        pooled = torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (batch, width)
        return pooled, weights


def pool(states: torch.Tensor, lengths: torch.Tensor, how: str) -> torch.Tensor:
    """Mean or max over each text's own tokens."""
    mask = length_mask(lengths, states.shape[1]).unsqueeze(-1)  # (batch, time, 1)
    if how == "mean":
        return (states * mask).sum(1) / lengths.unsqueeze(-1).to(states.dtype)  # (batch, width)
    return states.masked_fill(~mask, float("-inf")).amax(1)  # (batch, width)
