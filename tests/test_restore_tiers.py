"""The pure parts of how a restore drives each tier's servers (harness/recovery/restore_tiers.py):
the recovery it asks of PostgreSQL, and the patroni tier's server started by hand with Patroni's
own command line. The restore itself runs for real in the game day on both tiers
(database-corruption, database-logical-corruption) and in test_recovery_database.py."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from harness.recovery.restore_tiers import recovery_settings, server_options, without_replica_settings

PATRONI_OPTS = ('/usr/lib/postgresql/15/bin/postgres "-D" "/h/ha/srv/pg0/data" '
                '"--config-file=/h/ha/srv/pg0/data/postgresql.conf" "--listen_addresses=127.0.0.1" "--port=17414" '
                '"--cluster_name=gameday-ha" "--wal_level=replica" "--max_connections=100"\n')


def test_patronis_command_line_is_kept_without_the_program_and_its_folder():
    assert server_options(PATRONI_OPTS) == [
        "--config-file=/h/ha/srv/pg0/data/postgresql.conf", "--listen_addresses=127.0.0.1", "--port=17414",
        "--cluster_name=gameday-ha", "--wal_level=replica", "--max_connections=100"]


def test_a_folder_with_a_space_stays_one_option():
    opts = '/pg/bin/postgres "-D" "/a b/data" "--config-file=/a b/data/postgresql.conf" "--port=1"'
    assert server_options(opts) == ["--config-file=/a b/data/postgresql.conf", "--port=1"]


def test_latest_recovery_replays_every_archived_segment_on_the_newest_timeline():
    assert recovery_settings(Path("/arch"), None) == {"restore_command": "cp /arch/%f %p",
                                                      "recovery_target_timeline": "latest"}


def test_a_target_time_stops_just_before_it_and_promotes():
    when = datetime(2026, 12, 6, 20, 51, 49, 123456, tzinfo=timezone.utc)
    got = recovery_settings(Path("/arch"), when)
    assert got["recovery_target_time"] == "2026-12-06T20:51:49.123456+00:00"
    assert got["recovery_target_inclusive"] == "off"  # a commit at exactly that moment is the incident's
    assert got["recovery_target_action"] == "promote"


def test_an_earlier_restores_recovery_settings_are_not_carried_into_the_next():
    # Patroni adopted a server started by an earlier restore: its postmaster.opts holds that
    # restore's -c settings, which would stop the next recovery at the old target time.
    opts = ('/pg/bin/postgres "-D" "/d" "--port=17415" "-c" "restore_command=cp /arch/%f %p" '
            '"-c" "recovery_target_time=2026-12-06T20:52:12+00:00" "--wal_level=replica"')
    assert server_options(opts) == ["--port=17415", "--wal_level=replica"]


def test_a_promoted_replicas_recovery_settings_leave_its_configuration():
    # Patroni wrote them when the member was a replica and left them when it was promoted; beside
    # the restore's target time, PostgreSQL refused to start: "multiple recovery targets specified".
    conf = ("include 'postgresql.base.conf'\narchive_mode = 'on'\nport = '17415'\n"
            "primary_conninfo = 'host=127.0.0.1 port=17414'\nprimary_slot_name = 'pg1'\nrecovery_target = ''\n"
            "recovery_target_lsn = ''\nrecovery_target_time = ''\nrecovery_target_timeline = 'latest'\n"
            "# recovery_target_time = '' (a comment stays)\n")
    assert without_replica_settings(conf) == ("include 'postgresql.base.conf'\narchive_mode = 'on'\nport = '17415'\n"
                                              "# recovery_target_time = '' (a comment stays)\n")
