"""The skin mask of the dataset builder; the code lives in :mod:`ganfit.fitting.skin_mask` (one layer down, so the
fitting's detail texture can use it too). Re-exported here unchanged."""

from ganfit.fitting.skin_mask import (
    MEDIAPIPE_FACE_OVAL,
    MEDIAPIPE_INNER_LIPS,
    MEDIAPIPE_LEFT_EYE,
    MEDIAPIPE_RIGHT_EYE,
    SkinMaskConfig,
    skin_mask,
)

__all__ = [
    "MEDIAPIPE_FACE_OVAL",
    "MEDIAPIPE_INNER_LIPS",
    "MEDIAPIPE_LEFT_EYE",
    "MEDIAPIPE_RIGHT_EYE",
    "SkinMaskConfig",
    "skin_mask",
]
