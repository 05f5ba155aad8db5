"""Where the continual classifier's gap to its own linear probe comes from, measured on a
finished run's final model (docs/classifier.md). Usage:

    python benchmarks/classifier/diagnose.py RUN_DIR... [--out FILE.json]

For each run: the final model (models/current), the labelled images the run keeps at its end
(the replay buffer of its newest checkpoint) and the last task's labelled images, and on the
final features:

- the classifier's accuracy over every seen class, the old classes' (tasks before the last)
  accuracy with the argmax over all seen classes and over the old classes only, the share of
  old classes' test images it gives to a class of the last task, and the mean norm of the last
  task's output weights over the earlier classes' (task-recency bias); the last task's
  classes' accuracy and the share of their test images given to an old class (the last
  task not learnt);
- the linear probe of the run's evaluation (eval.linear_*) fitted on every labelled training
  image of the seen classes (what the run's probe sees), on the images the run keeps at its
  end (replay buffer plus the last task's), and on a class-balanced share of those (the last
  task's classes cut to the buffer's images per class);
- the nearest-class-mean classifier (iCaRL, Rebuffi et al., CVPR 2017) on the kept images'
  L2-normalised features.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from kaizen.data.stream import load_scenario
from kaizen.eval.probes import linear_probe_predict
from kaizen.production.model import InferenceModel, load_model_folder
from kaizen.production.versions import resolve_model_folder
from kaizen.storage.rundir import read_run_config

BATCH = 512


@torch.no_grad()
def features_of(model: InferenceModel, images: Tensor) -> Tensor:
    """Backbone features (N, F) of uint8 images (N, C, H, W), a batch at a time."""
    return torch.cat([model.features(batch) for batch in images.split(BATCH)])


def kept_at_end(run_dir: Path) -> Tensor:
    """int64 (R,) training indices of the images the run keeps at its end (its newest
    checkpoint's replay buffer, the last task's images included)."""
    newest = max((run_dir / "checkpoints").glob("ckpt-*.pt"))
    method = torch.load(newest, map_location="cpu", weights_only=False)["method"]
    for part in ("replay", "refit"):
        state = method.get(part)
        if state is not None and state.get("buffer", state) is not None:
            return state.get("buffer", state)["indices"]
    return torch.empty(0, dtype=torch.int64)


def balanced(indices: Tensor, labels: Tensor, per_class: int, seed: int) -> Tensor:
    """At most ``per_class`` of ``indices`` (N,) of each class of ``labels`` (N,), seeded."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in torch.unique(labels).tolist():
        rows = indices[labels == label]
        chosen.append(rows[torch.randperm(len(rows), generator=generator)[:per_class]])
    return torch.cat(chosen)


def _share_in(predicted: Tensor, classes: list[int]) -> float:
    """The share of ``predicted`` (N,) that is one of ``classes``."""
    return float(torch.isin(predicted, torch.tensor(classes)).float().mean())


def accuracy(predicted: Tensor, labels: Tensor) -> float:
    return float((predicted == labels).float().mean())


def diagnose(run_dir: Path) -> dict[str, float]:
    """The measurements the module docstring lists, for one finished run."""
    config = read_run_config(run_dir)
    data, tasks = load_scenario(config)
    model, _ = load_model_folder(resolve_model_folder(run_dir))
    seen = sorted({c for task in tasks for c in task.classes})
    last = sorted(tasks[-1].classes)
    old = [c for c in seen if c not in last]
    train_labels = data.train.labels
    test_mask = torch.isin(data.test.labels, torch.tensor(seen))
    test_labels = data.test.labels[test_mask]
    test_features = features_of(model, data.test.images[test_mask])
    logits = model.classifier(test_features)[:, seen]
    seen_tensor = torch.tensor(seen)
    predicted = seen_tensor[logits.argmax(dim=1)]
    is_old = torch.isin(test_labels, torch.tensor(old))
    old_columns = [seen.index(c) for c in old]
    old_only = torch.tensor(old)[logits[is_old][:, old_columns].argmax(dim=1)]
    output = model.classifier.net[-1].weight.detach().norm(dim=1)
    measured = {
        "classifier": accuracy(predicted, test_labels),
        "old_classes_argmax_all": accuracy(predicted[is_old], test_labels[is_old]),
        "old_classes_argmax_old": accuracy(old_only, test_labels[is_old]),
        "old_given_to_last_task": _share_in(predicted[is_old], last),
        "last_task_classes": accuracy(predicted[~is_old], test_labels[~is_old]),
        "last_given_to_old": _share_in(predicted[~is_old], old),
        "last_over_old_weight_norm": float(output[last].mean() / output[old].mean()),
    }
    every = torch.nonzero(torch.isin(train_labels, seen_tensor)).squeeze(1)
    buffered = kept_at_end(run_dir)
    buffered = buffered[torch.isin(train_labels[buffered], torch.tensor(old))]
    kept = torch.cat([buffered, tasks[-1].labelled_indices])
    per_class = max(1, round(len(buffered) / max(1, len(old))))
    pools = {
        "probe_every_image": every,
        "probe_kept_images": kept,
        "probe_kept_balanced": balanced(kept, train_labels[kept], per_class, config.seed),
    }
    for name, indices in pools.items():
        predicted = linear_probe_predict(
            features_of(model, data.train.images[indices]),
            train_labels[indices],
            test_features,
            num_classes=data.num_classes,
            epochs=config.eval.linear_epochs,
            lr=config.eval.linear_lr,
        )
        measured[name] = accuracy(predicted, test_labels)
    kept_features = F.normalize(features_of(model, data.train.images[kept]), dim=1)
    kept_labels = train_labels[kept]
    means = torch.stack([kept_features[kept_labels == c].mean(dim=0) for c in seen])
    nearest = torch.cdist(F.normalize(test_features, dim=1), F.normalize(means, dim=1))
    measured["nme_kept_images"] = accuracy(seen_tensor[nearest.argmin(dim=1)], test_labels)
    measured["kept_per_old_class"] = float(per_class)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    per_run = {str(run): diagnose(run) for run in args.runs}
    keys = next(iter(per_run.values())).keys()
    summary = {
        key: {
            "mean": statistics.fmean(run[key] for run in per_run.values()),
            "std": statistics.stdev(run[key] for run in per_run.values())
            if len(per_run) > 1
            else 0.0,
        }
        for key in keys
    }
    for key, value in summary.items():
        print(f"{key:28s} {value['mean']:.4f} ± {value['std']:.4f}")
    if args.out is not None:
        args.out.write_text(json.dumps({"runs": per_run, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
