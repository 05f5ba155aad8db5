"""Evaluation after a task: the classifier's accuracy row, and the representation probes' rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from lightning.fabric import Fabric
from torch import Tensor

from kaizen.config import EvalConfig
from kaizen.data.scenario import Task
from kaizen.data.stream import Stream
from kaizen.eval.accuracy import per_task_accuracy, predict, seen_classes
from kaizen.eval.metrics import negative_flip_rate
from kaizen.eval.probes import extract_features, knn_predict, linear_probe_predict
from kaizen.learner.learner import Learner

_PROBE_DATA = (
    "frozen backbone features in eval mode; fitted on the training images of the tasks seen so "
    "far with their labels; task-agnostic over the classes seen so far"
)


def knn_neighbours(config: EvalConfig, tasks_seen: int) -> int:
    """The kNN probes' k after ``tasks_seen`` tasks: ``knn_k``, or with
    ``knn_k_cap=tasks-seen`` at most ``tasks_seen`` (LUMP's released main.py)."""
    return min(config.knn_k, tasks_seen) if config.knn_k_cap == "tasks-seen" else config.knn_k


def probe_protocols(config: EvalConfig) -> dict[str, str]:
    """The protocol of each configured probe."""
    k = f"min({config.knn_k}, tasks seen)" if config.knn_k_cap == "tasks-seen" else config.knn_k
    knn = f"weighted kNN (k={k}, temperature {config.knn_temperature})"
    described = {
        "knn": f"{knn} on {_PROBE_DATA}",
        "linear": f"linear probe ({config.linear_epochs} epochs of SGD on standardised features) "
        f"on {_PROBE_DATA}",
        "knn-task": f"{knn} on frozen backbone features in eval mode; task-aware, as LUMP "
        "(Madaan et al., ICLR 2022) evaluates: the test images of task i are matched against "
        "the training images of task i only, with their labels; not comparable with "
        "task-agnostic numbers",
    }
    return {name: described[name] for name in config.probes}


@dataclass
class TaskEvaluation:
    """The evaluation after one task.

    Attributes:
        accuracies: the classifier's accuracy on each task's test set (one matrix row).
        correct: bool (M,) on the host: which test images the classifier got right.
        probes: each probe's accuracy row.
        negative_flip_rate: share of the previous tasks' test images the previous model got
            right and this one gets wrong; None after the first task.
    """

    accuracies: list[float]
    correct: Tensor
    probes: dict[str, list[float]]
    negative_flip_rate: float | None


class Evaluator:
    """Evaluates a learner on every task's test set, with the classifier and the probes.

    With several processes, each predicts a contiguous shard of the test split and the shards
    are gathered, so every process holds the same result. The probes run whole on each process.
    """

    def __init__(self, stream: Stream, config: EvalConfig, fabric: Fabric) -> None:
        self.stream = stream
        self.config = config
        self.fabric = fabric

    def argmax_classes(self, tasks_seen: int) -> Tensor | None:
        """The classes the classifier's argmax runs over after ``tasks_seen`` tasks (K,), or
        None for every class (``eval.classes``)."""
        if self.config.classes == "all":
            return None
        return seen_classes(self.stream.tasks[:tasks_seen])

    def classifier_correct(self, learner: Learner, tasks_seen: int) -> Tensor:
        """bool (M,) on the host: the classifier's hits on the whole test split after
        ``tasks_seen`` tasks."""
        fabric, stream = self.fabric, self.stream
        shards = torch.arange(len(stream.test_labels)).tensor_split(fabric.world_size)
        mine = shards[fabric.global_rank].to(stream.test_images.device)
        hits = predict(
            learner,
            stream.test_images[mine],
            stream.normalize,
            self.config.batch_size,
            self.argmax_classes(tasks_seen),
        )
        hits = (hits == stream.test_labels[mine]).to(torch.int8)
        if fabric.world_size == 1:
            return hits.bool().cpu()
        longest = len(shards[0])
        padded = torch.cat([hits, hits.new_zeros(longest - len(hits))])
        # Fabric gathers a tensor into one tensor (a collection into a collection).
        gathered = cast(Tensor, fabric.all_gather(padded))
        gathered = gathered.reshape(fabric.world_size, longest).cpu()
        return torch.cat(
            [row[: len(shard)] for row, shard in zip(gathered, shards, strict=True)]
        ).bool()

    def random_init_row(self, learner: Learner) -> list[float]:
        """The untrained classifier's accuracy on each task's test set, b_i of forward transfer.

        Its argmax runs over what the first trained model's does: with ``eval.classes=seen``,
        the first task's classes, so b_i and a[i-1][i] both leave out task i's classes when
        they are new (no forward transfer is possible in the classifier then: both are 0).
        """
        return per_task_accuracy(self.classifier_correct(learner, 1), self.stream.tasks)

    def evaluate(
        self, learner: Learner, task: Task, previous_correct: Tensor | None
    ) -> TaskEvaluation:
        """Evaluate after ``task`` (tasks 0..task.index have been seen)."""
        correct = self.classifier_correct(learner, task.index + 1)
        flip_rate = None
        if previous_correct is not None:
            earlier = torch.cat([t.test_indices for t in self.stream.tasks[: task.index]])
            flip_rate = negative_flip_rate(previous_correct[earlier], correct[earlier])
        return TaskEvaluation(
            per_task_accuracy(correct, self.stream.tasks),
            correct,
            self._probe_rows(learner, task) if self.config.probes else {},
            flip_rate,
        )

    def _train_features(self, learner: Learner, indices: Tensor) -> Tensor:
        """(N, F) frozen features of the training images ``indices`` (N,)."""
        stream, config = self.stream, self.config
        return torch.cat(
            [
                extract_features(
                    learner.backbone,
                    stream.train_images.gather(chunk.to(stream.train_images.index_device)),
                    stream.normalize,
                    config.batch_size,
                )
                for chunk in indices.split(config.batch_size * 16)
            ]
        )

    def _task_aware_knn_row(self, banks: Sequence[Tensor], test: Tensor, k: int) -> list[float]:
        """Accuracy on each task's test images of a kNN with ``k`` neighbours whose bank is that
        task's training set.

        ``banks[i]`` holds the (N_i, F) features of task i's training images; ``test`` the
        (N_test, F) features of every test image.
        """
        stream, config = self.stream, self.config
        row = []
        for each, bank in zip(stream.tasks, banks, strict=True):
            known = each.train_indices[stream.label_known[each.train_indices]]
            bank_labels = stream.data.train.labels[known].to(bank.device)
            queries = each.test_indices.to(test.device)
            predicted = knn_predict(
                bank, bank_labels, test[queries], k=k, temperature=config.knn_temperature
            )
            row.append(float((predicted == stream.test_labels[queries]).float().mean()))
        return row

    def _probe_rows(self, learner: Learner, task: Task) -> dict[str, list[float]]:
        """Each probe's accuracy row; every training image is encoded once.

        The task-agnostic probes fit on the tasks seen so far; the task-aware kNN needs every
        task's bank, so with it the features of all tasks' training images are extracted.
        """
        stream, config = self.stream, self.config
        seen_count = task.index + 1
        tasks = stream.tasks if "knn-task" in config.probes else stream.tasks[:seen_count]
        # an update's unlabelled images have no label to fit a probe on
        indices = [each.train_indices[stream.label_known[each.train_indices]] for each in tasks]
        banks = self._train_features(learner, torch.cat(indices)).split(
            [len(each) for each in indices]
        )
        seen = torch.cat(indices[:seen_count])
        bank = torch.cat(banks[:seen_count])
        bank_labels = stream.data.train.labels[seen].to(bank.device)
        test = extract_features(
            learner.backbone, stream.test_images, stream.normalize, config.batch_size
        )
        k = knn_neighbours(config, seen_count)
        rows: dict[str, list[float]] = {}
        for name in config.probes:
            if name == "knn-task":
                rows[name] = self._task_aware_knn_row(banks, test, k)
                continue
            if name == "knn":
                predicted = knn_predict(
                    bank, bank_labels, test, k=k, temperature=config.knn_temperature
                )
            else:
                predicted = linear_probe_predict(
                    bank,
                    bank_labels,
                    test,
                    num_classes=stream.data.num_classes,
                    epochs=config.linear_epochs,
                    lr=config.linear_lr,
                )
            rows[name] = per_task_accuracy(predicted == stream.test_labels, stream.tasks)
        return rows
