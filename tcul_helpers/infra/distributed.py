"""Several GPUs (or CPU processes) on one run: ``torchrun`` with PyTorch's own DDP.

``torchrun --nproc_per_node N python -m tcul_helpers adapt ...`` starts N processes, the
*ranks*; :func:`init_from_env` joins them into one process group (NCCL on CUDA, gloo on a
CPU). What each rank then does:

* **training** (source and fine-tuning, :mod:`tcul_helpers.training.loops`): every rank draws the
  same P x M batch (same sampler, same seed) and decodes and forwards its own contiguous
  1/N of it (:class:`ShardedBatches`); the embeddings, logits and labels of the whole batch
  are gathered (:func:`gather_batch`: the rank's own slice keeps its gradient), so the
  batch-hard mining of Eq. 4-5 sees all P x M images as one process would; each rank
  back-propagates the loss times N and :class:`~torch.nn.parallel.DistributedDataParallel`
  averages the gradients, which gives the gradient of the whole batch's loss. BatchNorm is
  synchronised across GPUs (``SyncBatchNorm``); on a CPU (gloo) each rank normalises its
  share with its own statistics, the one difference from a single process.
* **extraction** (:func:`tcul_helpers.training.features.extract_features`): each rank extracts a
  contiguous 1/N of the images; every rank receives all rows (:func:`gather_rows`).
* **decisions** - k-means, the scores, whether a cached result is reused - run once, on
  rank 0, and their result is broadcast (:func:`on_main`); an error raised there is raised
  on every rank, so all of them stop with the same one line. One iteration of Algorithm 1
  (Eq. 1-3, Eq. 6-7) runs on every rank from the same gathered features, and rank 0's
  labels, reliable set and centres are broadcast before fine-tuning and after the
  iteration (:func:`from_main`), so every rank trains on and keeps the same decisions.
* **files**: only rank 0 writes (:func:`main_only`), so there is one run folder.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) every function here is the
identity: the single-process path is exactly the one a laptop runs.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .errors import TCULError

T = TypeVar("T")

#: How long a rank waits for the others at a collective before the run fails (a rank that
#: died leaves the rest waiting; torchrun also stops them when one exits with an error).
TIMEOUT = timedelta(minutes=30)


#: True while rank 0 runs a block alone (:func:`on_main`, :func:`main_only`): code in it that
#: would share work (an extraction) then runs as one process instead of waiting for the
#: other ranks, which are not there.
_alone = False


def world_size() -> int:
    """Number of ranks in this run (1 without torchrun, and inside rank 0's own blocks)."""
    if _alone or not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    """True on rank 0, the rank that decides and writes (always True without torchrun)."""
    return rank() == 0


def launch_rank() -> int:
    """The rank torchrun gave this process (``RANK``; 0 without torchrun), known also before
    the process group is joined and after it is left: who prints a command's last words."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def launched() -> bool:
    """True when this process was started by torchrun with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> None:
    """Join the process group torchrun describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``); a no-op without it.

    On CUDA (``device`` ``auto`` or ``cuda`` with GPUs present) the backend is NCCL and this
    rank's GPU becomes the current device, so ``cuda`` means ``cuda:LOCAL_RANK``; otherwise
    gloo on the CPU. More ranks than GPUs on a node raise TCULError."""
    if not launched() or world_size() > 1:
        return
    if not dist.is_available():
        raise TCULError("torchrun started several processes but this torch build has no "
                        "torch.distributed: run one process (python -m tcul_helpers ...)")
    cuda = str(device).lower() != "cpu" and torch.cuda.is_available()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise TCULError(
                f"local rank {local} but only {torch.cuda.device_count()} GPUs on this node: "
                "use torchrun --nproc_per_node at most the number of GPUs")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)


def settle() -> None:
    """Wait until every rank has finished the command (a no-op without torchrun): a rank
    that leaves the group while another still sends can make gloo abort at teardown."""
    if world_size() > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (end of a torchrun command); a no-op without one, or when a
    rank was lost (:func:`lost_peer`: leaving a broken group can block or abort)."""
    if world_size() > 1 and not _broken:
        dist.destroy_process_group()


#: What a collective says when another rank's process is gone (gloo, NCCL, the store).
_PEER_GONE = ("connection closed by peer", "connection reset by peer", "broken pipe",
              "communicator was aborted", "timed out", "timeout", "connection refused")
_broken = False  # set by lost_peer: the group lost a rank and cannot be left cleanly


def lost_peer(exc: BaseException) -> str | None:
    """Under torchrun: a short reason when ``exc`` says that another rank of this run is gone
    (a collective failed on a closed connection or timed out), else None."""
    global _broken
    if not launched() or not isinstance(exc, RuntimeError):
        return None
    text = " ".join(str(exc).split())
    found = next((s for s in _PEER_GONE if s in text.lower()), None)
    if found is None and not isinstance(exc, getattr(dist, "DistError", ())):
        return None
    _broken = True
    return found or type(exc).__name__


def _comm_device() -> torch.device:
    """Where collective tensors live: the current GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it can be sent to the other ranks, else a RuntimeError with its text."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001 - any unpicklable exception is replaced
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _broadcast(obj: Any) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    return box[0]


def _run_on_main(fn: Callable[..., T], args: tuple, kwargs: dict, share: bool) -> T | None:
    global _alone
    if world_size() == 1:
        return fn(*args, **kwargs)
    result: Any = None
    error: BaseException | None = None
    if is_main():
        _alone = True
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error reaches every rank
            error = exc
        finally:
            _alone = False
    sent = _broadcast((_portable(error) if error is not None else None,
                       result if share else None))
    if error is not None:
        raise error
    if sent[0] is not None:
        raise sent[0] from None
    return result if is_main() else sent[1]


def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` computed on rank 0 and its result broadcast to every rank
    (a decision made once); an error raised by ``fn`` is raised on every rank."""
    return _run_on_main(fn, args, kwargs, share=True)  # type: ignore[return-value]


def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank: a decision every rank computed from the same
    inputs is taken from rank 0, so that the ranks cannot disagree (e.g. by a rounding)."""
    if world_size() == 1:
        return value
    return _broadcast(value if is_main() else None)


def main_only(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)`` on rank 0 only (a file written once): its result there,
    ``None`` on the other ranks, which wait for it; an error is raised on every rank."""
    return _run_on_main(fn, args, kwargs, share=False)


def main_first(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` on rank 0 first (e.g. generate a world), then on the other ranks (which find
    it made and read it): the classic "rank 0 prepares the files" step."""
    if world_size() == 1:
        return fn(*args, **kwargs)
    out = main_only(fn, *args, **kwargs)
    return out if is_main() else fn(*args, **kwargs)  # type: ignore[return-value]


@contextlib.contextmanager
def main_context(factory: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[None]:
    """Hold ``factory()`` (e.g. a folder lock) on rank 0 only, for the whole block; the
    other ranks wait until rank 0 holds it, and get its error if it cannot."""
    if world_size() == 1:
        with factory():
            yield
        return
    with contextlib.ExitStack() as stack:
        main_only(lambda: stack.enter_context(factory()) and None)
        yield


def agree(value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. whether a loss is finite decides whether
    every rank skips the batch: they must not disagree)."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_comm_device())
    dist.broadcast(t, src=0)
    return float(t.item())


def shard_bounds(n: int) -> tuple[int, int]:
    """``(start, stop)``: this rank's contiguous share of ``n`` items (sizes differ by at
    most one; ``(0, n)`` without torchrun)."""
    size, r = world_size(), rank()
    base, extra = divmod(int(n), size)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def gather_rows(local: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows whose contiguous shares (:func:`shard_bounds`) the ranks hold, in order,
    on every rank (float32)."""
    if world_size() == 1:
        return local
    size = world_size()
    longest = -(-int(n) // size)
    dev = _comm_device()
    mine = torch.zeros((longest, local.shape[1]), dtype=torch.float32, device=dev)
    mine[: len(local)] = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32))
    parts = [torch.empty_like(mine) for _ in range(size)]
    dist.all_gather(parts, mine)
    rows = []
    for r, part in enumerate(parts):
        base, extra = divmod(int(n), size)
        rows.append(part[: base + (1 if r < extra else 0)].cpu().numpy())
    return np.concatenate(rows)


def gather_batch(x: Any) -> Any:
    """The whole batch's tensor(s) (``x`` may be a tuple) from every rank's share, in rank
    order; this rank's own slice keeps its gradient, the others' are constants. Every rank
    then computes the loss of the whole batch; see :func:`loss_scale`."""
    if world_size() == 1 or x is None:  # None: e.g. the logits of a net without classifier
        return x
    if isinstance(x, tuple):
        return tuple(gather_batch(t) for t in x)
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank()] = x
    return torch.cat(parts)


def loss_scale() -> int:
    """N: each rank back-propagates N x the whole batch's loss, DDP averages the N gradients
    (each the part through that rank's share), and the result is the gradient of the loss."""
    return world_size()


class ShardedBatches:
    """This rank's contiguous share of every batch of a batch sampler (all ranks draw the
    same batches: same sampler, same seed); ``len`` and ``set_epoch`` are the sampler's."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        size = world_size()
        if sampler.batch_size % size:
            raise TCULError(
                f"a batch of {sampler.batch_size} images cannot be split evenly over {size} "
                "ranks: choose batch_ids x batch_instances divisible by the number of "
                "processes (torchrun --nproc_per_node)")

    def set_epoch(self, epoch: int) -> None:
        """The sampler's :meth:`set_epoch`."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            start, stop = shard_bounds(len(batch))
            yield batch[start:stop]


def batches(sampler: Any) -> Any:
    """``sampler`` itself, or its :class:`ShardedBatches` under torchrun."""
    return sampler if world_size() == 1 else ShardedBatches(sampler)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself, or under torchrun the same module in
    :class:`~torch.nn.parallel.DistributedDataParallel` (which first copies rank 0's weights
    to every rank); on CUDA its BatchNorm layers become ``SyncBatchNorm`` first."""
    if world_size() == 1:
        return model
    if device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [device.index if device.index is not None else torch.cuda.current_device()]
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return nn.parallel.DistributedDataParallel(model)


def broadcast_buffers(model: nn.Module) -> nn.Module:
    """Rank 0's buffers (BatchNorm's running statistics) copied into ``model`` on every rank,
    after training: DDP copies them at the start of each forward, but on a CPU every rank
    then updates them with its own share, and extraction needs one model on all ranks."""
    if world_size() == 1:
        return model
    with torch.no_grad():
        for t in model.buffers():
            buf = t.detach().to(_comm_device())
            dist.broadcast(buf, src=0)
            t.copy_(buf)
    return model
