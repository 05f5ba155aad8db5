"""Cost meters for one measured training step: backward FLOPs and the peak of live tensor memory.

Progressive layer freezing (Yang et al., arXiv 2303.07477) is judged by its backward FLOPs and
its training memory; both meters wrap a region of code (``with meter.measure(): ...``) and add
noticeable overhead, so they are meant for one step per task, not every step.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode


class BackwardFlops:
    """FLOPs of the code run in ``measure()``, meant for a backward pass.

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: matrix products and convolutions
    (and their backward kernels), 2 FLOPs per multiply-add; element-wise operations (BatchNorm,
    activations, reductions) count 0. Only operations dispatched eagerly are seen, not the
    kernels of a ``torch.compile``-d graph.

    Attributes:
        total: the FLOPs of the region measured last (0 before any).
    """

    def __init__(self) -> None:
        self.total: int = 0

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Count the FLOPs of the ``with`` block into ``total``."""
        counter = FlopCounterMode(display=False)
        with counter:
            yield
        self.total = counter.get_total_flops()


class _LiveStorages(TorchDispatchMode):
    """The bytes of the tracked tensor storages of one device type that are alive, and their
    peak while the mode is active.

    A storage is tracked when it belongs to one of ``persistent`` (the tensors alive at the start
    to count) or when an operation run under the mode returns a tensor whose storage none of the
    operation's inputs had (a fresh allocation, not a view or an in-place result); a weak
    reference notices when it is freed. Each storage counts once, whatever the number of tensors
    (views) on it.
    """

    def __init__(self, device_type: str, persistent: Iterable[Tensor]) -> None:
        super().__init__()
        self.device_type = device_type
        self.current = 0
        self.peak = 0
        self._bytes: dict[int, int] = {}
        self._refs: dict[int, weakref.ref[torch.UntypedStorage]] = {}
        for tensor in persistent:  # no reference outlives this frame
            self.add(tensor)

    def _storage(self, value: object) -> torch.UntypedStorage | None:
        if (
            isinstance(value, Tensor)
            and value.layout is torch.strided
            and value.device.type == self.device_type
        ):
            return value.untyped_storage()
        return None

    def add(self, tensor: Tensor) -> None:
        """Track the storage of ``tensor`` (of the mode's device type) if it is not yet tracked;
        refresh its size if it is (a resize)."""
        storage = self._storage(tensor)
        if storage is None:
            return
        key = id(storage)
        if key not in self._refs:
            self._refs[key] = weakref.ref(storage, partial(self._freed, key))
        nbytes = storage.nbytes()
        self.current += nbytes - self._bytes.get(key, 0)
        self._bytes[key] = nbytes
        self.peak = max(self.peak, self.current)

    def _freed(self, key: int, _ref: weakref.ref[torch.UntypedStorage]) -> None:
        self.current -= self._bytes.pop(key, 0)
        self._refs.pop(key, None)

    def clear(self) -> None:
        """Stop tracking (drops the weak references, so no callback runs later)."""
        self._refs.clear()
        self._bytes.clear()

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        inputs: set[int] | None = None
        for value in tree_leaves(result):
            storage = self._storage(value)
            if storage is None:
                continue
            if id(storage) not in self._refs:
                if inputs is None:
                    inputs = {
                        id(s)
                        for s in map(self._storage, tree_leaves((args, kwargs)))
                        if s is not None
                    }
                if id(storage) in inputs:
                    continue  # a view or an in-place result of a tensor not tracked
            self.add(value)
        return result


class LiveTensorPeak:
    """Peak bytes of live tensors on ``device`` during ``measure()``.

    CPU: tensor storages counted by a ``TorchDispatchMode`` (not the process's resident set):
    the tensors named in ``measure(persistent=...)`` (parameters, gradients, optimiser state
    alive at the start), plus every storage allocated by an operation inside the region
    (activations saved for backward, gradients, new optimiser state), minus those freed, each
    storage once however many views it has; ``bytes`` is the maximum of that sum after each
    operation. Not seen: tensors alive at the start but not named, temporary buffers inside a
    kernel, allocator overhead, and the tensors of a ``torch.compile``-d graph.

    CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated`` after
    ``torch.cuda.reset_peak_memory_stats``), which counts every allocation on the device, named
    or not; ``persistent`` is not needed there. The reset also clears the peak that any other
    reader of the allocator's statistics sees.

    Attributes:
        bytes: the peak of the region measured last (0 before any).
        method: how ``bytes`` was measured.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"LiveTensorPeak measures cpu or cuda, not {self.device.type}")
        self.bytes: int = 0
        self.method = (
            "cuda max_memory_allocated"
            if self.device.type == "cuda"
            else "live tensor storages (dispatch-mode tracking)"
        )

    @contextmanager
    def measure(self, persistent: Iterable[Tensor] = ()) -> Iterator[None]:
        """Measure the ``with`` block into ``bytes``; ``persistent``: the tensors alive at its
        start to count (CPU)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            yield
            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
            return
        storages = _LiveStorages(self.device.type, persistent)
        try:
            with storages:
                yield
            self.bytes = storages.peak
        finally:
            storages.clear()


def training_state(learner: nn.Module, optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The tensors a training step keeps between steps: parameters and optimiser state."""
    state = [
        value
        for per_param in optimizer.state.values()
        for value in per_param.values()
        if isinstance(value, Tensor)
    ]
    return [*learner.parameters(), *learner.buffers(), *state]
