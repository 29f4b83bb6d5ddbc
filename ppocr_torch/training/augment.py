"""Training augmentation of text lines, through kornia (the optional ``train`` extra).

:class:`LineAugment` runs, with probability ``prob`` per sample (PaddleOCR's ``RecAug`` uses 0.4), a chain of
transforms each drawn again with its own probability:

========================  =====  =========================================================================
transform                 p      range
========================  =====  =========================================================================
perspective               0.5    corners moved by up to ``0.2`` of the size (``RandomPerspective``)
affine                    0.5    rotation +-2 deg, x-shear +-8 deg, scale 0.9-1.05, shift 2 % x / 5 % y
colour jitter             0.5    brightness, contrast, saturation +-30 %, hue +-0.05 (``ColorJitter``)
Gaussian blur             0.3    5x5 kernel, sigma 0.1-1.2
Gaussian noise            0.3    sigma 0.03 on the 0-1 scale
========================  =====  =========================================================================

Geometric transforms fill the area they uncover with the median colour of the image border (the paper or sign
background), not black. Everything runs on the raw line before the resize, with torch's random generator, so a
seeded run is reproducible. Validation never augments.
"""

from __future__ import annotations

import numpy as np

from ._deps import require

__all__ = ["LineAugment"]


class LineAugment:
    """Random blur, noise, perspective/affine warps and colour jitter for uint8 BGR text lines.

    Args:
        prob: probability that a sample is augmented at all.
        geometric, color, blur, noise: switch the groups of transforms on or off.

    Raises:
        TrainingDependencyError: kornia is not installed.
    """

    def __init__(self, prob: float = 0.4, *, geometric: bool = True, color: bool = True, blur: bool = True,
                 noise: bool = True):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be within [0, 1], got {prob!r}")
        K = require("kornia.augmentation", "training augmentation")
        self.prob = float(prob)
        geo, photo = [], []
        if geometric:
            geo += [K.RandomPerspective(distortion_scale=0.2, p=0.5),
                    K.RandomAffine(degrees=2.0, translate=(0.02, 0.05), scale=(0.9, 1.05), shear=(-8.0, 8.0), p=0.5)]
        if color:
            photo.append(K.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=0.5))
        if blur:
            photo.append(K.RandomGaussianBlur(kernel_size=(5, 5), sigma=(0.1, 1.2), p=0.3))
        if noise:
            photo.append(K.RandomGaussianNoise(mean=0.0, std=0.03, p=0.3))
        self.geometric = K.AugmentationSequential(*geo) if geo else None
        self.photometric = K.AugmentationSequential(*photo) if photo else None

    def __call__(self, img_bgr: np.ndarray) -> np.ndarray:
        import torch

        if self.prob <= 0.0 or float(torch.rand(())) >= self.prob:
            return img_bgr
        with torch.no_grad():
            # HWC BGR uint8 -> 1x3xHxW RGB float in [0, 1] (kornia's colour transforms expect RGB)
            x = torch.from_numpy(np.ascontiguousarray(img_bgr[:, :, ::-1])).permute(2, 0, 1)[None].float() / 255.0
            if self.geometric is not None:
                # warps fill with zeros; shifting by the background colour first makes the fill that colour
                border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)
                fill = border.median(dim=-1).values[..., None, None]
                x = self.geometric(x - fill) + fill
            if self.photometric is not None:
                x = self.photometric(x)
            x = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        return np.ascontiguousarray(x[0].permute(1, 2, 0).numpy()[:, :, ::-1])
