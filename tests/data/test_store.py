"""The image store hands out the images at the requested indices, wherever they live."""

from __future__ import annotations

import torch

from kaizen.data.store import ImageStore


def test_cpu_store_gathers_the_requested_images() -> None:
    images = torch.arange(5 * 1 * 2 * 2, dtype=torch.uint8).reshape(5, 1, 2, 2)
    store = ImageStore(images, torch.device("cpu"))
    assert store.resident and store.index_device == torch.device("cpu") and len(store) == 5
    batch = store.gather(torch.tensor([4, 0, 4]))
    assert torch.equal(batch, images[[4, 0, 4]])
