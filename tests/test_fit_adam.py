"""ganfit.fitting.adam.Adam moves parameters exactly as torch.optim.Adam does (the fit's results stay the same)."""

from __future__ import annotations

import subprocess
import sys

import torch

from ganfit.fitting.adam import Adam


def _groups(seed: int) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(1, 100), (1, 53), (1, 3), (1, 512), (2, 3, 8, 8)]
    tensors = [torch.randn(shape, generator=generator) for shape in shapes]
    return [
        {"params": tensors[:2], "lr": 0.05, "name": "shape"},
        {"params": tensors[2:3], "lr": 0.002, "name": "rotation"},
        {"params": tensors[3:], "lr": 0.02, "name": "texture"},
    ]


def test_adam_matches_torch_optim_adam_bit_for_bit() -> None:
    ours_groups, torch_groups = _groups(0), _groups(0)
    ours = Adam(ours_groups, betas=(0.9, 0.999))
    reference = torch.optim.Adam(torch_groups, betas=(0.9, 0.999))
    generator = torch.Generator().manual_seed(1)
    for step in range(40):
        ours.zero_grad(set_to_none=True)
        reference.zero_grad(set_to_none=True)
        for a_group, b_group in zip(ours_groups, torch_groups, strict=True):
            for index, (a, b) in enumerate(zip(a_group["params"], b_group["params"], strict=True)):
                if a_group["name"] == "shape" and index == 1 and step < 10:
                    continue  # no gradient: the tensor, its moments and its step count stay as they are
                grad = torch.randn(a.shape, generator=generator) * (1.0 + step)
                a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        reference.step()
        for a_group, b_group in zip(ours_groups, torch_groups, strict=True):
            for a, b in zip(a_group["params"], b_group["params"], strict=True):
                assert torch.equal(a, b), f"step {step}: {a_group['name']} differs"
    moved = ours_groups[0]["params"][1]
    assert ours.state[moved].step == float(reference.state[torch_groups[0]["params"][1]]["step"]) == 30.0


def test_adam_steps_leave_torch_dynamo_unimported() -> None:
    """What the optimiser exists for: its steps do not import torch._dynamo (torch.optim.Adam.step does)."""
    code = (
        "import sys, torch\n"
        "from ganfit.fitting.adam import Adam\n"
        "p = torch.zeros(3, requires_grad=True)\n"
        "opt = Adam([{'params': [p], 'lr': 0.1}])\n"
        "(p - 1).square().sum().backward(); opt.step(); opt.zero_grad()\n"
        "assert p.grad is None and float(p[0]) > 0\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
