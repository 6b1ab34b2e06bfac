"""Runs every negative control (experiments/negative/ on the embedded stack of the default home;
experiments/ha/negative/ on a second patroni-tier stack in a home of its own, side by side; then,
in that second thread, the HA twins again and experiments/containers/negative/ on the container
target, whose Patroni cluster runs in containers) through `gameday run` and checks that each
one came out FAIL for the reason it names: every criterion in its `expect_failure` failed. A twin
that comes out PASS, ERROR or INTERRUPTED, or FAIL on other criteria only, proves nothing about
the criterion it was built for. A harness that cannot fail is worthless: exit 0 only if every
twin failed as it must."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wrong_reason(verdict: dict) -> str | None:
    """Why a negative control's verdict does not prove what it must, or None when it does."""
    status = verdict.get("status")
    if status != "fail":
        return f"{str(status).upper()} ({verdict.get('reason')})"
    expected = verdict.get("expect_failure") or []
    if not expected:
        return "FAIL, but the twin names no criterion it must fail (extensions.bcp.expect_failure)"
    failed = {c.get("name") for c in verdict.get("criteria") or [] if not c.get("passed")}
    missing = [name for name in expected if name not in failed]
    if missing:
        return (f"FAIL for another reason: {', '.join(missing)} passed; failed: {', '.join(sorted(failed)) or 'none'}")
    return None


def nothing_injected(verdict: dict) -> bool:
    """The twin never reached its fault: the target was not in steady state before it (what an
    earlier twin left behind, or the machine), so it says nothing about its criterion yet."""
    return verdict.get("status") == "error" and str(verdict.get("reason", "")).startswith("target not healthy before fault")


# The HA scenarios' twins run in a second home of the patroni tier (the Makefile's HA_HOME), on its
# own ports, beside the BCP scenarios' twins in the default home.
HA_HOME = os.environ.get("HA_HOME", ".gameday-ha")
HA_PORT_BASE = os.environ.get("HA_PORT_BASE", "15420")
# The container target's twins run after the HA twins, in that same thread (the BCP twins take
# longer than both): in a home of their own, on their own ports.
CONTAINERS_HOME = os.environ.get("CONTAINERS_HOME", ".gameday-containers")
CONTAINERS_PORT_BASE = os.environ.get("CONTAINERS_PORT_BASE", "17440")


def gameday(*args: str, out=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, stdout=out,
                          stderr=subprocess.STDOUT if out else None)


def run(files: list[str], reports: Path, home: str | None = None, out=None) -> list[dict]:
    # No calibration run: these runs are evidence about the harness itself, never about the plan.
    gameday("run", *files, "--reports-dir", str(reports), "--calibration-s", "0", *(["--home", home] if home else []),
            out=out)
    return [json.loads(p.read_text()) for p in sorted(reports.rglob("verdict.json"))]


def run_ha(files: list[str], reports: Path, log: Path) -> list[dict]:
    """The HA twins on the patroni tier: brought up for them, and down again unless it was up.
    What they print goes to `log` (they run beside the BCP scenarios' twins)."""
    return run_on(("--db-tier", "patroni", "--home", HA_HOME, "--port-base", HA_PORT_BASE), files, reports, log)


def run_containers(files: list[str], reports: Path, log: Path) -> list[dict]:
    """The container target's twins (and the HA twins against its Patroni cluster in containers)."""
    return run_on(("--kind", "containers", "--home", CONTAINERS_HOME, "--port-base", CONTAINERS_PORT_BASE),
                  files, reports, log)


def run_on(up_args: tuple[str, ...], files: list[str], reports: Path, log: Path) -> list[dict]:
    """`files` on the target `gameday target up up_args` brings: down again after, unless it was up."""
    if not files:
        return []
    home = up_args[up_args.index("--home") + 1]
    with open(log, "a") as out:
        was_up = subprocess.run([sys.executable, "-m", "harness.cli", "target", "status", "--home", home], cwd=ROOT,
                                capture_output=True).returncode == 0
        if gameday("target", "up", *up_args, out=out).returncode:
            print(f"  !! the target did not come up in {home}: its {len(files)} twin(s) did not run", file=out)
            return []
        try:
            return run(files, reports, home=home, out=out)
        finally:
            if not was_up:
                gameday("target", "down", "--home", home, out=out)


def main() -> int:
    files = sorted(str(p) for p in (ROOT / "experiments" / "negative").glob("*.yaml"))
    ha_files = sorted(str(p) for p in (ROOT / "experiments" / "ha" / "negative").glob("*.yaml"))
    container_files = ha_files + sorted(str(p) for p in (ROOT / "experiments" / "containers" / "negative").glob("*.yaml"))
    (ROOT / "reports").mkdir(exist_ok=True)
    reports = Path(tempfile.mkdtemp(prefix="negative-controls-", dir=ROOT / "reports"))
    # The two tiers run side by side: each has its own stack, ports and home, and a twin is
    # evidence about the harness (it must FAIL), not a measurement, so sharing the machine's cores
    # cannot make one pass. One after the other they took about 13 of CI's 40 minutes.
    log, clog = reports / "patroni.log", reports / "containers.log"
    print(f"negative controls: {len(ha_files)} HA twin(s) run beside the others on the patroni tier, then "
          f"{len(container_files)} on the container target; their output follows the others' (and is in "
          f"{log.relative_to(ROOT)}, {clog.relative_to(ROOT)})", flush=True)

    def beside() -> tuple[list[dict], list[dict]]:
        return run_ha(ha_files, reports / "patroni", log), run_containers(container_files, reports / "containers", clog)
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(beside)
        verdicts = run(files, reports / "bcp")
        on_ha, on_containers = second.result()
    print(f"\n--- the HA twins, on the patroni tier ({HA_HOME}) ---\n{log.read_text() if log.exists() else ''}", flush=True)
    print(f"\n--- on the container target ({CONTAINERS_HOME}) ---\n{clog.read_text() if clog.exists() else ''}", flush=True)
    # Where each verdict ran, so that a twin run again runs where it ran first.
    where_run = [run] * len(verdicts) + [run_ha] * len(on_ha) + [run_containers] * len(on_containers)
    verdicts += on_ha + on_containers
    # A twin that injected nothing is run once more, alone, after the others: it has not yet shown
    # whether its criterion can fail. Its first verdict is printed (the probe that missed, and what
    # it answered) and stays in the reports; only a second "nothing injected" fails the check.
    for i, v in enumerate(verdicts):
        if nothing_injected(v) and v.get("experiment"):
            print(f"\n{v.get('scenario')}: nothing was injected ({v.get('reason')}); running it once more, alone")
            where = reports / f"again-{i}-{v.get('scenario')}"
            if where_run[i] is run:
                again = run([v["experiment"]], where)
            else:  # its target, brought up again for it
                again = where_run[i]([v["experiment"]], where, where.with_suffix(".log"))
                print(where.with_suffix(".log").read_text(), flush=True)
            verdicts[i] = again[0] if again else v
    bad = [(v, why) for v in verdicts if (why := wrong_reason(v))]
    print(f"\nnegative controls: {len(verdicts)} run, {len(verdicts) - len(bad)} failed for the criteria they name")
    for v, why in bad:
        print(f"  !! {v.get('scenario')}: {why}")
    expected = len(files) + len(ha_files) + len(container_files)
    if len(verdicts) != expected:
        print(f"  !! {expected} negative runs but {len(verdicts)} verdicts")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
