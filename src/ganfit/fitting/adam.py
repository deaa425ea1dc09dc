"""Adam for the fit's parameter tensors, without ``torch.optim``.

``torch.optim.Adam.step`` imports ``torch._dynamo`` on its first call (its graph-break guards), about 1.1 s of CPU
on the project's 2-core machine, 5-10 % of the embedded demo's whole run, for a compiler the fit never uses. This
class is torch's single-tensor Adam (what ``torch.optim.Adam`` runs for CPU tensors: no weight decay, amsgrad or
maximize) operation for operation, so it moves the parameters bit for bit as ``torch.optim.Adam`` does
(``tests/test_fit_adam.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class _Moments:
    """Per-tensor state: steps taken (float, like torch's step tensor), first and second moment estimates."""

    step: float
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor


class Adam:
    """Adam over parameter groups ``[{"params": [tensors], "lr": float, ...}]`` (extra keys are kept).

    Args:
        groups: the parameter groups, each with its learning rate.
        betas: (beta1, beta2), the moment decay rates.
        eps: added to the denominator's square root.

    Like ``torch.optim.Adam``: a tensor whose ``grad`` is None at a step is left alone (its moments and step count
    too); ``zero_grad`` sets the gradients to None.
    """

    def __init__(
        self, groups: Iterable[dict[str, Any]], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.param_groups = [{**group, "params": list(group["params"])} for group in groups]
        self.betas = betas
        self.eps = eps
        self.state: dict[torch.Tensor, _Moments] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=False``: zero it in place)."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        beta1, beta2 = self.betas
        for group in self.param_groups:
            lr = float(group["lr"])
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                state = self.state.get(param)
                if state is None:
                    zeros = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state = self.state[param] = _Moments(0.0, zeros, zeros.clone())
                state.step += 1.0
                state.exp_avg.lerp_(grad, 1 - beta1)
                state.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1**state.step
                bias_correction2 = 1 - beta2**state.step
                step_size = lr / bias_correction1
                denom = (state.exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
                param.addcdiv_(state.exp_avg, denom, value=-step_size)
