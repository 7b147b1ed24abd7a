"""Multi-GPU / multi-node training with PyTorch DistributedDataParallel under ``torchrun``.

Launch (one process per GPU; ``--nnodes``/``--rdzv-endpoint`` for several machines)::

    torchrun --standalone --nproc_per_node=4 -m spinect_core.cli.train DATA -o OUT

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them (``init_method="env://"``) and picks the ``nccl`` backend on
CUDA, ``gloo`` otherwise (CPU, also for tests). Each rank draws its own patches from a generator
seeded with ``(seed, rank)`` (the role a ``DistributedSampler`` plays for a map-style dataset), so
the effective batch is ``world_size * batch_size``; DDP averages the gradients. Only rank 0
validates, logs, writes checkpoints and the final weights; the other ranks wait at a barrier.
BatchNorm statistics are those of rank 0 (DDP broadcasts buffers from rank 0 every step).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["DistContext", "is_distributed_env", "init_distributed", "wrap_model",
           "gather_objects", "broadcast_object", "any_rank", "barrier", "cleanup",
           "SINGLE_PROCESS"]


@dataclass(frozen=True, kw_only=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes
    ----------
    rank : int
        Global rank (0 = the one that writes).
    local_rank : int
        Rank on this machine (its GPU index).
    world_size : int
        Number of processes.
    backend : str
        ``"nccl"``, ``"gloo"`` or ``""`` (not distributed).
    device : str
        The device this rank trains on (``"cuda:<local_rank>"`` under nccl).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = ""
    device: str = "auto"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE_PROCESS = DistContext()


def is_distributed_env() -> bool:
    """True when started by ``torchrun`` with more than one process (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def init_distributed(*, device: str = "auto", timeout_s: float = 7200.0) -> DistContext:
    """Join the process group that ``torchrun`` set up.

    Parameters
    ----------
    device : str
        ``"auto"``: CUDA (one GPU per local rank, backend nccl) when available, else the CPU
        (backend gloo). ``"cpu"`` forces gloo on the CPU.
    timeout_s : float
        Collective timeout: rank 0 validates while the others wait at a barrier, which on a large
        validation set takes minutes (the default of 10 minutes for nccl could abort the run).

    Returns
    -------
    DistContext
    """
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ["WORLD_SIZE"])
    use_cuda = torch.cuda.is_available() and str(device).lower() in ("auto", "cuda") or \
        str(device).lower().startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        backend, dev = "nccl", f"cuda:{local_rank}"
    else:
        backend, dev = "gloo", "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank,
                                world_size=world, timeout=_dt.timedelta(seconds=timeout_s))
    return DistContext(rank=rank, local_rank=local_rank, world_size=world, backend=backend,
                       device=dev)


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` unchanged."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if ctx.backend == "nccl":
        return DistributedDataParallel(model, device_ids=[ctx.local_rank],
                                       output_device=ctx.local_rank)
    return DistributedDataParallel(model)


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` (JSON-like), in rank order; ``[obj]`` when not distributed."""
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when ``flag`` is true on any rank (a one-element all-reduce).

    Used to stop all ranks together when rank 0's progress callback cancels: a rank that left
    the loop alone would leave the others blocked in the next gradient all-reduce.
    """
    if not ctx.distributed:
        return bool(flag)
    import torch.distributed as dist

    device = ctx.device if ctx.backend == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(ctx: DistContext) -> None:
    """Wait for all ranks (no-op when not distributed)."""
    if ctx.distributed:
        import torch.distributed as dist

        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.local_rank])
        else:
            dist.barrier()


def cleanup(ctx: DistContext) -> None:
    """Final barrier and ``destroy_process_group`` (no-op when not distributed)."""
    if ctx.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            barrier(ctx)
            dist.destroy_process_group()
