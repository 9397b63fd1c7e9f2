"""torchrun: joining the process group, and what each rank needs to know of it (rank, world size, device)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    """This process's place in a torchrun launch (rank 0 of 1 without one)."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def agreed_signal(self, signum: int | None) -> int:
        """The stop signal received by any rank (0: none), agreed on by all ranks."""
        signum = signum or 0
        if self.world > 1:
            flag = torch.tensor([signum], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        return signum


@contextlib.contextmanager
def distributed(device: str) -> Iterator[Distributed]:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU), leaving it afterwards if
    this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield Distributed(torch.device(device))
        return
    place = torch.device(device)
    if place.type == "cuda":
        place = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(place)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if place.type == "cuda" else "gloo")
    try:
        yield Distributed(place, dist.get_rank(), dist.get_world_size())
    finally:
        if owns_group:
            dist.destroy_process_group()
