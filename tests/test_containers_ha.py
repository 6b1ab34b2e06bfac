"""The container target's Patroni cluster as data (harness/targets/containers/ha.py): the embedded
cluster's configuration with container addresses, etcd addressed by container name, the handle
every HA fault reads, and the published ports. tests/test_containers.py runs the real thing."""
from __future__ import annotations

from pathlib import Path

from harness.targets.containers import ha, stack
from harness.targets.embedded.ha import config

PASSWORDS = {"postgres": "p", "replicator": "r", "rest": "x"}


def test_a_node_container_runs_the_embedded_clusters_configuration_but_for_where_it_is():
    layout = config.HaLayout(Path("/var/tmp/h"), 16440, Path("/var/tmp/h/srv"))
    embedded = config.patroni_config(layout, "pg1", PASSWORDS)
    inside = ha.member_yaml_config("pg1", PASSWORDS)
    # The same settings, archiving, rewind and bootstrap: only the archive's folder differs.
    dcs_e, dcs_c = embedded["bootstrap"]["dcs"], inside["bootstrap"]["dcs"]
    params_e, params_c = dict(dcs_e["postgresql"]["parameters"]), dict(dcs_c["postgresql"]["parameters"])
    assert params_c.pop("archive_command") == params_e.pop("archive_command").replace("/var/tmp/h/srv/archive",
                                                                                      ha.ARCHIVE_MOUNT)
    assert params_c == params_e and {k: v for k, v in dcs_c.items() if k != "postgresql"} == \
        {k: v for k, v in dcs_e.items() if k != "postgresql"}
    assert inside["bootstrap"]["initdb"] == embedded["bootstrap"]["initdb"]
    # Reached by container name inside the database network; listening on every address there.
    assert inside["restapi"]["connect_address"] == "pg1:8008" and inside["postgresql"]["connect_address"] == "pg1:5432"
    assert inside["etcd3"]["hosts"] == ["etcd-e0:2379", "etcd-e1:2379", "etcd-e2:2379"]
    # Every TCP connection gives its password, from any address of the network.
    hba = inside["postgresql"]["pg_hba"]
    assert not [line for line in hba if "trust" in line or (line.startswith("host") and "scram-sha-256" not in line)]
    assert inside["postgresql"]["authentication"]["replication"]["password"] == "r"
    assert inside["postgresql"]["remove_data_directory_on_diverged_timelines"] is True


def test_etcd_members_name_each_other_by_container_with_a_home_specific_token():
    cmd = ha.etcd_command("e1", Path("/var/tmp/a"))
    joined = " ".join(cmd)
    assert ("--initial-cluster e0=http://etcd-e0:2380,e1=http://etcd-e1:2380,e2=http://etcd-e2:2380" in joined)
    assert "--advertise-client-urls http://etcd-e1:2379" in joined and "--initial-cluster-state new" in joined
    token = cmd[cmd.index("--initial-cluster-token") + 1]
    other = ha.etcd_command("e1", Path("/var/tmp/b"))
    assert token != other[other.index("--initial-cluster-token") + 1]


def test_the_handle_reaches_every_node_and_etcd_member_through_published_ports(tmp_path):
    n = stack._Names(tmp_path, 17440)
    cluster = stack._handle(n)
    assert cluster["runtime"] == "containers" and cluster["home"] == str(tmp_path / "ha")
    assert cluster["members"]["pg0"]["api_url"] == "http://127.0.0.1:17446"
    assert cluster["members"]["pg1"]["port"] == 17442
    assert cluster["members"]["pg1"]["container"] == n.container("pg1")
    assert cluster["etcd_endpoints"] == ["http://127.0.0.1:17448", "http://127.0.0.1:17449", "http://127.0.0.1:17450"]
    assert set(cluster["etcd_containers"].values()) == {n.container(c) for c in ha.ETCD_COMPONENTS}
    assert "host=127.0.0.1,127.0.0.1 port=17441,17442" in cluster["dsn"] and "target_session_attrs=read-write" in cluster["dsn"]
    assert cluster["expected_failover_window_s"] == list(config.expected_failover_window(config.SETTINGS))
    target = stack.describe(n, leader="pg1")
    assert target["db_tier"] == "patroni" and target["primary"]["program"] == "pg1"
    assert target["standby"]["program"] == "pg0" and target["app_dsn"] == cluster["dsn"]


def test_no_two_listeners_share_a_port_and_the_api_keeps_its_offset():
    offsets = [off for _, _, off in stack.PORTS.values()]
    assert len(offsets) == len(set(offsets)) and stack.PORTS["api"][2] == 0
    assert {owner for owner, _, _ in stack.PORTS.values()} <= set(stack.COMPONENTS)
    assert set(stack.ON_NETWORKS) == set(stack.COMPONENTS) == set(stack.START_TIMEOUT_S)
