"""Global gradient norm of each optimiser group at every step of a run (LARS only).

    python benchmarks/gradient_norms.py PRESET THREADS OUT_DIR [key=value ...]

Prints the steps where a norm is above 50 or not finite, and every 27th step, as
``step [LARS-scaled weights, BatchNorm and bias parameters, classifier]``. docs/results.md
("VICReg stability") used it on ``fmnist-vicreg-cassle`` with 2 threads.
"""

from __future__ import annotations

import math
import sys

import torch

import kaizen
from kaizen.engine import optim
from kaizen.errors import KaizenError


def main(argv: list[str]) -> int:
    preset, threads, out_dir, *overrides = argv
    records: list[list[float]] = []
    step = optim.LARS.step

    def recording_step(self: optim.LARS, closure: None = None) -> None:
        norms = []
        for group in self.param_groups:
            grads = [p.grad.norm() for p in group["params"] if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0)
        records.append(norms)
        step(self, closure)

    optim.LARS.step = recording_step  # type: ignore[method-assign]
    common = ["data.train_per_class=600", "data.test_per_class=300", "train.epochs=6"]
    settings = [*common, "train.progress=false", f"train.num_threads={threads}", "eval.probes=[]"]
    try:
        kaizen.run(preset, out_dir, [*settings, *overrides], force=True)
        print("finished")
    except KaizenError as error:
        print(f"stopped: {error}")
    for index, norms in enumerate(records):
        if index % 27 == 0 or any(not math.isfinite(x) or x > 50 for x in norms):
            print(index, [f"{x:.3g}" for x in norms])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
