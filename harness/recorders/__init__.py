"""Recorders: they observe the system during a run and only append to the history.

Nothing here may import requests/urllib3 at package level: the load generator runs locust, whose
gevent monkey-patching must come first in its own process."""
