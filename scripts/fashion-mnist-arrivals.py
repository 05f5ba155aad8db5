"""Write newly arrived data for the demo run: Fashion-MNIST training images it never trained on.

    .venv/bin/python scripts/fashion-mnist-arrivals.py data/arrivals.npz

The .npz (``x`` uint8 N x 28 x 28, ``y`` class names, "" for no label) holds 200 new images of
each of two known classes (Sandal, Bag), 200 of a class the demo has never seen, "Negative"
(colour-inverted images of every class: the same products photographed as negatives), and 200
unlabelled images. They are drawn, with seed 0, from the training images outside the demo's
subset, so none of them was trained on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from kaizen.api import resolve_config
from kaizen.data.catalog import load_dataset

PER_GROUP = 200


def main(out: Path) -> None:
    config = resolve_config("demo")
    used = load_dataset(config.data, config.seed)
    full = load_dataset(config.data.model_copy(update={"train_per_class": None}), config.seed)
    seen = {image.tobytes() for image in used.train.images.numpy()}
    images, labels = full.train.images.numpy()[:, 0], full.train.labels.numpy()
    unused = np.array([i for i, image in enumerate(images) if image.tobytes() not in seen])
    rng = np.random.default_rng(0)
    names = full.class_names
    chosen_x, chosen_y = [], []
    for name in ("Sandal", "Bag"):
        pool = unused[labels[unused] == names.index(name)]
        rows = rng.choice(pool, PER_GROUP, replace=False)
        chosen_x.append(images[rows])
        chosen_y += [name] * PER_GROUP
        unused = np.setdiff1d(unused, rows)
    for name, transform in (("Negative", lambda x: 255 - x), ("", lambda x: x)):
        rows = rng.choice(unused, PER_GROUP, replace=False)
        chosen_x.append(transform(images[rows]))
        chosen_y += [name] * PER_GROUP
        unused = np.setdiff1d(unused, rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, x=np.concatenate(chosen_x), y=np.array(chosen_y))
    print(f"{len(chosen_y)} images written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/arrivals.npz"))
