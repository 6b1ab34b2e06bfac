"""Disaster-recovery game-day harness for the SVG AI Parameter Optimization System's BCP.

The parts, bottom to top (docs/architecture.md): core, checkers, records, targets, probes
(beside the package), recorders, faults, recovery, report, run, cli."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("svgai-gameday")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
