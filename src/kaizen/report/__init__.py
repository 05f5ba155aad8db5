"""Reports and comparisons of finished runs, and sweeps over SSL methods, strategies and seeds.

``write_report`` renders one run directory, ``compare_runs`` aggregates several over seeds and
``kaizen.report.sweep.sweep`` runs a grid of them; ``kaizen.report.commands.register`` adds
``report``, ``compare`` and ``sweep`` to the ``kaizen`` command.
"""

from kaizen.report.compare import Comparison, compare_runs
from kaizen.report.report import write_report

__all__ = ["Comparison", "compare_runs", "write_report"]
