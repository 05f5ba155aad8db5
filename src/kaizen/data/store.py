"""Where the training images live: on the training device when they fit, else pinned host memory."""

from __future__ import annotations

import torch
from torch import Tensor


class ImageStore:
    """uint8 images (N, C, H, W) that hand out batches on the training device.

    On a GPU the whole dataset is copied to device memory when it takes at most
    ``max_device_fraction`` of the free memory; batches are then index gathers on the device.
    Otherwise it stays in pinned host memory: indices are drawn on the host, gathered there and
    copied without blocking, so the next batch is assembled while the device computes the
    current one. On a CPU the images are used where they are.

    Attributes:
        index_device: where batch indices must be drawn (the device of the images).
        resident: whether the images are in the training device's memory.
    """

    def __init__(
        self, images: Tensor, device: torch.device, max_device_fraction: float = 0.5
    ) -> None:
        self.device = device
        fits = True
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            fits = images.numel() * images.element_size() <= max_device_fraction * free
        self.resident = fits
        self.images = images.to(device) if fits else images.pin_memory()
        self.index_device = self.images.device

    def __len__(self) -> int:
        return len(self.images)

    def gather(self, indices: Tensor) -> Tensor:
        """Images at ``indices`` (on :attr:`index_device`) as a (B, C, H, W) device tensor."""
        batch = self.images[indices]
        if self.resident:
            return batch
        return batch.pin_memory().to(self.device, non_blocking=True)
