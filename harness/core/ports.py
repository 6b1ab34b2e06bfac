"""Whether loopback ports are free: each bound for a moment as a server would bind it
(SO_REUSEADDR, so a port left in TIME_WAIT by a server that stopped counts as free, as it does
for the next server). The bottom layer: imports nothing of ours.

    free(port)            True when nothing listens on 127.0.0.1:port
    in_use(named_ports)   the (name, port) pairs of {name: port} that are taken, in order
"""
from __future__ import annotations

import socket

__all__ = ["free", "in_use"]


def free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def in_use(named_ports: dict[str, int]) -> list[tuple[str, int]]:
    return [(name, port) for name, port in named_ports.items() if not free(port)]
