"""GAN losses: WGAN-GP with the drift term (ProGAN's default) and the non-saturating loss with R1.

Every function takes the critic as a callable ``score(images [B, 3, R, R]) -> [B, 1]`` (already bound to the current
level/alpha), so the same code runs inside or outside DDP. Returns scalar float32 tensors and a dict of detached
statistics for logging.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["LOSSES", "d_loss", "g_loss"]

LOSSES = ("wgan_gp", "ns_r1")


def _grad_wrt(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(outputs=outputs.sum(), inputs=inputs, create_graph=True, only_inputs=True)
    return grad


def d_loss(
    kind: str,
    score: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    gp_weight: float = 10.0,
    gp_target: float = 1.0,
    drift_weight: float = 1e-3,
    r1_gamma: float = 10.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Discriminator loss.

    Args:
        kind: ``"wgan_gp"`` (critic loss ``D(fake) - D(real) + gp_weight * (|grad D(x_hat)| - t)^2 / t^2
            + drift_weight * D(real)^2`` at random interpolates ``x_hat``, as ProGAN) or ``"ns_r1"``
            (``softplus(D(fake)) + softplus(-D(real)) + r1_gamma / 2 * |grad D(real)|^2``).
        score: critic callable ``[B, 3, R, R] -> [B, 1]``.
        real, fake: ``[B, 3, R, R]`` float32 in [-1, 1]; ``fake`` must be detached from the generator.
    """
    if kind not in LOSSES:
        raise ValueError(f"gan.loss must be one of {LOSSES}, got {kind!r}")
    stats: dict[str, torch.Tensor] = {}
    if kind == "wgan_gp":
        real_scores = score(real)
        fake_scores = score(fake)
        eps = torch.rand(real.shape[0], 1, 1, 1, dtype=real.dtype, device=real.device)
        mixed = torch.lerp(real, fake, eps).requires_grad_(True)
        grad = _grad_wrt(score(mixed), mixed)
        norm = grad.flatten(1).norm(dim=1)
        penalty = (norm - gp_target).square() / gp_target**2
        drift = real_scores.square().squeeze(1)
        loss = (fake_scores - real_scores).squeeze(1) + gp_weight * penalty + drift_weight * drift
        stats["wdist"] = (real_scores - fake_scores).mean().detach()
        stats["gp"] = penalty.mean().detach()
    else:
        real_in = real.detach().requires_grad_(True)
        real_scores = score(real_in)
        fake_scores = score(fake)
        grad = _grad_wrt(real_scores, real_in)
        r1 = grad.flatten(1).square().sum(dim=1)
        loss = F.softplus(fake_scores).squeeze(1) + F.softplus(-real_scores).squeeze(1) + 0.5 * r1_gamma * r1
        stats["r1"] = r1.mean().detach()
    stats["real_score"] = real_scores.mean().detach()
    stats["fake_score"] = fake_scores.mean().detach()
    return loss.mean(), stats


def g_loss(kind: str, score: Critic, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss: ``-D(fake)`` (WGAN) or ``softplus(-D(fake))`` (non-saturating); ``fake`` keeps its graph."""
    if kind not in LOSSES:
        raise ValueError(f"gan.loss must be one of {LOSSES}, got {kind!r}")
    scores = score(fake)
    if kind == "wgan_gp":
        return -scores.mean()
    return F.softplus(-scores).mean()
