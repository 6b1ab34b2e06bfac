"""harness.run.steady_state.check outside Chaos Toolkit's run: every probe is asked (not only up to
the first miss) and the answer says which missed and with what, so that a game day's "the next
experiment's steady state does not hold" can be diagnosed from its log alone."""
from __future__ import annotations

from harness.run import steady_state


def _probe(name: str, path: str, tolerance=True) -> dict:
    return {"type": "probe", "name": name, "tolerance": tolerance,
            "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": path}}}


def test_every_probe_is_asked_and_the_misses_are_named_with_their_answers(tmp_path):
    experiment = {"steady-state-hypothesis": {"title": "t", "probes": [
        _probe("gone", str(tmp_path / "absent")), _probe("here", str(tmp_path)), _probe("also-gone", str(tmp_path / "x"))]}}
    answer = steady_state.check(experiment)
    assert answer["met"] is False
    assert [p["name"] for p in answer["probes"]] == ["gone", "here", "also-gone"]
    assert answer["detail"] == "not within tolerance: gone (answered False); also-gone (answered False)"


def test_a_hypothesis_that_holds_says_so(tmp_path):
    answer = steady_state.check({"steady-state-hypothesis": {"title": "t", "probes": [_probe("here", str(tmp_path))]}})
    assert answer == {"met": True, "probes": [{"name": "here", "met": True, "output": True}],
                      "detail": "every probe within tolerance"}
