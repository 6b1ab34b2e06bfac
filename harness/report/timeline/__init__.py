"""The run's timeline chart: one picture of the history with the incident on it.

`build_timeline` (bins.py) reduces the history, of any length, to at most `columns` time bins
and keeps what the chart marks; `timeline_svg` (chart.py) draws it as inline SVG with the fault
windows shaded and RTO / RPO marked against their objectives, from the building blocks in
svg.py. All pure: no I/O.
"""
from harness.report.timeline.bins import MAX_COLUMNS, Timeline, Window, build_timeline, interesting_keys
from harness.report.timeline.chart import legend_items, timeline_svg
from harness.report.timeline.phases_bar import phases_svg, phases_words

__all__ = ["MAX_COLUMNS", "Timeline", "Window", "build_timeline", "interesting_keys", "legend_items", "timeline_svg",
           "phases_svg", "phases_words"]
