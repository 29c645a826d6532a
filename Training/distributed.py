"""Process-group setup for one process, torchrun, or SLURM's srun without torchrun.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT. Under a plain
``srun`` the SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID variables give the same, with
the master address taken from MASTER_ADDR (export it in the batch script) or the node
srun was launched from, and the port from MASTER_PORT or else from the job id
(``default_master_port``), so two jobs sharing a node do not both take 29500. NCCL on
GPUs, gloo on CPU.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_gather_floats(self, values: list[float]) -> list[list[float]]:
        """Every rank's ``values`` (same length on every rank), on every rank."""
        if not self.enabled:
            return [list(values)]
        tensor = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        gathered = [torch.zeros_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(gathered, tensor)
        return [g.cpu().tolist() for g in gathered]

    def mean(self, value: float) -> float:
        return self.sum_floats([value])[0] / self.world_size

    def sum_floats(self, values: list[float]) -> list[float]:
        """Element-wise sums over all ranks, in one all-reduce."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor)
        return tensor.cpu().tolist()

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def environment_ranks(env: dict[str, str] | None = None) -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's variables, else SLURM's, else a single process."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0))
    return 0, 1, 0


def default_master_port(env: dict[str, str] | None = None) -> int:
    """MASTER_PORT, else a port in 20000-29999 from SLURM_JOB_ID (the same on every node of the job),
    else 29500."""
    env = os.environ if env is None else env
    if env.get("MASTER_PORT"):
        return int(env["MASTER_PORT"])
    if env.get("SLURM_JOB_ID", "").isdigit():
        return 20000 + int(env["SLURM_JOB_ID"]) % 10000
    return 29500


def initialise(device_preference: str = "auto") -> DistributedContext:
    rank, world_size, local_rank = environment_ranks()
    use_cuda = torch.cuda.is_available() and device_preference != "cpu"
    # srun --gpus-per-task=1 shows each process only its own GPU, as cuda:0
    device = torch.device("cuda", local_rank % torch.cuda.device_count()) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed patch size: pick the fastest kernels once, as nnU-Net does
    if world_size > 1 and not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
        os.environ["MASTER_PORT"] = str(default_master_port())
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(world_size))
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
            timeout=datetime.timedelta(minutes=30),
            **({"device_id": device} if use_cuda else {}),
        )
    return DistributedContext(rank, world_size, local_rank, device)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
