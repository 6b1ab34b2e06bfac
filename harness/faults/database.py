"""Database faults on the embedded stack: physical corruption, the accidental DELETE, the lost
primary. Each is what the BCP's "Database Corruption/Failure" and "Database Failover" scenarios
recover from:

  corrupt_table_pages   damaged data pages         → restore --backup-id latest (restore_database)
  bad_statement         a destructive statement    → point-in-time recovery to just before it
  lose_primary          the primary is gone for good → failover to the standby
  keep_failover_manual  nothing promotes by itself (the failover twins' defect; end_manual_failover)

Every fault returns a JSON-able record of exactly what it did. The bad statement also writes an
incident record, `<home>/incidents/latest.json` (harness.targets.description.incident_path), that the
point-in-time recovery reads (harness.recovery.pitr.restore_before_incident).
"""
from __future__ import annotations

import fractions
import json
import os
import signal
import struct
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness import targets
from harness.core import pgroles, procs
from harness.core.errors import first_line
from harness.faults import ha, register_undo
from harness.faults._common import effect, gone_effect, lease, local_target, positive_int, program_pid, server
from harness.faults.process import disable_restart, enable_restart
from harness.targets.description import incident_path
from harness.core.amcheck import amcheck

__all__ = ["corrupt_table_pages", "bad_statement", "lose_primary", "end_primary_loss", "keep_failover_manual",
           "end_manual_failover", "incident_record"]

LOST_PRIMARY_FILE = "lost-primary.json"  # next to the incident record
PAGE_BYTES = 8192
APP_TABLES = ("optimization_results",)


def corrupt_table_pages(table: str = "optimization_results", blocks: int = 4, nbytes: int = 256,
                        target: str | None = None, configuration: dict = None) -> dict:
    """Corrupt `blocks` old data pages of `table` on the primary, the way a failing disk or a bad
    controller would, and make the server read them back.

    A CHECKPOINT first puts every page on disk; the pages chosen are old ones (inserts land at the
    end of the table, so nothing rewrites them). In each, `nbytes` bytes from the start of the row
    nearest the middle of the page are overwritten with 0xFF. The postmaster is SIGKILLed so that
    no cached copy survives (the bytes are written while no server process runs, so none can write
    a clean copy back); supervision restarts it. Then amcheck's verify_heapam (or, failing that, a
    full read of the table) must report the damage: the evidence is returned. If the corruption did
    not take, ActivityFailed is raised, so the run is an error and never a pass.

    No rollback: the recovery is the restore (harness.recovery.database.restore_database)."""
    if table not in APP_TABLES:
        raise ActivityFailed(f"table must be one of the application tables ({', '.join(APP_TABLES)}), got {table!r}")
    blocks = positive_int(blocks, "blocks")
    nbytes = positive_int(nbytes, "nbytes")
    if nbytes > PAGE_BYTES // 2:
        raise ActivityFailed(f"nbytes must be at most {PAGE_BYTES // 2} (half a page), got {nbytes}")
    t = local_target(target)
    primary = server(t, "primary")
    data_dir = Path(primary["data_dir"])
    try:
        with psycopg.connect(primary["admin_dsn"], autocommit=True) as c:
            c.execute("checkpoint")
            relpath, size = c.execute("select pg_relation_filepath(%s::regclass), pg_relation_size(%s::regclass)",
                                      (table, table)).fetchone()
    except psycopg.Error as e:
        raise ActivityFailed(f"cannot reach the primary on port {primary['port']}: {first_line(e)}") from None
    nblocks = size // PAGE_BYTES
    # The last two pages may still receive inserts (and a full-page image in the WAL would undo
    # the damage at crash recovery): only older pages are corrupted.
    old = max(0, nblocks - 2)
    if old < 1:
        raise ActivityFailed(f"table {table} has {nblocks} page(s); at least 3 are needed to corrupt an old one "
                             f"(write some rows first)")
    chosen = _spread(old, min(blocks, old))
    datafile = data_dir / relpath
    if nblocks * PAGE_BYTES > 1 << 30:
        raise ActivityFailed(f"table {table} is larger than one 1 GB segment; only the first segment is handled")

    # Keep the server from restarting while its file is changed: the same hold a negative control uses.
    program = primary["program"]
    disable_restart(program, target=target, configuration=configuration)
    killed_at = time.time()
    try:
        postmaster = program_pid(t, program)
        os.kill(postmaster, signal.SIGKILL)
        leftovers = _end_processes_in(data_dir)
        damaged = [_smear_page(datafile, b, nbytes) for b in chosen]
    finally:
        enable_restart(program, target=target)
    ready_s = _wait_accepting(primary["admin_dsn"], 60.0)
    if ready_s is None:
        raise ActivityFailed(f"the primary on port {primary['port']} did not accept connections within 60 s "
                             f"after the corruption; see {t['logs_dir']}/{program}.log")
    evidence = _corruption_evidence(primary["admin_dsn"], table)
    if not evidence["detected"]:
        raise ActivityFailed(f"the corruption of {len(damaged)} page(s) of {table} did not take: "
                             f"verify_heapam and a full read found nothing ({evidence['detail']})")
    return {"table": table, "file": str(datafile), "pages_in_table": nblocks,
            "damaged": damaged, "postmaster_killed": postmaster, "leftovers_killed": leftovers,
            "killed_at": killed_at, "landed_at": killed_at, "accepting_again_after_s": round(ready_s, 3),
            "evidence": evidence,
            "effect": effect(True, evidence["detail"])}


def bad_statement(sql: str | None = None, fraction: float = 0.5, target: str | None = None) -> dict:
    """The accidental DELETE: run a destructive statement against the application's database.

    By default it deletes `fraction` of the application rows, chosen by hash of the request id
    (fraction 0.5 deletes the rows whose hash is even). `sql` replaces the statement (any
    destructive SQL the application role may run). The UTC wall-clock time just before it ran
    (microseconds), its transaction id, the rows before and the keys it deleted are recorded in
    `<home>/incidents/latest.json` (plus a stamped copy): point-in-time recovery
    (harness.recovery.pitr.restore_before_incident) rewinds to that time. No rollback: the
    recovery is the restore."""
    t = local_target(target)
    custom = sql is not None
    if not custom:
        try:
            frac = fractions.Fraction(float(fraction)).limit_denominator(10000)
        except (TypeError, ValueError, OverflowError):
            raise ActivityFailed(f"fraction must be a number between 0 and 1, got {fraction!r}") from None
        if not 0 < frac <= 1:
            raise ActivityFailed(f"fraction must be above 0 and at most 1, got {fraction!r}")
        # mod(hash, 2) < 1 is "even hash": the rows deleted are a known, reproducible fraction.
        sql = (f"delete from optimization_results "
               f"where mod(abs(hashtext(request_id)::bigint), {frac.denominator}) < {frac.numerator} "
               f"returning request_id")
    elif not isinstance(sql, str) or not sql.strip():
        raise ActivityFailed(f"sql must be a non-empty SQL statement, got {sql!r}")
    try:
        with psycopg.connect(t["app_dsn"]) as c:
            port = c.info.port
            rows_before = c.execute("select count(*) from optimization_results").fetchone()[0]
            c.commit()
            # Repeatable read: the statement sees the snapshot the transaction's first query takes,
            # and the PITR target is stamped after that query. So every row the statement can
            # delete was committed before the target, and the recovery must bring each one back.
            # Under read committed the statement took a newer snapshot of its own and could delete
            # a load write committed after the stamp, which PITR rightly leaves out: a false FAIL.
            c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            xid, server_before = c.execute("select txid_current(), clock_timestamp()").fetchone()
            started = datetime.now(timezone.utc)  # after the snapshot, before the statement: the PITR target
            cur = c.execute(sql)
            while cur.nextset():  # a script of several statements: its last result says what it did
                pass
            deleted_keys = [r[0] for r in cur.fetchall()] if cur.description else []
            affected = cur.rowcount
            c.commit()
            committed = datetime.now(timezone.utc)
    except psycopg.Error as e:
        raise ActivityFailed(f"the bad statement could not run: {first_line(e)} (statement: {sql[:200]})") from None
    record = {
        "incident": "bad_statement",
        "sql": sql,
        "fraction": None if custom else float(fraction),
        "started_at": started.isoformat(timespec="microseconds"),
        "server_clock_before": server_before.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "committed_at": committed.isoformat(timespec="microseconds"),
        "xid": int(xid),
        "port": port,
        "rows_before": rows_before,
        "rows_affected": affected,
        "deleted_keys_count": len(deleted_keys) if deleted_keys else affected,
    }
    _write_incident(t, record, deleted_keys)
    return {**record, "landed_at": committed.timestamp(), "effect": effect(bool(affected and affected > 0),
                                       f"the statement changed {affected} of {rows_before} rows")}


def lose_primary(target: str | None = None, configuration: dict = None) -> dict:
    """The primary is lost for good: its restart is disabled (hold file) and its postmaster and
    every backend are SIGKILLed, so it stays down. The recovery is the failover to the standby
    (harness.recovery.failover.failover); `end_primary_loss` is the rollback. On the patroni tier
    (the embedded stack's, and the container target's) the primary is a node: the leader's
    Patroni agent goes with its server, and the node stays down (harness.faults.ha.lose_the_leader_node)."""
    if targets.for_activity(target).data.get("db_tier") == "patroni":
        lost = ha.lose_the_leader_node(target, configuration)
        landed = time.time()
        pids = [p for p in (lost["agent_pid"], *lost["postgres_pids"]) if p]
        return {**lost, "landed_at": landed, "effect": gone_effect(pids, f"the leader node {lost['node']}")}
    t = local_target(target)
    primary = server(t, "primary")
    program = primary["program"]
    hold = disable_restart(program, target=target, configuration=configuration)
    try:
        pid = program_pid(t, program)
    except ActivityFailed:
        enable_restart(program, target=target)
        raise
    os.kill(pid, signal.SIGKILL)
    landed = time.time()
    leftovers = _end_processes_in(Path(primary["data_dir"]))
    record = {"program": program, "port": primary["port"], "data_dir": primary["data_dir"], "pid": pid,
              "leftovers_killed": leftovers, "hold": hold["hold"], "at": time.time(), "landed_at": landed}
    gone = gone_effect([pid], f"the primary's postmaster ({program})")
    still = procs.pids_in(primary["data_dir"])
    evidence = gone if not still else effect(False, f"{len(still)} processes still run in {primary['data_dir']}")
    lost = _lost_primary_path(t)
    lost.parent.mkdir(parents=True, exist_ok=True)
    lost.write_text(json.dumps(record, indent=2) + "\n")
    # Replace disable_restart's plain undo with the guarded release: after a failover that got
    # halfway, blindly starting the old primary would make two primaries.
    other = [t[r]["port"] for r in ("primary", "standby") if t[r]["program"] != program]
    register_undo(f"hold:{program}", lambda: end_primary_loss(target),
                  spec={"kind": "release_primary_hold", "path": hold["hold"], "data_dir": primary["data_dir"],
                        "other_port": other[0] if other else None, "passfile": pgroles.passfile_of(t)},
                  **lease(t, configuration))
    return {**record, "effect": evidence}


def end_primary_loss(target: str | None = None) -> dict:
    """Rollback of lose_primary: release the hold that keeps the lost primary's program down.

    After a failover the old primary's folder is a rebuilt standby and may start. If no failover
    happened, the old primary comes back as the primary. But if another server was promoted while
    the old primary's folder is still a primary's (no standby.signal), starting it would make two
    primaries: then the hold stays and the answer says why (rebuild it as a standby first)."""
    if targets.for_activity(target).data.get("db_tier") == "patroni":
        # The node comes back and Patroni makes it a replica (pg_rewind).
        return ha.bring_back_lost_nodes(target=target)
    t = local_target(target)
    path = _lost_primary_path(t)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"released": None, "detail": "no primary loss recorded"}
    program, data_dir = record["program"], Path(record["data_dir"])
    other_port = [t[r]["port"] for r in ("primary", "standby") if t[r]["program"] != program]
    promoted_elsewhere = bool(other_port) and pgroles.accepts_writes(other_port[0], pgroles.passfile_of(t))
    if promoted_elsewhere and not (data_dir / "standby.signal").exists():
        return {"released": False, "program": program,
                "detail": f"another server (port {other_port[0]}) is now the primary and {data_dir} is still a "
                          f"primary's folder: left fenced; rebuild it as a standby before starting it"}
    result = enable_restart(program, target=target)
    path.unlink(missing_ok=True)
    return {"released": result["released"], "program": program,
            "detail": "hold released: supervision starts the server again" if result["released"] else
                      "no hold left (a failover already released it)"}


def keep_failover_manual(target: str | None = None, configuration: dict = None) -> dict:
    """The defect of a lost primary's negative twins: nothing promotes the standby by itself. On
    the patroni tier that is Patroni's maintenance mode (harness.faults.ha.pause_failover, undone
    by end_manual_failover or the run's lease); the plain tier has no automatic failover at all,
    so there is nothing to switch off."""
    if targets.for_activity(target).data.get("db_tier") == "patroni":
        return ha.pause_failover(target, configuration)
    return {"paused": None, "detail": "the plain tier promotes only through the runbook: nothing to switch off"}


def end_manual_failover(target: str | None = None) -> dict:
    """Rollback of keep_failover_manual: Patroni acts again (a leader lost meanwhile is replaced)."""
    if targets.for_activity(target).data.get("db_tier") == "patroni":
        return ha.resume_failover(target)
    return {"paused": None}


def incident_record(target: str | None = None) -> dict:
    """The latest incident record (`<home>/incidents/latest.json`) written by bad_statement."""
    path = incident_path(local_target(target))
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ActivityFailed(f"no incident recorded: {path} does not exist (run bad_statement first)") from None
    except (OSError, ValueError) as e:
        raise ActivityFailed(f"incident record {path} is unreadable: {e}") from None


# ---------------------------------------------------------------------------------------------
# Internals

def _spread(n: int, k: int) -> list[int]:
    """k distinct block numbers spread evenly over 0..n-1."""
    return sorted({(2 * i + 1) * n // (2 * k) for i in range(k)})


def _smear_page(datafile: Path, block: int, nbytes: int) -> dict:
    """Overwrite nbytes of one page with 0xFF, from the start of the row nearest the page's middle
    (a row header is hit, so amcheck can see it)."""
    with open(datafile, "r+b") as f:
        f.seek(block * PAGE_BYTES)
        page = f.read(PAGE_BYTES)
        if len(page) != PAGE_BYTES:
            raise ActivityFailed(f"{datafile} has no complete page {block}")
        lower = struct.unpack_from("<H", page, 12)[0]
        items = []
        for off in range(24, min(lower, PAGE_BYTES), 4):
            (lp,) = struct.unpack_from("<I", page, off)
            lp_off, lp_flags, lp_len = lp & 0x7FFF, (lp >> 15) & 3, lp >> 17
            if lp_flags == 1 and lp_len and lp_off + lp_len <= PAGE_BYTES:
                items.append((abs(lp_off + lp_len // 2 - PAGE_BYTES // 2), lp_off, (off - 24) // 4 + 1))
        if items:
            _, start, item = min(items)
        else:
            start, item = PAGE_BYTES // 2 - nbytes // 2, None
        start = min(start, PAGE_BYTES - nbytes)
        f.seek(block * PAGE_BYTES + start)
        f.write(b"\xff" * nbytes)
        f.flush()
        os.fsync(f.fileno())
    return {"block": block, "page_offset": start, "file_offset": block * PAGE_BYTES + start, "bytes": nbytes,
            "row_item": item}


def _end_processes_in(folder: Path) -> list[int]:
    """SIGKILL every process running in a data folder (postmaster, backends) and wait until they
    are gone, as the stack's launcher does before a restart."""
    try:
        return procs.end_processes_in(folder)
    except TimeoutError as e:
        raise ActivityFailed(f"PostgreSQL {e}") from None


def _wait_accepting(dsn: str, timeout_s: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            with psycopg.connect(dsn, connect_timeout=1) as c:
                c.execute("select 1")
            return time.monotonic() - start
        except psycopg.Error:
            time.sleep(0.1)
    return None


def _corruption_evidence(admin_dsn: str, table: str) -> dict:
    """What amcheck (verify_heapam) and then a full read of the table say now."""
    found: dict = {"detected": False, "verify_heapam": None, "full_read": None}
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as c:
            checked = amcheck(c, table)
        if checked.problems:  # the heap's own damage; an index or key problem is not this fault's evidence
            found.update(detected=True, verify_heapam=checked.problems[:6], problems=checked.problem_count,
                         damaged_blocks=sorted({p["block"] for p in checked.problems}))
        else:
            found["verify_heapam"] = [] if checked.ok else f"error: {checked.detail}"
    except psycopg.Error as e:  # amcheck failing to run is no evidence of corruption
        found["verify_heapam"] = f"error: {first_line(e)}"
    if not found["detected"]:
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as c:
                n = c.execute(f"select count(*), sum(length(image_features::text) + length(parameters::text)) "
                              f"from {table}").fetchone()
                found["full_read"] = f"read {n[0]} rows without error"
        except psycopg.Error as e:
            found["full_read"] = f"error: {first_line(e)}"
            # Only the server's own "data corrupted" class counts (XX001/XX002), not a lost connection.
            found["detected"] = (e.sqlstate or "").startswith("XX00")
    if found["detected"]:
        what = found["verify_heapam"]
        found["detail"] = (f"verify_heapam reported {found['problems']} problem(s) in blocks {found['damaged_blocks']}, "
                           f"first: {what[0]['msg']}"
                           if isinstance(what, list) and what else f"full read: {found['full_read']}")
    else:
        found["detail"] = f"verify_heapam: {'clean' if isinstance(found['verify_heapam'], list) else found['verify_heapam']}; " \
                          f"full read: {found['full_read']}"
    return found


def _lost_primary_path(t: dict) -> Path:
    return incident_path(t).with_name(LOST_PRIMARY_FILE)


def _write_incident(t: dict, record: dict, deleted_keys: list[str]) -> Path:
    latest = incident_path(t)
    folder = latest.parent
    folder.mkdir(parents=True, exist_ok=True)
    stamp = record["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z").replace("+00:00", "Z")
    keys_file = folder / f"{stamp}-deleted-keys.txt"
    keys_file.write_text("".join(f"{k}\n" for k in deleted_keys))
    record["deleted_keys_file"] = str(keys_file)
    record["record_file"] = str(latest)
    text = json.dumps(record, indent=2) + "\n"
    (folder / f"{stamp}-bad-statement.json").write_text(text)
    tmp = latest.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, latest)
    return latest
