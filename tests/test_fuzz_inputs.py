"""Bad input, fuzzed (hypothesis): malformed experiments, bcp.yaml, target descriptions, history
files and command lines. Whatever comes in: one line naming the problem, exit 2, no traceback,
nothing injected (no run folder, no fault event). 1,100 generated cases per run of this file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import example, HealthCheck, given, settings, strategies as st

from harness.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
VALID = yaml.safe_load((ROOT / "experiments" / "local" / "database-failure.yaml").read_text())
BCP = yaml.safe_load((ROOT / "bcp.yaml").read_text())
def fast(n: int) -> settings:
    # No deadline (shared 2-core machines), no example database written into the checkout.
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=3), max_leaves=6)


def _mutate(doc: dict, path: list, value, delete: bool) -> dict:
    """doc with the value at `path` (keys chosen by index) replaced, or deleted."""
    doc = json.loads(json.dumps(doc))
    node = doc
    for i, step in enumerate(path):
        if isinstance(node, dict) and node:
            key = sorted(node, key=str)[step % len(node)]
        elif isinstance(node, list) and node:
            key = step % len(node)
        else:
            break
        if i == len(path) - 1 or not isinstance(node[key], (dict, list)):
            if delete and isinstance(node, dict):
                del node[key]
            else:
                node[key] = value
            break
        node = node[key]
    return doc


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Nothing real is reachable: an empty stack home, a target description that names nothing."""
    monkeypatch.setenv("GAMEDAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GAMEDAY_TARGET", str(tmp_path / "home" / "target.json"))
    monkeypatch.delenv("GAMEDAY_OBJECTIVES", raising=False)
    monkeypatch.chdir(tmp_path)  # relative paths (reports/...) land in the sandbox too
    return tmp_path


def _judge(capsys, argv: list[str], allowed=(2,)) -> tuple[int, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code in allowed, (argv, code, out, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err  # one line naming the problem
    return code, err


def _nothing_injected(sandbox: Path) -> None:
    histories = list(sandbox.rglob("history.jsonl"))
    assert not histories or not any('"kind":"fault"' in h.read_text() for h in histories)
    assert not (sandbox / "home" / "fault-ledger").exists()


@fast(400)
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=5), value=values, delete=st.booleans(),
       as_text=st.one_of(st.none(), st.text(max_size=60)))
# Found by this test in CI: a method step's tags set to `true` crashed the dry run (TypeError).
@example(path=[3, 0, 2], value=True, delete=False, as_text=None)
def test_malformed_experiments(sandbox, capsys, path, value, delete, as_text):
    f = sandbox / "exp.yaml"
    f.write_text(as_text if as_text is not None else yaml.safe_dump(_mutate(VALID, path, value, delete)))
    _judge(capsys, ["run", str(f), "--dry-run", "--reports-dir", str(sandbox / "reports")], allowed=(0, 2))
    _nothing_injected(sandbox)


@fast(300)
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=5), value=values, delete=st.booleans())
def test_malformed_bcp_yaml(sandbox, capsys, monkeypatch, path, value, delete):
    f = sandbox / "bcp.yaml"
    f.write_text(yaml.safe_dump(_mutate(BCP, path, value, delete)))
    monkeypatch.setenv("GAMEDAY_OBJECTIVES", str(f))
    _judge(capsys, ["run", str(ROOT / "experiments/local/database-failure.yaml"), "--dry-run"], allowed=(0, 2))
    _nothing_injected(sandbox)


@fast(150)
@given(doc=st.one_of(values, st.dictionaries(st.sampled_from(["kind", "api_url", "heartbeat_ledger", "home"]),
                                             values, max_size=4)), raw=st.booleans())
def test_malformed_target_descriptions(sandbox, capsys, doc, raw):
    f = sandbox / "target.json"
    f.write_text(str(doc) if raw else json.dumps(doc, default=str))
    code, err = _judge(capsys, ["heartbeat", "status", "--target", str(f)], allowed=(0, 1, 2))
    _nothing_injected(sandbox)


@fast(150)
@given(lines=st.lists(st.one_of(values.map(lambda v: json.dumps(v, default=str)), st.text(max_size=40)), max_size=6))
def test_malformed_history_files(sandbox, capsys, lines):
    run = sandbox / "run"
    run.mkdir(exist_ok=True)
    (run / "verdict.json").write_text(json.dumps({"scenario": "api-crash", "objectives": {"rto_s": 900, "rpo_s": 300}}))
    (run / "history.jsonl").write_text("\n".join(lines))
    _judge(capsys, ["report", "rejudge", str(run)], allowed=(0, 1, 2))


VOCAB = ["run", "report", "target", "heartbeat", "backup", "abort", "status", "rejudge", "quarterly", "verify",
         "--dry-run", "--quarter", "--port-base", "--interval", "--home", "--json", "2026Q4", "2026Q9", "-1", "0",
         "99999", "1e9", "nan", "--", "-x", "--bogus", "", "é", "../../etc", "experiments/local/api-crash.yaml"]


@fast(100)
@given(tokens=st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=10)), min_size=1, max_size=5))
def test_malformed_command_lines(sandbox, capsys, tokens):
    # Only verbs that validate and then touch nothing: `run` always as a dry run, `target` only
    # for status, no backup action, no abort of real runs (the sandbox home has none).
    if tokens[0] == "run":
        tokens = tokens + ["--dry-run", "--reports-dir", str(sandbox / "reports")]
    if tokens[0] == "target":
        tokens = ["target", "status", *tokens[1:]]
    if tokens[0] == "backup":
        tokens = ["backup", "--bogus", *tokens[1:]]
    if tokens[0] == "heartbeat" and len(tokens) > 1 and tokens[1] in ("start", "stop"):
        tokens = ["heartbeat", "status", *tokens[2:]]
    _judge(capsys, [*tokens, "--home", str(sandbox / "home")] if tokens[0] in ("target", "abort") else tokens,
           allowed=(0, 1, 2))
    _nothing_injected(sandbox)
