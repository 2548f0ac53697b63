"""Why a prediction came out as it did: a score for every word of the review.

    from seqlab.explain import explain
    explain(seqlab.load("runs/lstm"), "A wonderful film.", method="occlusion").words

Three methods, each through the Predictor (same encoder, same ids, same backend):

- ``attention``: the model's own attention weight on each token (attention models only). It says
  where the model looked, not which way the word pushed; weights are >= 0 and sum to 1.
- ``occlusion``: the drop in the target class's probability when the word alone is replaced by the
  unknown-word id. Positive: the word pushed toward the target; negative: away from it. Works with
  any model and backend (ONNX included); a word already out of the vocabulary scores 0.
- ``integrated_gradients``: gradients of the target's log-odds along a straight path from all-zero
  word vectors to the real ones (PyTorch only); scores add up to the change in log-odds.

``auto`` picks attention when the model returns it, else occlusion.

Scores belong to positions the model read. The encoder prepends a start token and, for texts
longer than maxlen, keeps the last maxlen tokens (or the first, with truncating='post'): words that
were cut off were never read and get no score (``read: false``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch

from seqlab.errors import ConfigError, SeqlabError
from seqlab.predict import Prediction, Predictor
from seqlab.text.cache import EncodedSplit
from seqlab.text.encoder import UNKNOWN, Encoded

Method = Literal["auto", "attention", "occlusion", "integrated_gradients"]
METHODS: tuple[str, ...] = get_args(Method)
IG_STEPS = 32  # points on the path from zero vectors to the real ones (midpoint rule)

DESCRIPTIONS = {
    "attention": "attention weight: the share of the model's attention on the word (where it looked, not which way "
                 "it pushed)",
    "occlusion": "occlusion: how much P({target}) drops when the word alone is replaced by an unknown word "
                 "(positive: the word pushed toward {target})",
    "integrated_gradients": "integrated gradients: the word's share of the log-odds of {target} against all-zero "
                            "word vectors (positive: the word pushed toward {target})",
}


@dataclass(frozen=True)
class WordScore:
    text: str  # the word as written in the review
    start: int  # character offsets of the word in the review: text == review[start:end]
    end: int
    token: str  # the vocabulary entry the model read for it ('<unk>' when out of vocabulary)
    read: bool  # False: cut off by truncation to maxlen, never seen by the model
    score: float | None  # None when not read

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "token": self.token, "read": self.read,
                "score": self.score}


@dataclass(frozen=True)
class Explanation:
    text: str
    prediction: Prediction
    method: str  # attention | occlusion | integrated_gradients
    target: str  # the class the scores refer to
    description: str  # what a score means, in words
    words: list[WordScore] = field(default_factory=list)
    start_token: float | None = None  # score of the start-of-review token, if it was read

    @property
    def words_cut(self) -> int:
        return sum(not word.read for word in self.words)

    def to_dict(self) -> dict:
        return {"prediction": self.prediction.to_dict(), "method": self.method, "target": self.target,
                "description": self.description, "words_cut": self.words_cut, "start_token": self.start_token,
                "words": [word.to_dict() for word in self.words]}


@dataclass(frozen=True)
class _Alignment:
    ids: np.ndarray  # (1, read) int64, the ids the model reads
    lengths: np.ndarray  # (1,) int64
    positions: list[int | None]  # per word: its position in ids, None if cut off
    start_position: int | None  # position of the start token in ids, None if absent or cut off
    spans: list[tuple[int, int]]
    tokens: list[str]


def _align(predictor: Predictor, text: str) -> _Alignment:
    """The ids the Predictor feeds the model for `text`, and where each word of `text` sits in them."""
    encoded = predictor.encode([text]).encoded
    config = predictor.encoder.config
    words = predictor.encoder.tokenizer.encode(text, add_special_tokens=False)
    first_word = 1 if config.start_token else 0  # index of the first word in the full (uncut) sequence
    full, kept = int(encoded.full_lengths[0]), int(encoded.lengths[0])
    if full != len(words.ids) + first_word:
        raise SeqlabError("internal error: the encoder's words do not line up with its ids")
    first_kept = full - kept if config.truncating == "pre" else 0

    def position(index: int) -> int | None:
        return index - first_kept if first_kept <= index < first_kept + kept else None

    ids = encoded.sequence(0).astype(np.int64)[None, :]  # (1, read)
    positions = [position(i + first_word) for i in range(len(words.ids))]
    for word_id, at in zip(words.ids, positions):
        if at is not None and ids[0, at] != word_id:
            raise SeqlabError("internal error: word positions do not match the encoded ids")
    return _Alignment(ids, np.array([kept], dtype=np.int64), positions, position(0) if config.start_token else None,
                      list(words.offsets), list(words.tokens))


def _occlusion(predictor: Predictor, alignment: _Alignment, target: int) -> np.ndarray:
    """Per read position: P(target | text) - P(target | text with that token replaced by <unk>)."""
    ids = alignment.ids  # (1, read)
    read = ids.shape[1]
    variants = np.repeat(ids, read + 1, axis=0)  # (read + 1, read): row 0 unchanged, row i+1 hides token i
    variants[np.arange(1, read + 1), np.arange(read)] = UNKNOWN
    lengths = np.full(read + 1, read, dtype=np.int64)
    encoded = Encoded(variants.ravel().astype(np.int32), np.arange(read + 2, dtype=np.int64) * read, lengths)
    logits = predictor.logits(EncodedSplit(encoded, np.zeros(read + 1, dtype=np.int64)))  # (read + 1, outputs)
    p = predictor.probabilities(logits)[:, target]  # (read + 1,)
    return p[0] - p[1:]


def _embedding(model: torch.nn.Module) -> torch.nn.Embedding:
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            return module
    raise ConfigError(f"integrated gradients needs a model with an nn.Embedding layer; {type(model).__name__} has none")


def _integrated_gradients(predictor: Predictor, alignment: _Alignment, target: int) -> np.ndarray:
    """Per read position: (x - 0) . mean gradient of the target's log-odds along 0 -> x (midpoint rule)."""
    model = predictor.model
    embedding = _embedding(model)
    ids = torch.from_numpy(alignment.ids)  # (1, read)
    with torch.no_grad():
        vectors = embedding(ids)  # (1, read, embedding)
    alphas = (torch.arange(IG_STEPS, dtype=vectors.dtype) + 0.5) / IG_STEPS  # (steps,)
    path = (alphas[:, None, None] * vectors).requires_grad_(True)  # (steps, read, embedding)
    handle = embedding.register_forward_hook(lambda module, inputs, output: _arranged_as(inputs[0], path))
    try:
        with torch.enable_grad():
            logits = model(ids.expand(IG_STEPS, -1), torch.from_numpy(alignment.lengths).expand(IG_STEPS)).logits
            gradient, = torch.autograd.grad(_log_odds(logits, target).sum(), path)  # (steps, read, embedding)
    finally:
        handle.remove()
    return (vectors[0] * gradient.mean(0)).sum(-1).numpy()  # (read,)


def _arranged_as(ids: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """`path` (steps, read, embedding) laid out as the `ids` the embedding was given: (steps, read), or
    (read, steps) for a model that looks its words up time-major (the recurrent ones: ``embedding(ids.t())``).
    The steps are copies of one text, so their axis is the one with stride 0 when both have one length."""
    steps, read = path.shape[:2]
    time_major = tuple(ids.shape) == (read, steps) and (steps != read or ids.stride(1) == 0)
    return path.transpose(0, 1) if time_major else path


def _log_odds(logits: torch.Tensor, target: int) -> torch.Tensor:
    """(rows,) log P(target) - log P(not target), for one logit (binary) or one per class."""
    if logits.shape[-1] == 1:
        return logits[:, 0] if target == 1 else -logits[:, 0]
    log_p = torch.log_softmax(logits, dim=-1)
    return log_p[:, target] - torch.log1p(-log_p[:, target].exp().clamp(max=1 - 1e-7))


def explain(predictor: Predictor, text: str, method: str = "auto", target: str | None = None) -> Explanation:
    """Score every word of `text` for `target` (default: the predicted class) with `method`."""
    if not isinstance(text, str):
        raise SeqlabError(f"text must be a string, not {type(text).__name__}")
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    alignment = _align(predictor, text)
    scores = predictor.backend(alignment.ids, alignment.lengths)
    [prediction] = predictor.predict([text])
    if target is None:
        target = prediction.label
    if target not in predictor.label_names:
        raise ConfigError(f"unknown class {target!r}; this model's classes: {', '.join(predictor.label_names)}")
    target_index = predictor.label_names.index(target)
    if method == "auto":
        method = "attention" if scores.attention is not None else "occlusion"
    if method == "attention":
        if scores.attention is None:
            raise ConfigError(f"model {predictor.run.config['model']['name']!r} has no attention weights; "
                              "use method occlusion or integrated_gradients")
        position_scores = scores.attention[0, : alignment.ids.shape[1]]
    elif method == "occlusion":
        position_scores = _occlusion(predictor, alignment, target_index)
    else:
        if predictor.backend.name != "pytorch":
            raise ConfigError("integrated gradients needs the PyTorch backend (gradients); "
                              "use occlusion with ONNX Runtime")
        position_scores = _integrated_gradients(predictor, alignment, target_index)

    def score_at(position: int | None) -> float | None:
        return None if position is None else float(position_scores[position])

    words = [WordScore(text[start:end], start, end, token, at is not None, score_at(at))
             for (start, end), token, at in zip(alignment.spans, alignment.tokens, alignment.positions)]
    return Explanation(text, prediction, method, target, DESCRIPTIONS[method].format(target=target), words,
                       score_at(alignment.start_position))


__all__ = ["Explanation", "METHODS", "WordScore", "explain"]
