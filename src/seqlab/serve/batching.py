"""Micro-batching: texts from concurrent requests for one model go through the model together.

A request's texts wait in a queue; a worker takes the first waiting request, then keeps
collecting for up to `window` seconds or until `max_batch_size` texts are gathered, runs
them all in one Predictor call on the model thread, and hands each request its own
predictions back. While the model is busy, new requests pile up and form the next batch,
so under load batches grow by themselves; with `window=0` nothing waits beyond that.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

Result = TypeVar("Result")


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
        self._queue: asyncio.Queue[_Request[Result]] | None = None
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker on the running event loop (the server's lifespan calls this)."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def submit(self, texts: Sequence[str]) -> list[Result]:
        if self._queue is None or self._worker is None or self._worker.done():
            raise RuntimeError("MicroBatcher.start() was not called on this event loop")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(texts, future))
        return await future

    async def _collect(self) -> list[_Request[Result]]:
        queue = self._queue
        assert queue is not None  # start() made it
        batch = [await queue.get()]
        size = len(batch[0].texts)
        deadline = asyncio.get_running_loop().time() + self.window
        while size < self.max_batch_size:
            if queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    request = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                request = queue.get_nowait()
            batch.append(request)
            size += len(request.texts)
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
