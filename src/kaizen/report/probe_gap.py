"""The classifier against the probe on its own features, task by task.

A linear (or kNN) probe fitted on the backbone's features of every seen class shows what the
features know; the classifier the run trained continually shows what the model keeps. Set side
by side per task, after each task's training and at the end of the run, they show where the
classifier falls short of its own features. The task-aware ``knn-task`` probe is not set beside
the task-agnostic classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kaizen.eval.metrics import final_accuracy
from kaizen.report.aggregate import Spread, spread
from kaizen.report.document import Document, cell
from kaizen.storage.runs import Run

COMPARABLE_PROBES = ("linear", "knn")
"""Task-agnostic probes, in the order one is chosen to stand beside the classifier."""


def gap_probe(runs: Sequence[Run]) -> str | None:
    """The first of :data:`COMPARABLE_PROBES` every run of ``runs`` has, or None."""
    for name in COMPARABLE_PROBES:
        if all(name in (run.results.get("probes") or {}) for run in runs):
            return name
    return None


@dataclass(frozen=True)
class ProbeGap:
    """A group's classifier beside its probe, over seeds.

    Attributes:
        probe: the probe's name.
        classifier_final: per task j, the classifier's accuracy on task j after the last task.
        probe_final: the same for the probe.
        classifier_mean: the classifier's final accuracy (mean over tasks).
        probe_mean: the probe's.
    """

    probe: str
    classifier_final: list[Spread]
    probe_final: list[Spread]
    classifier_mean: Spread
    probe_mean: Spread

    @property
    def gap(self) -> float:
        """The probe's mean final accuracy minus the classifier's."""
        return self.probe_mean.mean - self.classifier_mean.mean


def probe_gap(runs: Sequence[Run]) -> ProbeGap | None:
    """:class:`ProbeGap` of the classifier's matrices of ``runs`` (complete runs of one
    group); None when they are read from a probe or share no comparable probe."""
    name = gap_probe(runs)
    if name is None or any(run.probe is not None for run in runs):
        return None
    classifier = [run.results["accuracy_matrix"]["values"] for run in runs]
    probe = [run.results["probes"][name]["values"] for run in runs]
    tasks = min(len(matrix) for matrix in classifier)

    def finals(matrices: list[list[list[float]]]) -> list[Spread]:
        return [spread([matrix[-1][j] for matrix in matrices]) for j in range(tasks)]

    return ProbeGap(
        name,
        finals(classifier),
        finals(probe),
        spread([final_accuracy(matrix) for matrix in classifier]),
        spread([final_accuracy(matrix) for matrix in probe]),
    )


def run_gap_section(document: Document, run: Run) -> None:
    """The report's table: per task, the classifier and the probe right after the task's
    training and after the last task."""
    name = gap_probe([run])
    classifier = run.results["accuracy_matrix"]["values"]
    if name is None or not classifier:
        return
    probe = run.results["probes"][name]["values"]
    last = len(classifier) - 1
    document.heading(f"Classifier against the {name} probe on its features")
    document.paragraph(
        f"Accuracy on each task's test set of the classifier and of the {name} probe fitted on "
        "the same backbone's features: right after the task's training (a[j][j]) and after "
        f"task {last}; the gap is probe - classifier after task {last}."
    )
    document.table(
        [
            "task",
            "classifier, just trained",
            "probe, just trained",
            "classifier, final",
            "probe, final",
            "gap",
        ],
        [
            [
                str(j),
                cell(classifier[j][j]),
                cell(probe[j][j]),
                cell(classifier[last][j]),
                cell(probe[last][j]),
                f"{probe[last][j] - classifier[last][j]:+.4f}",
            ]
            for j in range(len(classifier[last]))
        ],
    )


def compare_gap_section(document: Document, gaps: Sequence[tuple[str, str, ProbeGap]]) -> None:
    """Compare's table: per (SSL method, strategy) group, each task's final accuracy of the
    classifier / the probe, mean over seeds, the means over tasks and their gap."""
    if not gaps:
        return
    tasks = max(len(gap.classifier_final) for _, _, gap in gaps)
    document.heading("Classifier against the probe on its own features")
    document.paragraph(
        "Accuracy on each task after the last task, classifier / probe (the probe named, fitted "
        "on the same run's final features), mean over seeds; gap = probe - classifier final "
        "accuracy, in points."
    )
    document.table(
        [
            "SSL method",
            "strategy",
            "probe",
            *(f"task {j}" for j in range(tasks)),
            "final accuracy",
            "gap (points)",
        ],
        [
            [
                ssl,
                strategy,
                gap.probe,
                *(
                    f"{own.mean:.3f} / {probe.mean:.3f}"
                    for own, probe in zip(gap.classifier_final, gap.probe_final, strict=True)
                ),
                *([""] * (tasks - len(gap.classifier_final))),
                f"{gap.classifier_mean.mean:.4f} / {gap.probe_mean.mean:.4f}",
                f"{100 * gap.gap:.1f}",
            ]
            for ssl, strategy, gap in gaps
        ],
    )
