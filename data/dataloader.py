"""DataLoader: batches from a dataset through a sampler, prefetched on a background thread."""
from __future__ import annotations

import queue
import threading
from typing import Callable

import numpy as np

from .collate import collate_numpy, default_collate, to_tensors  # noqa: F401  (re-exported)
from .dataset import _has_batch
from .sampler import BatchSampler, RandomSampler, SequentialSampler

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class DataLoader:
    """torch.utils.data.DataLoader over strata Tensors.

    Batches are produced on one background thread, `prefetch_factor` batches ahead
    (set `prefetch_factor=0` to load in the calling thread). Datasets that define
    `get_batch(indices)` (TensorDataset, MNIST, their Subsets) are batched by fancy
    indexing of whole arrays. `generator` (an int seed or numpy.random.Generator) makes
    shuffling reproducible. `backend` picks the stack the batch tensors are created on
    (default: the default backend); `collate_fn=None` gives strata Tensors.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, drop_last: bool = False, generator=None,
                 prefetch_factor: int = 2, backend=None) -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative")
        if prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.prefetch_factor = prefetch_factor
        self.generator = generator
        self.backend = backend

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    # ------------------------------------------------------------ production
    def _index_batches(self):
        if self.batch_sampler is None:
            for i in self.sampler:
                yield i
        elif isinstance(self.batch_sampler, BatchSampler):
            yield from self.batch_sampler.batches()
        else:
            for b in self.batch_sampler:
                yield list(b)

    def _produce(self):
        """Yields collated batches; with the default collate, NumPy ones (converted later)."""
        fast = self.collate_fn is None and self.batch_sampler is not None and _has_batch(self.dataset)
        for idx in self._index_batches():
            if self.batch_sampler is None:
                item = self.dataset[idx]
                yield collate_numpy([item])[0] if self.collate_fn is None else self.collate_fn(item)
            elif fast:
                yield self.dataset.get_batch(np.asarray(idx, dtype=np.int64))
            else:
                items = [self.dataset[int(i)] for i in idx]
                yield collate_numpy(items) if self.collate_fn is None else self.collate_fn(items)

    def __iter__(self):
        finish = self._finish if self.collate_fn is None else (lambda b: b)
        if self.prefetch_factor == 0:
            for b in self._produce():
                yield finish(b)
            return
        q: queue.Queue = queue.Queue(maxsize=max(self.prefetch_factor, 1))
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work():
            try:
                for b in self._produce():
                    if not put(b):
                        return
                put(_END)
            except BaseException as e:  # re-raised in the consumer thread
                put(_Failure(e))

        t = threading.Thread(target=work, name="strata-dataloader", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    raise item.exc
                yield finish(item)
        finally:
            stop.set()
            t.join(timeout=5)

    def _finish(self, batch):
        return to_tensors(batch, self.backend)


__all__ = ["DataLoader", "default_collate"]
