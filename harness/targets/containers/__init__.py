"""The container target: the reference system as Docker containers, managed with testcontainers.

  images.py   the project's own image, built from Debian packages (no registry), tagged by recipe
  delay.py    the packet delayer, where the kernel has no tc netem
  target.py   `gameday target up | down | status --kind containers`: the containers and networks

The Docker engine itself (client, labels, pids, the undo of container faults) is the bottom
layer's harness/targets/containers/engine.py: the stack's fault reaper needs it too.
"""
