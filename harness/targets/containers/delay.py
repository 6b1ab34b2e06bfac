"""A packet delayer for kernels without tc netem (CONFIG_NET_SCH_NETEM unset, as on this
project's machines): an iptables NFQUEUE rule hands every packet a container sends on one
interface to this process, which accepts each one `delay_ms` after it arrived, in order. The
effect is netem's `delay` on that interface's egress.

    nsenter -t <container pid> -n python -m harness.targets.containers.delay --queue 4242 --delay-ms 200 [--until EPOCH]

It speaks nfnetlink_queue directly (no library): bind the queue, copy only packet metadata,
fail open when the queue is full, and on SIGTERM or at --until (the fault's deadline: no harness
needed to end it) accept everything still held before leaving.
The iptables rule is added with --queue-bypass, so if this process dies packets flow undelayed
instead of being dropped. Prints "ready" once the queue is bound. The bottom layer.
"""
from __future__ import annotations

import argparse
import collections
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
QUEUE_MAXLEN = 20000


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _message(msg_type: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack("!H", queue) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0) + body


def _messages(data: bytes):
    """(type, payload after the nfgenmsg header) of each netlink message in `data`."""
    offset = 0
    while offset + 16 <= len(data):
        length, msg_type, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        yield msg_type, data[offset + 16:offset + length]
        offset += (length + 3) & ~3


def _attrs(payload: bytes) -> dict[int, bytes]:
    out, offset = {}, 4  # after the nfgenmsg header
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        out[kind & 0x3FFF] = payload[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


class Delayer:
    def __init__(self, queue: int, delay_s: float, until_epoch: float | None = None):
        self.queue, self.delay_s = queue, delay_s
        # The deadline on the monotonic clock (epoch only to be told it).
        self.until = None if until_epoch is None else time.monotonic() + (until_epoch - time.time())
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))
        self.held: collections.deque[tuple[float, int]] = collections.deque()
        self.stopping = False

    def accept(self, packet_id: int) -> None:
        self.sock.send(_message(NFQNL_MSG_VERDICT, self.queue,
                                _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))))

    def run(self) -> None:
        while not self.stopping or self.held:
            now = time.monotonic()
            if self.until is not None and now >= self.until:
                self.stopping = True
            while self.held and (self.held[0][0] <= now or self.stopping):
                self.accept(self.held.popleft()[1])
            if self.stopping:
                break
            wait = max(0.0, self.held[0][0] - now) if self.held else 0.5
            if self.until is not None:
                wait = min(wait, max(0.0, self.until - now))
            try:
                ready, _, _ = select.select([self.sock], [], [], wait)
            except InterruptedError:
                continue
            if not ready:
                continue
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            arrived = time.monotonic()
            for msg_type, payload in _messages(data):
                if msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    hdr = _attrs(payload).get(NFQA_PACKET_HDR)
                    if hdr:
                        self.held.append((arrived + self.delay_s, struct.unpack("!I", hdr[:4])[0]))


def _check_ack(sock: socket.socket, what: str) -> None:
    for msg_type, payload in _messages(sock.recv(65536)):
        if msg_type == NLMSG_ERROR:
            # nlmsgerr: int error, then the offending header; payload here starts after 16 bytes.
            code = struct.unpack_from("=i", payload, 0)[0]
            if code != 0:
                raise OSError(-code, f"{what}: netlink error {code}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="delay every packet of an NFQUEUE by a fixed time")
    ap.add_argument("--queue", type=int, required=True)
    ap.add_argument("--delay-ms", type=int, required=True)
    ap.add_argument("--until", type=float, default=None, help="epoch seconds: stop delaying then")
    args = ap.parse_args(argv)
    d = Delayer(args.queue, args.delay_ms / 1000.0, args.until)
    for seq, (what, attrs) in enumerate((
            ("bind", _attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET))),
            ("params", _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
             + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))
             + _attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
             + _attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)))), start=1):
        d.sock.send(_message(NFQNL_MSG_CONFIG, args.queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq))
        try:
            _check_ack(d.sock, what)
        except OSError as e:
            print(f"delay: cannot {what} queue {args.queue}: {e}", file=sys.stderr, flush=True)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: setattr(d, "stopping", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(d, "stopping", True))
    print("ready", flush=True)
    d.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
