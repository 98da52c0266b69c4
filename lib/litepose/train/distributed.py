"""Process-group setup for one process or many (``torchrun``), on CPU or GPUs.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
with ``WORLD_SIZE > 1`` the group is joined through the ``env://`` rendezvous: NCCL
(``DIST_BACKEND``) between GPUs, Gloo between CPU processes. Each process drives the GPU of its
local rank, or the CPU.

Faults: every collective gives up after ``DIST_TIMEOUT`` seconds, so a process whose peer died
or hangs fails instead of waiting forever, and ``torchrun`` then stops the whole group. A Gloo
peer that dies is usually noticed at once (its connection closes); NCCL's watchdog aborts the
communicator at the timeout.

Restarts: with ``--rdzv-backend c10d`` (and ``--standalone``) ``torchrun`` gives every restart
of the workers the same key-value store, while ``env://`` writes the process group's keys under
the same names each time. A restarted process could then read the address (Gloo) or NCCL id of
a process of the previous attempt, fail to connect, and cost another restart, as often as the
peers' start-up order decides. Each attempt therefore first agrees on a fresh namespace in the
store (``attempt_store``) and builds the process group inside it.
"""

import datetime
import inspect
import os
import time
import uuid
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError
from ..utils.device import resolve_device


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0

    def barrier(self):
        if self.distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def all_reduce_sum(self, tensor):
        """Sum of ``tensor`` over processes (in place; returned for chaining)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any_of(self, *flags):
        """For each flag, whether it holds on some process: one small all-reduce that every
        process must call, so that all of them take the same branch afterwards."""
        if not self.distributed:
            return tuple(bool(f) for f in flags)
        values = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.device)
        return tuple(bool(v > 0) for v in self.all_reduce_sum(values).tolist())

    def close(self):
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {value!r}") from None


_KEYS = "litepose/attempt"
_POLL_S = 0.02


def attempt_store(store, rank, world_size, timeout):
    """``store`` seen through a key prefix that this attempt's processes agree on and that no
    earlier attempt on the same ``store`` used; every process of the group calls it.

    Keys left by an earlier attempt can be read at any time, so only keys named by a fresh random
    value are trusted: process ``r > 0`` posts a fresh nonce under ``hello/r`` and waits for
    ``welcome/<nonce>``; process 0 draws the namespace and answers every ``hello`` it reads (a
    stale one too, harmlessly) until each process has confirmed under ``ready/<namespace>/r``.
    Gives up after ``timeout``."""
    timeout_s = timeout.total_seconds()
    if rank == 0:
        namespace = uuid.uuid4().hex
        answered = {}
        deadline = time.monotonic() + timeout_s
        waiting = set(range(1, world_size))
        while waiting:
            for peer in sorted(waiting):
                if store.check([f"{_KEYS}/ready/{namespace}/{peer}"]):
                    waiting.discard(peer)
                elif store.check([f"{_KEYS}/hello/{peer}"]):
                    nonce = store.get(f"{_KEYS}/hello/{peer}").decode()
                    if answered.get(peer) != nonce:
                        store.set(f"{_KEYS}/welcome/{nonce}", namespace)
                        answered[peer] = nonce
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"process(es) of rank {sorted(waiting)} did not join within "
                                   f"DIST_TIMEOUT {timeout_s:g} s")
            if waiting:
                time.sleep(_POLL_S)
    else:
        nonce = uuid.uuid4().hex
        store.set(f"{_KEYS}/hello/{rank}", nonce)
        try:
            namespace = store.get(f"{_KEYS}/welcome/{nonce}").decode()  # waits up to the store's timeout
        except dist.DistStoreError:
            raise TimeoutError(f"the process of rank 0 did not answer within DIST_TIMEOUT {timeout_s:g} s") from None
        store.set(f"{_KEYS}/ready/{namespace}/{rank}", "1")
    return dist.PrefixStore(f"{_KEYS}/{namespace}/", store)


def setup_distributed(cfg):
    """The process's ``DistContext``; joins the process group when started by ``torchrun``
    with more than one process."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = resolve_device(cfg.DEVICE)
    if device.type == "cuda":
        if world_size > 1 or device.index is None:
            # One GPU per process: the local rank's (an explicit cuda:N only applies to one process).
            index = local_rank if world_size > 1 else 0
            if index >= torch.cuda.device_count():
                raise ConfigError(f"process with local rank {local_rank} has no GPU "
                                  f"(only {torch.cuda.device_count()} present)")
            device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    if cfg.DIST_TIMEOUT <= 0:
        raise ConfigError(f"DIST_TIMEOUT must be a positive number of seconds, got {cfg.DIST_TIMEOUT}")
    context = DistContext(rank, world_size, local_rank, device)
    if world_size > 1:
        backend = cfg.DIST_BACKEND if device.type == "cuda" else "gloo"
        context.backend = backend
        if not dist.is_initialized():
            kwargs = {}
            if device.type == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters:
                kwargs["device_id"] = device  # binds NCCL to this GPU up front (PyTorch >= 2.3)
            timeout = datetime.timedelta(seconds=cfg.DIST_TIMEOUT)
            store, _, _ = next(dist.rendezvous("env://", rank, world_size, timeout=timeout))
            store = attempt_store(store, rank, world_size, timeout)
            dist.init_process_group(backend=backend, store=store, world_size=world_size, rank=rank,
                                    timeout=timeout, **kwargs)
    return context
