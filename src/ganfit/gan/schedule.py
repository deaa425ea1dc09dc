"""ProGAN's growing schedule as a pure function of the number of real images shown (kimg)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GrowthSchedule"]


@dataclass(frozen=True)
class GrowthSchedule:
    """Stabilise ``stable_kimg`` at the start level, then per new level fade in over ``fade_kimg`` and stabilise.

    ``progress(images_seen) -> (level, alpha)``: level 0 is 4x4; ``alpha`` ramps linearly 0 -> 1 during a fade and
    is 1 otherwise. After the last fade the target level stays at ``alpha = 1`` forever.
    """

    start_level: int  # level training starts at (0 = 4x4, as the paper)
    max_level: int  # target level (log2(resolution) - 2)
    stable_kimg: float  # thousands of real images per stabilisation phase (paper: 600)
    fade_kimg: float  # thousands of real images per fade-in phase (paper: 600)

    def __post_init__(self) -> None:
        if not 0 <= self.start_level <= self.max_level:
            raise ValueError(f"start level {self.start_level} must be in [0, {self.max_level}]")
        if self.stable_kimg < 0 or self.fade_kimg <= 0:
            raise ValueError("stable_kimg must be >= 0 and fade_kimg > 0")

    def progress(self, images_seen: int) -> tuple[int, float]:
        """Growing level and fade-in alpha after ``images_seen`` real images."""
        kimg = images_seen / 1000.0
        if kimg < self.stable_kimg or self.start_level == self.max_level:
            return self.start_level, 1.0
        t = kimg - self.stable_kimg
        period = self.fade_kimg + self.stable_kimg
        step = int(t // period)
        level = self.start_level + 1 + step
        if level > self.max_level:
            return self.max_level, 1.0
        alpha = min((t - step * period) / self.fade_kimg, 1.0)
        return level, alpha

    def kimg_to_reach_target(self) -> float:
        """kimg after which the target level is fully faded in."""
        return (self.max_level - self.start_level) * (self.fade_kimg + self.stable_kimg)
