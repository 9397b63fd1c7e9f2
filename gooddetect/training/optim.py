"""Adam, written out: the dense variant for the networks' weights, and a lazy one for the LSTM's k-mer input table.

torch.optim is not used: its first optimizer imports torch._dynamo, seconds of start-up for every training run.
`ddp` arguments are training.distributed.Distributed (rank, world size, device) and are only read.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.distributed as dist


class _AdamSteps:
    """The step count, hyper-parameters and bias corrections both variants share."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0

    def _step_size(self) -> float:
        return self.lr / (1 - self.betas[0] ** self.steps)

    def _denominator(self, exp_avg_sq: torch.Tensor) -> torch.Tensor:
        return (exp_avg_sq / (1 - self.betas[1] ** self.steps)).sqrt().add_(self.eps)


class Adam(_AdamSteps):
    """Adam over dense parameters, as torch.optim.Adam with its defaults (no weight decay, no AMSGrad). A parameter
    without a gradient is left alone (its moments too), but the bias corrections count every step."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(lr, betas, eps)
        self.params = list(params)
        self.exp_avg = [torch.zeros_like(p, requires_grad=False) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, requires_grad=False) for p in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        for param, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
            grad = param.grad
            if grad is None:
                continue
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            param.addcdiv_(exp_avg, self._denominator(exp_avg_sq), value=-self._step_size())

    def state_dict(self) -> dict:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps, "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        for mine, saved in zip((*self.exp_avg, *self.exp_avg_sq), (*state["exp_avg"], *state["exp_avg_sq"])):
            mine.copy_(saved)
        self.steps, self.lr = int(state["steps"]), float(state["lr"])


class KmerTableAdam(_AdamSteps):
    """Adam for the k-mer input table that costs only the rows a batch uses, with dense Adam's result. Rows are read
    with index_select (faster than `table[rows]` on the CPU).

    A row a batch does not use has a zero gradient, so dense Adam would still move it by its decaying momentum every
    step. Here those moves are deferred: when a row is next looked up (and at `catch_up`, before every validation),
    the steps it missed are applied at once, in closed form (a geometric series, at the current learning rate and bias
    corrections). The other rows cost nothing, so a step costs O(rows used) instead of O(table).

    `lookup` serves the forward pass: it copies the batch's distinct rows into a small leaf tensor, whose dense
    gradient `step` applies. Under DDP the ranks' rows and gradients are gathered and averaged first, as DDP
    averages the other gradients. The padding row (the last: 'no k-mer') is never updated."""

    def __init__(self, table: torch.nn.Parameter, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(lr, betas, eps)
        self.table = table
        self.exp_avg = torch.zeros_like(table, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(table, requires_grad=False)
        self.updated = torch.zeros(len(table), dtype=torch.long, device=table.device)  # steps each row is up to date with
        self.rows = self.rows_in_use = None

    def lookup(self, tokens: torch.Tensor) -> torch.Tensor:
        self.rows, inverse = torch.unique(tokens, return_inverse=True)
        self._bring_up_to_date(self.rows[self.rows != len(self.table) - 1])
        self.rows_in_use = self.table.detach().index_select(0, self.rows).requires_grad_(True)
        return self.rows_in_use[inverse]

    def step(self, ddp) -> None:
        rows, grads = self.rows, self.rows_in_use.grad
        if ddp.world > 1:
            rows, grads = _gathered_rows(rows, grads, ddp)
        keep = rows != len(self.table) - 1
        rows, grads = rows[keep], grads[keep]
        self._bring_up_to_date(rows)  # other ranks' rows
        self.steps += 1
        beta1, beta2 = self.betas
        exp_avg = self.exp_avg.index_select(0, rows).mul_(beta1).add_(grads, alpha=1 - beta1)
        exp_avg_sq = self.exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(grads, grads, value=1 - beta2)
        self.exp_avg[rows], self.exp_avg_sq[rows] = exp_avg, exp_avg_sq
        with torch.no_grad():
            self.table[rows] = self.table.index_select(0, rows) - self._step_size() * exp_avg / self._denominator(
                exp_avg_sq)
        self.updated[rows] = self.steps

    def catch_up(self) -> None:
        """Bring every row up to date (apply the momentum steps each row missed since it was last used)."""
        self._bring_up_to_date(torch.arange(len(self.table) - 1, device=self.table.device))

    def _bring_up_to_date(self, rows: torch.Tensor) -> None:
        self._coast(rows, self.steps - self.updated.index_select(0, rows))
        self.updated[rows] = self.steps

    def _coast(self, rows: torch.Tensor, missed: torch.Tensor) -> None:
        """Apply `missed` zero-gradient Adam steps to `rows`: moments decay by beta**k and the weights move by
        sum_j beta1**j m / sqrt(beta2**j v) = m / sqrt(v) * r (1 - r**k) / (1 - r), r = beta1 / sqrt(beta2)."""
        if self.steps == 0 or not bool((missed > 0).any()):
            return
        beta1, beta2 = self.betas
        ratio = beta1 / math.sqrt(beta2)
        k = missed.to(self.table.dtype).unsqueeze(1)
        exp_avg, exp_avg_sq = self.exp_avg.index_select(0, rows), self.exp_avg_sq.index_select(0, rows)
        series = ratio * (1 - ratio**k) / (1 - ratio)
        with torch.no_grad():
            self.table[rows] = self.table.index_select(0, rows) - self._step_size() * series * exp_avg / \
                self._denominator(exp_avg_sq)
        self.exp_avg[rows] = exp_avg * beta1**k
        self.exp_avg_sq[rows] = exp_avg_sq * beta2**k

    def state_dict(self) -> dict:
        """Everything a resumed run needs, the learning rate included: rows missed by the next batch coast at the
        learning rate of the last step (a fresh optimizer would coast them at the initial one)."""
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "updated": self.updated, "steps": self.steps,
                "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.updated.copy_(state["updated"])
        self.steps, self.lr = int(state["steps"]), float(state["lr"])




def _gathered_rows(rows: torch.Tensor, grads: torch.Tensor, ddp) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's (rows, gradients), summed per row and divided by the number of ranks."""
    sizes = [torch.zeros(1, dtype=torch.long, device=rows.device) for _ in range(ddp.world)]
    dist.all_gather(sizes, torch.tensor([len(rows)], device=rows.device))
    most = int(max(size.item() for size in sizes))
    padded_rows = torch.full((most,), -1, dtype=rows.dtype, device=rows.device)
    padded_rows[:len(rows)] = rows
    padded_grads = torch.zeros((most, grads.shape[1]), dtype=grads.dtype, device=grads.device)
    padded_grads[:len(rows)] = grads
    all_rows = [torch.empty_like(padded_rows) for _ in range(ddp.world)]
    all_grads = [torch.empty_like(padded_grads) for _ in range(ddp.world)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_grads, padded_grads)
    every_row, every_grad = torch.cat(all_rows), torch.cat(all_grads)
    valid = every_row >= 0
    merged, inverse = torch.unique(every_row[valid], return_inverse=True)
    summed = torch.zeros((len(merged), grads.shape[1]), dtype=grads.dtype, device=grads.device)
    summed.index_add_(0, inverse, every_grad[valid])
    return merged, summed / ddp.world
