"""Sweeps: every (SSL method, strategy, seed) of a grid run one after another, then compared.

``kaizen.sweep.runner.sweep`` runs the grid; ``kaizen.sweep.commands.register`` adds ``sweep``
to the ``kaizen`` command.
"""
