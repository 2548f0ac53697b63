"""Vanishing gradients, measured: the norm of dLoss/dh_t at every time step t, on real reviews.

The model's own recurrent module (PyTorch's kernel, its own weights) is run one step at a
time, carrying its state, so every hidden state h_t is a tensor autograd can report a
gradient for. For a SimpleRNN the gradient reaching early steps shrinks geometrically; an
LSTM's or GRU's gates keep it alive far longer.
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
from seqlab.models.recurrent import RecurrentClassifier, RecurrentConfig
from seqlab.text.cache import EncodedSplit
from seqlab.text.encoder import TextEncoder


@dataclass
class GradientProfile:
    name: str
    steps: int  # time steps measured (every review has at least this many tokens)
    reviews: int
    norms: list[float]  # mean over reviews of ||dLoss/dh_t||, t = 0 .. steps - 1 (the last is nearest the output)

    def ratio(self) -> float:
        """How much weaker the gradient is at the first step than at the last."""
        return self.norms[0] / self.norms[-1] if self.norms[-1] else float("nan")


def supports(model: nn.Module | object) -> bool:
    """Whether the gradient per step can be measured: a one-directional recurrent model, or its config
    (which answers without building the weights)."""
    config = getattr(model, "config", None) if isinstance(model, nn.Module) else model
    return isinstance(config, RecurrentConfig) and not config.bidirectional


def hidden_state_gradients(model: RecurrentClassifier, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(time,) mean norm of dLoss/dh_t of the top layer, for full-length texts `ids` (batch, time)."""
    if not supports(model):
        raise ConfigError(f"gradients are measured for one-directional recurrent models (rnn, lstm, gru and their "
                          f"-attention forms); {model.name!r} is not one")
    model.eval()  # no dropout: the gradient of the model itself
    batch, time = ids.shape
    lengths = torch.full((batch,), time, dtype=torch.long, device=ids.device)
    top = _top_states(model.recurrent, model.embedding(ids))  # (batch, 1, hidden) each
    pooled, _ = model.pool(torch.cat(top, dim=1), lengths)  # (batch, hidden)
    loss = loss_from_logits(model.head(pooled), labels, reduction="sum")
    loss.backward()
    gradients = [h.grad for h in top if h.grad is not None]  # (batch, 1, hidden) each: _top_states retains them
    return torch.stack([g.norm(dim=-1).mean() for g in gradients]).detach().cpu()  # (time,)


def _top_states(module: nn.RNNBase, vectors: torch.Tensor) -> list[torch.Tensor]:
    """The top layer's output of each step (batch, 1, hidden), `module` run one step at a time on
    `vectors` (batch, time, features). The top layer's state carried to the next step is that
    output itself, so its gradient is all of dLoss/dh_t (the pooling's and the next step's)."""
    state, top = None, []
    for step in range(vectors.shape[1]):
        output, state = module(vectors[:, step : step + 1], state)  # (batch, 1, hidden)
        output.retain_grad()
        top.append(output)
        below = state[0] if isinstance(state, tuple) else state  # (layers, batch, hidden)
        carried = torch.cat([below[:-1], output.transpose(0, 1)])
        state = (carried, state[1]) if isinstance(state, tuple) else carried
    return top


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
