"""A model as the server runs it: its Predictor, its queue limits, its readiness, bounded explanations.

Predictions run on the model thread (merged by a MicroBatcher when batching); explanations run on
a thread of their own, on their own copy of a PyTorch model (integrated gradients hooks the embedding
layer while it runs, which must not touch predictions running at the same time), so a long
explanation never holds predictions up. Requests get 503 with Retry-After at once, instead of queueing,
when their texts would wait longer than `max_queue_wait_s` at the rate the model's queue drains under
load, or would pass `max_queued_texts` texts waiting, or `max_queued_explanations` explanations.

A model whose weights or outputs are not finite (NaN or infinity) cannot answer: it is reported
not ready and its requests get 503 with the reason, never a NaN (which is not JSON).
"""

from __future__ import annotations

import asyncio
import copy
import math
from concurrent.futures import Executor

import numpy as np
import torch

from seqlab.explain import explain
from seqlab.models import kernels
from seqlab.predict import Prediction, Predictor, TorchBackend
from seqlab.serve.batching import MicroBatcher
from seqlab.serve.config import ServeConfig
from seqlab.serve.limits import Unavailable
from seqlab.serve.metrics import Metrics


def _finite(prediction: Prediction) -> bool:
    return all(math.isfinite(value) for value in prediction.probabilities.values())


def explain_bounded(predictor: Predictor, text: str, method: str, target: str | None) -> dict:
    """`explain(predictor, text)` as a dict, at the cost of maxlen tokens whatever the text's length: the text
    is cut, before explaining, to the words the model reads and at most maxlen of the cut-off words beside
    them. The model reads the same ids, so the scores and the prediction are the same; offsets refer to
    `text` and `words_cut` counts every word cut off."""
    maxlen = predictor.encoder.config.maxlen
    kept = 2 * maxlen
    # encode_batch lets go of the GIL while it works, so a long text does not hold up the event loop
    spans = predictor.encoder.tokenizer.encode_batch([text], add_special_tokens=False)[0].offsets
    if len(spans) <= kept:
        return explain(predictor, text, method, target).to_dict()
    if predictor.encoder.config.truncating == "pre":  # the model reads the last words
        start, end = spans[-kept][0], len(text)
    else:
        start, end = 0, spans[kept - 1][1]
    explanation = explain(predictor, text[start:end], method, target).to_dict()
    for word in explanation["words"]:
        word["start"] += start
        word["end"] += start
    explanation["words_cut"] += len(spans) - kept
    return explanation


class ServedModel:
    """A Predictor with its name, its batcher and the server's limits."""

    def __init__(self, name: str, predictor: Predictor, executor: Executor, explain_executor: Executor,
                 config: ServeConfig, metrics: Metrics):
        self.name = name
        self.metrics = metrics
        self.queue_depth = metrics.queue_depth.labels(name)
        self.predictor = predictor
        self.executor = executor
        self.explain_executor = explain_executor
        self.config = config
        self.queued_texts = 0  # texts waiting for or in the model
        self.queued_explanations = 0
        one = np.ones((1, 1), dtype=np.int64)  # the start token alone: does this model return attention?
        scores = predictor.backend(one, one[0])
        self.has_attention = scores.attention is not None
        self.problem = self._weights_problem(scores.logits)  # why the model cannot answer; None when it can
        self.explainer = predictor
        if isinstance(predictor.backend, TorchBackend):
            self.explainer = copy.copy(predictor)
            self.explainer.model = kernels.fold(copy.deepcopy(predictor.model))  # the Predictor's tables, so the same arithmetic
            self.explainer.backend = TorchBackend(self.explainer.model, predictor.backend.precision)
        # without batching, each request is a model call of its own: the same queue, never merged
        window, size = (config.batch_window_ms / 1000, config.max_batch_size) if config.batching else (0.0, 1)
        self.batcher = MicroBatcher(self.call_model, executor, window, size)

    def call_model(self, texts: list[str]) -> list[Prediction]:
        """One model call (a batch), on the model thread, counted in the metrics."""
        return self.metrics.model_call(self.name, self.predictor.predict, texts)

    def _weights_problem(self, logits: np.ndarray) -> str | None:
        broken = [name for name, weight in self.predictor.model.named_parameters() if not torch.isfinite(weight).all()]
        if broken:
            return f"its weights are not finite (NaN or infinity) in {', '.join(broken[:3])}; retrain it"
        if not np.isfinite(logits).all():
            return "its outputs are not finite (NaN or infinity); retrain it"
        return None

    def _check_ready(self) -> None:
        if self.problem is not None:
            raise Unavailable(f"model {self.name!r} cannot answer: {self.problem}")

    def _shed(self, waiting: int, adding: int, limit: int, what: str) -> None:
        if waiting + adding > limit:
            raise Unavailable(f"model {self.name!r} has {waiting:,} {what} waiting and {adding:,} more would pass the "
                              f"server's limit of {limit:,}; retry after {self.config.retry_after_s} s",
                              retry_after=self.config.retry_after_s)

    def overload(self) -> Unavailable | None:
        """Why a request should be refused now: it would wait over `max_queue_wait_s` for the texts ahead of it."""
        wait = self.batcher.expected_wait()
        if wait <= self.config.max_queue_wait_s:
            return None
        return Unavailable(f"model {self.name!r} would start on a request in about {wait:.2f} s ({self.batcher.waiting:,} texts "
                           f"waiting), over the server's limit of {self.config.max_queue_wait_s:g} s; retry after "
                           f"{self.config.retry_after_s} s", retry_after=self.config.retry_after_s)

    async def predict(self, texts: list[str]) -> list[Prediction]:
        self._check_ready()
        self._shed(self.queued_texts, len(texts), self.config.max_queued_texts, "texts")
        overload = self.overload()
        if overload is not None:
            raise overload
        self.queued_texts += len(texts)
        try:
            with self.queue_depth.track_inprogress():
                predictions = await self.batcher.submit(texts)
        finally:
            self.queued_texts -= len(texts)
        if not all(map(_finite, predictions)):
            self.problem = "it gave non-finite probabilities (NaN or infinity); retrain it"
            self._check_ready()
        return predictions

    async def explain(self, text: str, method: str, target: str | None) -> dict:
        self._check_ready()
        self._shed(self.queued_explanations, 1, self.config.max_queued_explanations, "explanations")
        self.queued_explanations += 1
        try:
            explanation = await asyncio.get_running_loop().run_in_executor(
                self.explain_executor, explain_bounded, self.explainer, text, method, target)
        finally:
            self.queued_explanations -= 1
        scores = [word["score"] for word in explanation["words"] if word["score"] is not None]
        if explanation["start_token"] is not None:
            scores.append(explanation["start_token"])
        probabilities = explanation["prediction"]["probabilities"].values()
        if not all(math.isfinite(value) for value in [*scores, *probabilities]):
            raise Unavailable(f"model {self.name!r} gave non-finite scores (NaN or infinity) for this text")
        return explanation

    def info(self) -> dict:
        run = self.predictor.run
        methods = ["occlusion"] + (["integrated_gradients"] if self.predictor.backend.name == "pytorch" else [])
        if self.has_attention:
            methods.insert(0, "attention")
        accuracy = (run.metrics or {}).get("test", {}).get("accuracy")
        if not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
            accuracy = None  # none recorded, or a diverged run's NaN, which is not JSON
        return {"name": self.name, "architecture": run.config["model"]["name"], "backend": self.predictor.backend.name,
                "labels": list(self.predictor.label_names), "maxlen": self.predictor.encoder.config.maxlen,
                "truncating": self.predictor.encoder.config.truncating, "methods": methods,
                "test_accuracy": accuracy}
