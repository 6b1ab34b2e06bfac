"""`make negative` judges each twin by the criteria it names (scripts/check_negative_controls.py)."""
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "check_negative_controls", Path(__file__).resolve().parents[1] / "scripts" / "check_negative_controls.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def _verdict(status="fail", expect=("rto",), failed=("rto",)):
    names = ("rto", "rpo", "critical_functions", "data_integrity", "recovery_procedure", "steady_state_restored")
    return {"scenario": "database-failure", "status": status, "reason": "r", "expect_failure": list(expect),
            "criteria": [{"name": n, "passed": n not in failed} for n in names]}


def test_a_twin_failing_on_its_named_criterion_is_right():
    assert check.wrong_reason(_verdict(failed=("rto", "rpo"))) is None


def test_a_twin_failing_for_another_reason_is_wrong():
    why = check.wrong_reason(_verdict(expect=("rto",), failed=("rpo",)))
    assert why and "another reason" in why and "rto passed" in why


def test_a_twin_that_passes_or_errs_is_wrong():
    assert check.wrong_reason(_verdict(status="pass", failed=())).startswith("PASS")
    assert check.wrong_reason(_verdict(status="error")).startswith("ERROR")


def test_a_twin_naming_no_criterion_is_wrong():
    assert "names no criterion" in check.wrong_reason(_verdict(expect=()))


def test_only_a_twin_that_injected_nothing_is_run_again():
    not_steady = {**_verdict(status="error"), "reason": "target not healthy before fault: the steady-state hypothesis "
                                                          "did not hold (api-ready: answered False), so nothing was tested"}
    assert check.nothing_injected(not_steady)
    # A fault that failed, a run interrupted, a twin that passed: each already says something, and
    # running it again until it comes out right would make the check unable to fail.
    assert not check.nothing_injected({**_verdict(status="error"), "reason": "fault action failed: stop-wal-archiving"})
    assert not check.nothing_injected({**_verdict(status="interrupted"), "reason": "target not healthy before fault"})
    assert not check.nothing_injected(_verdict(status="pass", failed=()))
    assert not check.nothing_injected(_verdict())
