"""Micro-batching: texts from concurrent requests for one model go through the model together.

A request's texts wait in a queue; a worker takes the first waiting request, then keeps
collecting for up to `window` seconds or until `max_batch_size` texts are gathered, runs
them all in one Predictor call on the model thread, and hands each request its own
predictions back. While the model is busy, new requests pile up and form the next batch,
so under load batches grow by themselves; with `window=0` nothing waits beyond that (and
with `max_batch_size=1` each request is a model call of its own).

The worker also measures how fast texts leave while any are waiting (`rate`: each batch's texts
over the time since the previous batch ended, or since the queue stopped being empty), so the
server can tell how long a new request would wait (`expected_wait`) and refuse it when that is
too long (served.py). Every batch updates it, so it follows the load both ways.
"""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

Result = TypeVar("Result")
RATE_WEIGHT = 0.2  # the weight of the newest batch in the moving average of the drain rate


@dataclass
class _Request(Generic[Result]):
    texts: Sequence[str]
    future: asyncio.Future = field(repr=False)


class MicroBatcher(Generic[Result]):
    """Collects concurrent `submit` calls into batches for `predict` (a list of texts -> one result each)."""

    def __init__(self, predict: Callable[[list[str]], list[Result]], executor: Executor, window: float = 0.002,
                 max_batch_size: int = 64):
        self.predict = predict
        self.executor = executor
        self.window = window
        self.max_batch_size = max_batch_size
        self.batches = 0  # batches run so far, and the texts in them: mean batch size = texts / batches
        self.texts = 0
        self.waiting = 0  # texts submitted and not yet answered (queued or in the model)
        self.rate: float | None = None  # texts answered per second while texts were waiting (moving average)
        self._busy_since: float | None = None  # when the time the next batch is measured over began
        self._queue: collections.deque[_Request[Result]] = collections.deque()
        self._queued_texts = 0  # texts in the queue, not yet taken into a batch
        self._wake: asyncio.Future | None = None  # set when a request arrives (or the batch fills) while the worker waits
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker on the running event loop (the server's lifespan calls this)."""
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    def expected_wait(self) -> float:
        """Seconds a request submitted now would wait for the texts ahead of it at the measured drain rate (0 before
        it is known, and when none are waiting)."""
        if self.rate is None:
            return 0.0
        return self.waiting / self.rate

    async def submit(self, texts: Sequence[str]) -> list[Result]:
        if self._worker is None or self._worker.done():
            raise RuntimeError("MicroBatcher.start() was not called on this event loop")
        loop = self._worker.get_loop()
        future = loop.create_future()
        if self._busy_since is None:
            self._busy_since = loop.time()
        self._queue.append(_Request(texts, future))
        self._queued_texts += len(texts)
        self.waiting += len(texts)
        try:
            if self._wake is not None and not self._wake.done() and (
                    self.window == 0 or self._queued_texts >= self.max_batch_size or len(self._queue) == 1):
                self._wake.set_result(None)
            return await future
        finally:
            self.waiting -= len(texts)

    async def _wait(self, timeout: float | None) -> None:
        """Until `submit` wakes the worker, or `timeout` seconds (None: no limit)."""
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _set_once, self._wake)
        try:
            await self._wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    async def _collect(self) -> list[_Request[Result]]:
        """Whole requests from the queue's front: the first waiting one, then more for up to `window` seconds or
        until `max_batch_size` texts."""
        while not self._queue:
            await self._wait(None)
        if self.window > 0 and self._queued_texts < self.max_batch_size:
            deadline = asyncio.get_running_loop().time() + self.window
            while self._queued_texts < self.max_batch_size:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                await self._wait(remaining)
        batch, size = [], 0
        while self._queue and (size == 0 or size < self.max_batch_size):
            request = self._queue.popleft()
            batch.append(request)
            size += len(request.texts)
        self._queued_texts -= size
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [request for request in batch if not request.future.done()]  # skip clients that went away
            texts = [text for request in live for text in request.texts]
            if not texts:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self.predict, texts)
            except Exception as error:  # noqa: BLE001 - the error belongs to the requests, not to the worker
                for request in live:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            self.batches += 1
            self.texts += len(texts)
            start = 0
            for request in live:
                if not request.future.done():
                    request.future.set_result(results[start : start + len(request.texts)])
                start += len(request.texts)
            self._measure(len(texts), loop.time())

    def _measure(self, answered: int, now: float) -> None:
        """Fold a batch of `answered` texts, done at `now`, into the drain rate."""
        if self._busy_since is not None:
            rate = answered / max(now - self._busy_since, 1e-6)
            self.rate = rate if self.rate is None else (1 - RATE_WEIGHT) * self.rate + RATE_WEIGHT * rate
        still_waiting = self.waiting - answered > 0  # this batch's texts leave `waiting` once their requests resume
        self._busy_since = now if still_waiting else None


def _set_once(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
