"""RPO exposure (issue 12.3) without a stack: the exporter's arithmetic, the early-warning rule
against the BCP objective, the rpo_warning criterion (passing and failing) and the quarter's
distribution, all on synthetic data."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.run import objectives as objectives_mod
from harness.checkers import exposure_distribution, verdict
from harness.targets.embedded import monitoring
from harness.targets.embedded.rpo_exporter import archive_exposure_s, segment_end_lsn, standby_exposure_s
from synthetic import healthy_run, objectives

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20
WARNING = {"alert": "SvgAiRpoAtRisk"}


# -- the exporter's arithmetic ------------------------------------------------------------------

def test_segment_end_is_the_lsn_after_the_segment():
    assert segment_end_lsn("000000010000000000000003", MB) == 4 * MB
    # Segment numbers carry into the log number: 4096 one-MB segments per 4 GB "log".
    assert segment_end_lsn("000000020000000100000002", MB) == (4096 + 3) * MB
    assert segment_end_lsn("00000002.history", MB) is None
    assert segment_end_lsn("000000010000000000000003.00000028.backup", MB) is None
    assert segment_end_lsn(None, MB) is None


def test_archive_exposure_is_the_age_of_the_last_archived_segment_unless_nothing_is_left_to_archive():
    assert archive_exposure_s(100.0, 70.0, written_lsn=5 * MB + 10, archived_end_lsn=5 * MB) == 30.0
    # An idle primary: everything written is archived, nothing is at risk however old the archive.
    assert archive_exposure_s(100.0, 10.0, written_lsn=5 * MB, archived_end_lsn=5 * MB) == 0.0
    assert archive_exposure_s(100.0, None, written_lsn=5 * MB + 10, archived_end_lsn=None) is None


def test_standby_exposure_is_zero_when_caught_up_however_old_its_last_commit():
    assert standby_exposure_s(100.0, replay_lsn=900, primary_lsn=900, last_replay_epoch=10.0) == 0.0
    assert standby_exposure_s(100.0, replay_lsn=800, primary_lsn=900, last_replay_epoch=97.5) == 2.5
    assert standby_exposure_s(100.0, replay_lsn=None, primary_lsn=900, last_replay_epoch=None) is None


# -- the early warning ---------------------------------------------------------------------------

def test_the_alert_watches_the_bcp_objective_and_warns_well_before_it():
    bcp = objectives_mod.load(str(ROOT / "bcp.yaml"))
    assert monitoring.RPO_OBJECTIVE_S == bcp.defaults["rpo_s"]
    rules = yaml.safe_load(monitoring.RULES)
    by_name = {r.get("alert") or r.get("record"): r for g in rules["groups"] for r in g["rules"]}
    rule = by_name["SvgAiRpoAtRisk"]
    assert rule["expr"] == f"max by (way) (svg_ai_rpo_exposure_seconds) > {monitoring.RPO_WARNING_S:g}"
    # Early: its threshold plus `for:` must leave most of the objective to act.
    assert monitoring.RPO_WARNING_S + 2 < 0.2 * bcp.defaults["rpo_s"]
    assert by_name["svg_ai:rpo_exposure_above_objective:bool"]["expr"].endswith(f"> bool {bcp.defaults['rpo_s']}")


def test_the_game_day_objective_of_archive_stopped_only_tightens_the_bcps():
    bcp = objectives_mod.load(str(ROOT / "bcp.yaml"))
    experiment = yaml.safe_load((ROOT / "experiments" / "local" / "archive-stopped.yaml").read_text())
    resolved = objectives_mod.for_experiment(bcp, experiment)
    assert monitoring.RPO_WARNING_S < resolved["rpo_s"] < bcp.defaults["rpo_s"]
    assert "rpo_warning" in objectives_mod.criterion_names(resolved)
    [probe] = [p for p in experiment["steady-state-hypothesis"]["probes"] if p["name"] == "rpo-exposure-under-warning"]
    assert probe["provider"]["arguments"]["max_s"] == monitoring.RPO_WARNING_S  # steady: the alert would not fire


# -- the rpo_warning criterion --------------------------------------------------------------------

def warned(**fields) -> dict:
    h = healthy_run(outage=None)
    if fields:
        h.add("rpo_exposure", 31, alert="SvgAiRpoAtRisk", **fields)
    v = verdict(h.events(), objectives(rpo_s=60, rpo_warning=WARNING))
    return next(c for c in v["criteria"] if c["name"] == "rpo_warning") | {"_verdict": v}


def test_an_alert_before_the_objective_passes():
    c = warned(fired=True, latency_s=31.3, exposure_at_alert_s=32.1, max_exposure_s=33.0)
    assert c["passed"] and c["measured"] == 32.1
    assert "fired 31.3 s after the fault at an exposure of 32.1 s, 27.9 s before the 60 s objective" in c["detail"]
    assert c["_verdict"]["measured"]["rpo_exposure_at_alert_s"] == 32.1


def test_an_alert_after_the_objective_fails():
    c = warned(fired=True, latency_s=70.0, exposure_at_alert_s=71.0, max_exposure_s=75.0)
    assert not c["passed"] and "only when the exposure was 71 s, not under the 60 s objective" in c["detail"]
    assert c["_verdict"]["status"] == "fail"


def test_a_silent_monitoring_fails():
    c = warned(fired=False, max_exposure_s=5.2, detail="alert never fired")
    assert not c["passed"] and "SvgAiRpoAtRisk never fired; the exposure Prometheus saw reached 5.2 s" in c["detail"]


@pytest.mark.parametrize("fields, words", [
    ({}, "no RPO exposure evidence recorded"),
    ({"fired": False, "error": "Prometheus could not be asked: ConnectionError"}, "could not be read"),
    ({"fired": True, "latency_s": 30.0, "exposure_at_alert_s": None}, "exposure at that moment is unknown"),
])
def test_missing_evidence_is_never_a_pass(fields, words):
    c = warned(**fields)
    assert not c["passed"] and words in c["detail"]


# -- the quarter's distribution -------------------------------------------------------------------

def test_distribution_and_time_above_the_objective():
    values = [1.0, 2.0, 3.0, 4.0, 400.0, 500.0] + [2.5] * 14  # 20 samples, 60 s apart
    d = exposure_distribution(values, step_s=60, objective_s=300)
    assert (d["n"], d["median_s"], d["max_s"]) == (20, 2.5, 500.0)
    assert d["p95_s"] == 400.0
    assert d["time_above_objective_s"] == 120.0  # two samples above: estimated a step each
    # With the TSDB's own share of samples above the objective per step, the time is exact.
    exact = exposure_distribution(values, step_s=60, objective_s=300, above_fraction=[0.5, 0.25] + [0.0] * 18)
    assert exact["time_above_objective_s"] == 45.0
    assert exposure_distribution([], 60, 300)["median_s"] is None


def test_the_quarter_reads_prometheus_from_its_lowest_timestamp_and_says_when_it_cannot(monkeypatch):
    from datetime import datetime, timezone

    from harness.report import exposure

    asked = []

    def fake_query(url, promql, timeout_s=2.0, at=None):
        return [{"metric": {}, "value": [0, "1000"]}]  # the TSDB starts at epoch 1000

    def fake_range(url, promql, start, end, step_s, timeout_s=30.0):
        asked.append((promql, start, end, step_s))
        if promql.startswith("max_over_time"):
            return [{"metric": {"way": "wal_archive"}, "values": [[1000, "4"], [1060, "320"]]}]
        if promql.startswith("avg_over_time"):
            return [{"metric": {"way": "wal_archive"}, "values": [[1000, "0"], [1060, "0.25"]]}]
        return [{"metric": {"way": "wal_archive"}, "values": [[1000, "3"], [1060, "310"]]}]

    monkeypatch.setattr(exposure, "query", fake_query)
    monkeypatch.setattr(exposure, "query_range", fake_range)
    start = datetime.fromtimestamp(0, timezone.utc)
    q = exposure.quarter_exposure("http://prometheus", start, datetime.fromtimestamp(10**7, timezone.utc), now=1120.0)
    assert q["error"] is None and q["step_s"] == 1 and q["from"].startswith("1970-01-01T00:16:40")
    assert all(a[1] == 1000.0 and a[2] == 1120.0 for a in asked)  # from the TSDB's start, up to now
    d = q["ways"]["wal_archive"]
    assert d["max_s"] == 320.0 and d["time_above_objective_s"] == 0.25
    assert "no Prometheus" in exposure.quarter_exposure(None, start, start)["error"]

    def down(*a, **k):
        raise ConnectionError("refused")

    monkeypatch.setattr(exposure, "query", down)
    assert "could not be asked: refused" in exposure.quarter_exposure("http://x", start, start, now=5.0)["error"]


class _Rows:
    """A stand-in for a psycopg connection that answers each execute() with the next row."""

    def __init__(self, *rows):
        self.rows = list(rows)

    def execute(self, sql):
        return self

    def fetchone(self):
        return self.rows.pop(0)


def test_a_statistics_reset_never_moves_the_archives_point_backwards():
    from harness.targets.embedded.rpo_exporter import Facts
    f = Facts()
    f._read_primary(_Rows((5 * MB + 100, "000000010000000000000004", 1000.0, 0, MB)), now=1001.0)
    assert f.exposures(1010.0) == {"wal_archive": 10.0}
    # A crash resets pg_stat_archiver: no archival known. What the archive held is still all it holds.
    f._read_primary(_Rows((5 * MB + 900, None, None, 0, MB)), now=1020.0)
    assert f.exposures(1030.0) == {"wal_archive": 30.0}
    # Archiving again, and caught up: nothing written is missing from the archive.
    f._read_primary(_Rows((6 * MB, "000000010000000000000005", 1040.0, 0, MB)), now=1041.0)
    f._read_standby(_Rows((6 * MB, 1039.0)), now=1041.0)
    assert f.exposures(1100.0) == {"wal_archive": 0.0, "standby": 0.0}


def test_after_an_idle_spell_the_first_write_is_not_an_hour_at_risk():
    from harness.targets.embedded.rpo_exporter import Facts
    f = Facts()
    # Idle for an hour: the last archival and the last replayed commit are an hour old, all caught up.
    f._read_primary(_Rows((6 * MB, "000000010000000000000005", 1000.0, 0, MB)), now=4600.0)
    f._read_standby(_Rows((6 * MB, 999.0)), now=4600.0)
    assert f.exposures(4600.5) == {"wal_archive": 0.0, "standby": 0.0}
    # A write lands: the archive and the standby last held everything at the previous reading.
    f._read_primary(_Rows((6 * MB + 50, "000000010000000000000005", 1000.0, 0, MB)), now=4601.0)
    f._read_standby(_Rows((6 * MB, 999.0)), now=4601.0)
    assert f.exposures(4601.5) == {"wal_archive": 1.5, "standby": 1.5}


def test_the_wal_an_idle_primary_writes_is_no_data_at_risk():
    """An idle primary writes WAL (running-transaction snapshots) that archive_timeout does not
    switch out: while no write transaction begins, nothing is at risk, however long it lasts (the
    exposure once grew a second a second behind a held-down API and failed the next steady state)."""
    from harness.targets.embedded.rpo_exporter import Facts
    f = Facts()
    f._read_primary(_Rows((6 * MB, "000000010000000000000005", 1000.0, 0, MB, 742)), now=1001.0)  # caught up
    for now in range(1002, 1100):  # only unimportant WAL: the position moves, the next xid does not
        f._read_primary(_Rows((6 * MB + 40 * (now - 1001), "000000010000000000000005", 1000.0, 0, MB, 742)), now=now)
    assert f.exposures(1099.5) == {"wal_archive": 0.5}
    # A write transaction begins and its WAL is not archived: from then on it is at risk.
    f._read_primary(_Rows((6 * MB + 9000, "000000010000000000000005", 1000.0, 0, MB, 743)), now=1100.0)
    assert f.exposures(1130.0) == {"wal_archive": 31.0}
