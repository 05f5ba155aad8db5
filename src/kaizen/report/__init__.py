"""Reports and comparisons of finished runs.

``write_report`` renders one run directory and ``compare_runs`` aggregates several over seeds;
``kaizen.report.commands.register`` adds ``report`` and ``compare`` to the ``kaizen`` command.
"""

from kaizen.report.compare import Comparison, compare_runs
from kaizen.report.report import write_report

__all__ = ["Comparison", "compare_runs", "write_report"]
