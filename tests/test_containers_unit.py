"""The container target's parts that need no Docker engine: fault arguments (bad input names the
value, nothing is injected), kind checks, the image tag, the CLI's errors, the delayer's netlink
encoding. tests/test_containers.py runs the real thing."""
from __future__ import annotations

import json
import struct

import pytest

from harness import targets
from chaoslib.exceptions import ActivityFailed

from harness.cli import main as cli
from harness.targets.containers import delay, images, stack as containers
from harness.faults import containers as faults


@pytest.fixture
def container_target(tmp_path, monkeypatch) -> str:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"kind": "containers", "api_url": "http://127.0.0.1:1", "home": str(tmp_path),
                                "containers": {"api": "gameday-x-api"}, "database_network": "gameday-x-db"}))
    monkeypatch.setenv("GAMEDAY_TARGET", str(path))
    return str(path)


@pytest.mark.parametrize("delay_ms", [0, -5, True, 1.5, "200", 60_001])
def test_delay_names_a_bad_delay(delay_ms, container_target):
    with pytest.raises(ActivityFailed, match="delay_ms must be"):
        faults.delay_database_link(delay_ms=delay_ms)


@pytest.mark.parametrize("call", [
    lambda: faults.partition_database(duration_s="soon"),
    lambda: faults.pause_container("api", duration_s=-1),
    lambda: faults.delay_database_link(duration_s=7200),
])
def test_durations_are_checked_before_anything_is_touched(call, container_target):
    with pytest.raises(ActivityFailed, match="duration_s must be"):
        call()


def test_unknown_component_is_named_with_the_known_ones(container_target):
    with pytest.raises(ActivityFailed, match=r"unknown component 'dbb'; the container target has: api"):
        faults.kill_container("dbb")


def test_container_faults_refuse_another_kind(tmp_path, monkeypatch):
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"kind": "local", "api_url": "http://127.0.0.1:1", "home": str(tmp_path)}))
    monkeypatch.setenv("GAMEDAY_TARGET", str(path))
    assert targets.load(None).fault_family == "processes"
    with pytest.raises(ActivityFailed, match=r"needs the container target .*; target .* is the embedded reference "
                                             r"stack \(kind 'local'\)"):
        faults.partition_database(duration_s=1)


def test_image_tag_is_a_hash_of_the_recipe(monkeypatch):
    tag = images.image_tag()
    assert tag.startswith(f"{images.IMAGE_REPO}:") and tag == images.image_tag()
    monkeypatch.setattr(images, "PACKAGES", images.PACKAGES + ("curl",))
    assert images.image_tag() != tag


def test_port_base_errors_name_the_value(tmp_path):
    with pytest.raises(containers.ContainersError, match=r"got 'ten'"):
        containers.port_base("ten", tmp_path)
    with pytest.raises(containers.ContainersError, match=r"port base 32765 puts ports outside"):
        containers.port_base(32765, tmp_path)
    assert containers.port_base(23500, tmp_path) == 23500


def test_cli_bad_kind_is_one_line_and_exit_2(capsys):
    assert cli.main(["target", "up", "--kind", "vms"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "vms" in err


def test_a_home_holding_the_embedded_stack_is_refused(tmp_path, capsys):
    (tmp_path / ".gameday-home").write_text(json.dumps({"port_base": 15400}))
    assert not containers.is_containers_home(tmp_path)
    assert cli.main(["target", "up", "--kind", "containers", "--home", str(tmp_path), "--port-base", "15400"]) == 2
    assert "holds an embedded stack" in capsys.readouterr().err


def test_delayer_reads_the_packet_id_the_kernel_sends():
    hdr = struct.pack("!IHB", 4242, 0x0800, 3)
    body = struct.pack("=BB", 2, 0) + struct.pack("!H", 7) + delay._attr(delay.NFQA_PACKET_HDR, hdr)
    msg = struct.pack("=IHHII", 16 + len(body), (delay.NFNL_SUBSYS_QUEUE << 8) | delay.NFQNL_MSG_PACKET, 0, 0, 0) + body
    ((msg_type, payload),) = list(delay._messages(msg + msg[:10]))  # a torn trailing message is ignored
    assert msg_type == 0x300
    assert struct.unpack("!I", delay._attrs(payload)[delay.NFQA_PACKET_HDR][:4])[0] == 4242


def test_verdict_message_accepts_the_packet():
    raw = delay._message(delay.NFQNL_MSG_VERDICT, 7, delay._attr(delay.NFQA_VERDICT_HDR, struct.pack("!II", 1, 99)))
    length, msg_type = struct.unpack_from("=IH", raw)
    assert length == len(raw) and msg_type == 0x301
    assert struct.unpack_from("!H", raw, 18)[0] == 7  # the queue, big-endian in nfgenmsg
    assert struct.unpack_from("!II", raw, 24) == (1, 99)
