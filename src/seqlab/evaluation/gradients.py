"""Vanishing gradients, measured: the norm of dLoss/dh_t at every time step t, on real reviews.

The recurrent layers are unrolled one step at a time with the model's own weights (the
same arithmetic as the fused kernel), so every hidden state h_t is a tensor autograd can
report a gradient for. For a SimpleRNN the gradient reaching early steps shrinks
geometrically; an LSTM's or GRU's gates keep it alive far longer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.evaluation.metrics import loss_from_logits
from seqlab.models.recurrent import RecurrentClassifier
from seqlab.text.cache import EncodedSplit
from seqlab.text.encoder import TextEncoder

CELL_STEPS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


@dataclass
class GradientProfile:
    name: str
    steps: int  # time steps measured (every review has at least this many tokens)
    reviews: int
    norms: list[float]  # mean over reviews of ||dLoss/dh_t||, t = 0 .. steps - 1 (the last is nearest the output)

    def ratio(self) -> float:
        """How much weaker the gradient is at the first step than at the last."""
        return self.norms[0] / self.norms[-1] if self.norms[-1] else float("nan")


def supports(model: nn.Module) -> bool:
    return isinstance(model, RecurrentClassifier) and not model.config.bidirectional


def _cells(model: RecurrentClassifier) -> list[nn.Module]:
    """One step-cell per layer, holding the fused layer's weights."""
    c = model.config
    cells = []
    for layer in range(c.layers):
        width = c.embedding_dim if layer == 0 else c.hidden_size
        cell = CELL_STEPS[c.cell](width, c.hidden_size).to(model.embedding.weight.device)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, kind).data.copy_(getattr(model.recurrent, f"{kind}_l{layer}").data)
        cells.append(cell)
    return cells


def hidden_state_gradients(model: RecurrentClassifier, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(time,) mean norm of dLoss/dh_t of the top layer, for full-length texts `ids` (batch, time)."""
    if not supports(model):
        raise ConfigError(f"gradients are measured for one-directional recurrent models (rnn, lstm, gru and their "
                          f"-attention forms); {model.name!r} is not one")
    model.eval()  # no dropout: the gradient of the model itself
    batch, time = ids.shape
    lengths = torch.full((batch,), time, dtype=torch.long, device=ids.device)
    inputs = model.embedding(ids)  # (batch, time, embedding)
    cells = _cells(model)
    carried = [None] * len(cells)
    top: list[torch.Tensor] = []
    for step in range(time):
        x = inputs[:, step]  # (batch, width)
        for layer, cell in enumerate(cells):
            state = carried[layer]
            if isinstance(cell, nn.LSTMCell):
                state = cell(x, state) if state is not None else cell(x)
                x = state[0]  # (batch, hidden)
            else:
                state = cell(x, state)
                x = state  # (batch, hidden)
            carried[layer] = state
        x.retain_grad()
        top.append(x)
    states = torch.stack(top, dim=1)  # (batch, time, hidden)
    if model.attention is not None:
        pooled, _ = model.attention(states, lengths)
    else:
        pooled = model._pool(states, lengths)  # (batch, hidden)
    loss = loss_from_logits(model.head(pooled), labels, reduction="sum")
    loss.backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in top]).detach().cpu()  # (time,)


def long_reviews(split: EncodedSplit, steps: int, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` reviews with at least `steps` tokens, each cut to its last `steps` tokens."""
    candidates = np.flatnonzero(split.lengths >= steps)
    if len(candidates) == 0:
        raise ConfigError(f"no review has {steps} tokens; lower --steps (the longest has {int(split.lengths.max())})")
    chosen = np.random.default_rng(seed).choice(candidates, size=min(count, len(candidates)), replace=False)
    encoded = split.encoded
    ids = np.stack([encoded.sequence(i)[-steps:] for i in chosen]).astype(np.int64)
    return torch.from_numpy(ids), torch.from_numpy(split.labels[chosen].astype(np.int64))


def encode_test_reviews(archive: str | Path | None, encoder: TextEncoder, steps: int) -> EncodedSplit:
    """IMDb's test reviews through a trained run's own vocabulary, cut to at least `steps` tokens."""
    from seqlab.data import imdb

    longer = TextEncoder(encoder.tokenizer, replace(encoder.config, maxlen=max(encoder.config.maxlen, steps)))
    test = imdb.load(archive).test
    return EncodedSplit(longer.encode(test.texts), np.asarray(test.labels, dtype=np.int64))


def gradient_profile(name: str, model: RecurrentClassifier, split: EncodedSplit, steps: int = 200,
                     count: int = 64, seed: int = 0) -> GradientProfile:
    ids, labels = long_reviews(split, steps, count, seed)
    device = model.embedding.weight.device
    norms = hidden_state_gradients(model, ids.to(device), labels.to(device))
    model.zero_grad(set_to_none=True)
    return GradientProfile(name, steps, len(labels), norms.tolist())


def gradient_figure(profiles: Mapping[str, GradientProfile], path: Path) -> Path:
    """Gradient norm per time step (log scale), one line per model; x counts steps back from the output."""
    from seqlab.evaluation.figures import plt, save_figure

    figure, axis = plt.subplots(figsize=(8, 5))
    for label, profile in profiles.items():
        back = np.arange(profile.steps)[::-1]  # steps before the last token
        axis.plot(back, profile.norms, "--" if "fresh" in label else "-", label=label)
    axis.set_yscale("log")
    axis.invert_xaxis()
    axis.set_xlabel("time steps before the last token")
    axis.set_ylabel("mean ||dLoss / dh_t|| (log scale)")
    axis.set_title("Gradient reaching each hidden state (real reviews)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, Path(path))
    return Path(path)
