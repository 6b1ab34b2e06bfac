"""harness.core.ports: a port someone listens on is in use, the same port once closed is free."""
import socket

from harness.core import ports


def test_a_listening_port_is_in_use_and_free_once_closed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert not ports.free(taken)
        assert ports.in_use({"other": 0, "ours": taken}) == [("ours", taken)]
    assert ports.free(taken)
