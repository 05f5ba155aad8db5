"""JSON records of the GPU check's parts, each with the machine it ran on and its command.

    python benchmarks/gpu/report.py tests JUNIT_XML OUT_JSON COMMAND
    python benchmarks/gpu/report.py epochs CALIBRATION_RUN SECONDS RUNS
    python benchmarks/gpu/report.py comparison SWEEP_ROOT EPOCHS OUT_JSON COMMAND
    python benchmarks/gpu/report.py stamp JSON COMMAND

``stamp`` adds the environment and the command to a JSON file another tool wrote.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import torch

from kaizen.bench.report import device_name


def environment() -> dict[str, Any]:
    """The device, torch and CUDA versions and Python of this process."""
    cuda = torch.cuda.is_available()
    return {
        "device": device_name(torch.device("cuda" if cuda else "cpu")),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": cuda,
        "python": platform.python_version(),
    }


def _write(path: Path, record: dict[str, Any], command: str) -> None:
    path.write_text(
        json.dumps({**record, "environment": environment(), "command": command}, indent=2) + "\n"
    )


def tests_record(junit: Path) -> dict[str, Any]:
    """Counts of a pytest JUnit XML report and the names of the tests that did not pass."""
    suite = ElementTree.parse(junit).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    cases = suite.findall("testcase")
    outcome: dict[str, list[str]] = {"failed": [], "skipped": [], "passed": []}
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome["failed"].append(name)
        elif case.find("skipped") is not None:
            outcome["skipped"].append(name)
        else:
            outcome["passed"].append(name)
    return {
        "total": len(cases),
        "passed": len(outcome["passed"]),
        "failed": len(outcome["failed"]),
        "skipped": len(outcome["skipped"]),
        "not_passed": outcome["failed"] + outcome["skipped"],
    }


def epochs_that_fit(calibration: Path, seconds: float, runs: int) -> int:
    """Epochs per task such that ``runs`` runs like the 1-epoch ``calibration`` run fit in
    ``seconds``: each run costs its overhead (start, evaluation) plus epochs x training time."""
    costs = json.loads((calibration / "costs.json").read_text())["tasks"]
    train = sum(task["train_seconds"] for task in costs)
    wall = sum(task["wall_seconds"] for task in costs)
    overhead = wall - train + 15.0  # the process start and data loading are not in costs.json
    return max(1, math.floor((seconds / runs - overhead) / max(train, 1e-9)))


def comparison_record(root: Path, epochs: int) -> dict[str, Any]:
    """Each run of the sweep in ``root``: its metrics, steps per task and training time."""
    runs = {}
    for results_path in sorted(root.glob("*/results.json")):
        results = json.loads(results_path.read_text())
        costs = json.loads((results_path.parent / "costs.json").read_text())["tasks"]
        runs[results_path.parent.name] = {
            "complete": results["complete"],
            "metrics": {name: metric["value"] for name, metric in results["metrics"].items()},
            "accuracy_matrix": results["accuracy_matrix"]["values"],
            "steps_per_task": [task["steps"] for task in results["tasks"]],
            "train_seconds": sum(task["train_seconds"] for task in costs),
            "wall_seconds": sum(task["wall_seconds"] for task in costs),
        }
    return {"epochs_per_task": epochs, "runs": runs}


def main(argv: list[str]) -> int:
    kind, *rest = argv
    if kind == "tests":
        junit, out, command = rest
        _write(Path(out), tests_record(Path(junit)), command)
    elif kind == "epochs":
        calibration, seconds, runs = rest
        print(epochs_that_fit(Path(calibration), float(seconds), int(runs)))
    elif kind == "comparison":
        root, epochs, out, command = rest
        _write(Path(out), comparison_record(Path(root), int(epochs)), command)
    elif kind == "stamp":
        path, command = rest
        _write(Path(path), json.loads(Path(path).read_text()), command)
    else:
        raise SystemExit(f"unknown record kind {kind!r}; see the module docstring")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
