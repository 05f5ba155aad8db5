"""A finished (or partial) run directory: its results.json and, when present, its costs.json."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaizen.errors import KaizenError

RESULTS_FILE = "results.json"
COSTS_FILE = "costs.json"

# Keys of results.json that reports and comparisons read.
_REQUIRED = (
    ("config", "name"),
    ("config", "seed"),
    ("config", "ssl", "method"),
    ("config", "strategy", "name"),
    ("config", "data", "name"),
    ("config", "scenario", "num_tasks"),
    ("config", "scenario", "kind"),
    ("complete",),
    ("accuracy_matrix", "protocol"),
    ("accuracy_matrix", "values"),
    ("metrics",),
    ("tasks",),
)


@dataclass(frozen=True)
class Run:
    """The files of one run directory, as parsed JSON."""

    path: Path
    results: dict[str, Any]
    costs: dict[str, Any] | None
    probe: str | None = None
    """The probe whose accuracy matrix :attr:`matrix` gives; None: the classifier's."""
    updated: bool = False
    """Whether ``kaizen update`` added tasks: rows written before them hold NaN there."""

    @property
    def config(self) -> dict[str, Any]:
        return self.results["config"]

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def ssl_method(self) -> str:
        return self.config["ssl"]["method"]

    @property
    def strategy(self) -> str:
        return self.config["strategy"]["name"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def complete(self) -> bool:
        return bool(self.results["complete"])

    @property
    def _accuracy(self) -> dict[str, Any]:
        if self.probe is None:
            return self.results["accuracy_matrix"]
        return self.results["probes"][self.probe]

    @property
    def matrix(self) -> list[list[float]]:
        """Row i: accuracy on every task's test set after task i (T rows once complete)."""
        return self._accuracy["values"]

    @property
    def protocol(self) -> str:
        return self._accuracy["protocol"]

    @property
    def setting(self) -> str:
        """What must agree for two runs to be compared: data, scenario and protocol."""
        scenario = self.config["scenario"]
        return (
            f"{self.config['data']['name']}, {scenario['num_tasks']} tasks "
            f"({scenario['kind']}); {self.protocol}"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise KaizenError(f"{path} is not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(content, dict):
        raise KaizenError(f"{path} must hold a JSON object")
    return content


def _check_keys(results: dict[str, Any], path: Path) -> None:
    for keys in _REQUIRED:
        node: Any = results
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                raise KaizenError(
                    f"{path} lacks '{'.'.join(keys)}': was it written by `kaizen run`?"
                )
            node = node[key]


def load_run(run_dir: Path, probe: str | None = None) -> Run:
    """The run in ``run_dir``, its accuracy read from ``probe`` (None: the classifier's).

    A directory without results.json, or a run without that probe, is a :class:`KaizenError`.
    """
    results_path = run_dir / RESULTS_FILE
    if not results_path.is_file():
        raise KaizenError(
            f"{run_dir} has no {RESULTS_FILE}: run `kaizen run CONFIG --out {run_dir}` first"
        )
    results = _read_json(results_path)
    _check_keys(results, results_path)
    costs_path = run_dir / COSTS_FILE
    costs = _read_json(costs_path) if costs_path.is_file() else None
    probes = results.get("probes", {})
    if probe is not None and probe not in probes:
        raise KaizenError(
            f"{run_dir} has no '{probe}' probe (it has: {', '.join(probes) or 'none'}): "
            f"choose one of those, or run with eval.probes=[{probe}]"
        )
    updated = _square_matrices(results)
    return Run(run_dir, results, costs, probe, updated)


def _square_matrices(results: dict[str, Any]) -> bool:
    """Give every row of each matrix the last row's length, NaN where a row was written before
    an update's task existed; True when a row was short (the run was updated)."""
    matrices = [results["accuracy_matrix"], *(results.get("probes") or {}).values()]
    updated = False
    for matrix in matrices:
        rows = matrix["values"]
        width = max((len(row) for row in rows), default=0)
        for row in rows:
            updated |= len(row) < width
            row.extend([math.nan] * (width - len(row)))
    return updated


def is_complete(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a readable results.json of a run that trained every task."""
    try:
        return load_run(run_dir).complete
    except KaizenError:
        return False
