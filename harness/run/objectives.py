"""BCP objectives and success criteria, per scenario (bcp.yaml).

    load(path)                                → Objectives (validated; errors name file, field and value)
    resolve(objectives, scenario, overrides)  → the dict harness.checkers.verdict() judges against
    from_extension(experiment)                → (scenario, overrides) from an experiment's `bcp` extension
    for_experiment(objectives, experiment)    → resolve(objectives, *from_extension(experiment))

Every problem raises ObjectivesError with one line saying what is wrong, where, and with which
value, so a bad file stops a game day before any fault is injected.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from harness.core.paths import PROJECT_ROOT

__all__ = ["ObjectivesError", "Objectives", "SEVERITIES", "load", "resolve", "from_extension", "for_experiment", "recorder_settings",
           "bcp_extension", "expected_failures", "criterion_names", "CRITERIA", "stop_conditions",
           "STOP_CONDITION_KINDS",
           "DEFAULT_PATH", "OBJECTIVE_FIELDS"]

DEFAULT_PATH = "bcp.yaml"


class ObjectivesError(ValueError):
    """bcp.yaml or an experiment's bcp extension is missing or malformed."""


@dataclass(frozen=True)
class Objectives:
    """A validated bcp.yaml: `defaults` (every objective field), `scenarios` (id → fields) and the
    BCP's `escalation_matrix` (severity → notify_s, respond_s; empty when the file has none)."""
    path: str
    defaults: dict
    scenarios: dict
    escalation_matrix: dict = field(default_factory=dict)

    def scenario_ids(self) -> list[str]:
        return sorted(self.scenarios)


def load(path: str = DEFAULT_PATH) -> Objectives:
    """Read and validate bcp.yaml. Raises ObjectivesError (one line) if it is missing or malformed."""
    name = str(path)
    p = Path(path)
    if not p.exists() and name == DEFAULT_PATH:
        # Run from elsewhere than the project root: fall back to the project's own file.
        fallback = PROJECT_ROOT / DEFAULT_PATH
        if fallback.exists():
            p = fallback
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ObjectivesError(f"{name}: file not found; the BCP objectives are required before any fault is injected") from None
    except OSError as e:
        raise ObjectivesError(f"{name}: cannot read the BCP objectives ({e.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ObjectivesError(f"{name}: not valid YAML{where}: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise ObjectivesError(f"{name}: not valid YAML: {' '.join(str(e).split())}") from None
    return _validate(data, name)


def resolve(objectives: Objectives, scenario: str, overrides: dict | None = None, *,
            source: str = "experiment") -> dict:
    """defaults ∪ scenario ∪ experiment overrides → the objectives of one run.

    Overrides (an experiment's `extensions.bcp.objectives`) may only tighten rto_s, rpo_s and
    max_lost_writes, may set stability_s and timeout_s, and may add critical_functions and
    integrity_checks. `source` names the experiment in error messages."""
    if scenario not in objectives.scenarios:
        raise ObjectivesError(f"{objectives.path}: unknown scenario {scenario!r} "
                              f"(known: {', '.join(objectives.scenario_ids())})")
    spec = objectives.scenarios[scenario]
    out: dict[str, Any] = {"scenario": scenario}
    out.update(copy.deepcopy(objectives.defaults))
    out.update(copy.deepcopy(spec))
    # The severity's row of the escalation matrix becomes the run's notification and response objectives.
    severity = out.pop("severity", None)
    out["escalation"] = ({"severity": severity, **objectives.escalation_matrix[severity]}
                         if severity is not None else None)
    out.setdefault("rpo_warning", None)
    out.setdefault("max_p95_latency_s", None)
    out.setdefault("recovery", None)
    if overrides is None:
        return out
    base = "extensions.bcp.objectives"
    if not isinstance(overrides, dict):
        raise ObjectivesError(f"{source}: {base} must be a mapping of objectives, got {overrides!r}")
    for key, value in overrides.items():
        where = f"{base}.{key}"
        if key in _TIGHTEN:
            value = OBJECTIVE_FIELDS[key](value, source, where)
            current = out[key]
            if key == "max_lost_writes":
                looser = current is not None and (value is None or value > current)
            elif key == "stability_s":  # a shorter stability window would call a flapping service recovered
                looser = value < current
            else:
                looser = value > current
            if looser:
                unit = "" if key == "max_lost_writes" else " s"
                raise ObjectivesError(
                    f"{source}: {where} may only tighten the BCP objective for scenario {scenario!r} "
                    f"({current}{unit}), got {value!r}")
            out[key] = value
        elif key in _SETTABLE:
            out[key] = OBJECTIVE_FIELDS[key](value, source, where)
        elif key in _ADDABLE:
            for item in OBJECTIVE_FIELDS[key](value, source, where):
                if item not in out[key]:
                    out[key].append(item)
        else:
            allowed = ", ".join(_TIGHTEN + _SETTABLE + _ADDABLE)
            raise ObjectivesError(f"{source}: {where} is not an objective an experiment may override "
                                  f"(allowed: {allowed})")
    return out


def bcp_extension(experiment: dict) -> dict:
    """The experiment's one `extensions: [{name: bcp, ...}]` entry, checked for unknown fields."""
    who = _who(experiment)
    extensions = experiment.get("extensions") if isinstance(experiment, dict) else None
    if extensions is None:
        extensions = []
    if not isinstance(extensions, list):
        raise ObjectivesError(f"{who}: extensions must be a list, got {extensions!r}")
    found = [x for x in extensions if isinstance(x, dict) and x.get("name") == "bcp"]
    if not found:
        raise ObjectivesError(f"{who}: no 'bcp' extension naming its BCP scenario "
                              f"(add extensions: [{{name: bcp, scenario: <scenario id from bcp.yaml>}}])")
    if len(found) > 1:
        raise ObjectivesError(f"{who}: {len(found)} 'bcp' extensions; keep exactly one")
    ext = found[0]
    unknown = sorted(set(ext) - set(EXTENSION_KEYS))
    if unknown:
        raise ObjectivesError(f"{who}: extensions.bcp.{unknown[0]} is not a known field "
                              f"(known: {', '.join(EXTENSION_KEYS)})")
    return ext


def from_extension(experiment: dict) -> tuple[str, dict]:
    """(scenario, overrides) from an experiment's `extensions: [{name: bcp, scenario, objectives?}]`."""
    who = _who(experiment)
    ext = bcp_extension(experiment)
    scenario = ext.get("scenario")
    if not isinstance(scenario, str) or not scenario.strip():
        raise ObjectivesError(f"{who}: extensions.bcp.scenario must name a BCP scenario, got {scenario!r}")
    overrides = ext.get("objectives")
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise ObjectivesError(f"{who}: extensions.bcp.objectives must be a mapping of objectives, got {overrides!r}")
    return scenario, dict(overrides)


def expected_failures(experiment: dict, resolved: dict) -> list[str]:
    """A negative control's `expect_failure: [criterion, ...]`: the criteria that must come out
    failed (anything else failing, or an error, means the twin failed for the wrong reason)."""
    who = _who(experiment)
    ext = bcp_extension(experiment)
    names = ext.get("expect_failure")
    if names is None:
        return []
    if not ext.get("negative_control"):
        raise ObjectivesError(f"{who}: extensions.bcp.expect_failure is for negative controls "
                              f"(set negative_control: true)")
    known = criterion_names(resolved)
    if not isinstance(names, list) or not names:
        raise ObjectivesError(f"{who}: extensions.bcp.expect_failure must be a non-empty list of criteria "
                              f"(known: {', '.join(known)}), got {names!r}")
    for i, name in enumerate(names):
        if name not in known:
            raise ObjectivesError(f"{who}: extensions.bcp.expect_failure[{i}] is not a criterion of this scenario "
                                  f"(known: {', '.join(known)}), got {name!r}")
    return list(dict.fromkeys(names))


def stop_conditions(experiment: dict) -> list[dict]:
    """The run's stop conditions (`extensions.bcp.stop_conditions`: a list of one-key mappings,
    e.g. [{alert: PaymentsDown}, {max_outage_s: 1800}]): when one trips, the run is rolled back at
    once and recorded as interrupted, naming the condition and its value."""
    who = _who(experiment)
    given = bcp_extension(experiment).get("stop_conditions")
    if given is None:
        return []
    if not isinstance(given, list):
        raise ObjectivesError(f"{who}: extensions.bcp.stop_conditions must be a list, got {given!r}")
    out = []
    for i, item in enumerate(given):
        where = f"extensions.bcp.stop_conditions[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise ObjectivesError(f"{who}: {where} must be a mapping with one of "
                                  f"{', '.join(STOP_CONDITION_KINDS)}, got {item!r}")
        (kind, value), = item.items()
        if kind not in STOP_CONDITION_KINDS:
            raise ObjectivesError(f"{who}: {where}.{kind} is not a known stop condition "
                                  f"(known: {', '.join(STOP_CONDITION_KINDS)})")
        if kind in ("prometheus", "alert"):
            value = _name(value, who, f"{where}.{kind}")
        elif kind == "max_outage_s":
            value = _seconds(value, who, f"{where}.{kind}")
        else:
            value = _count_or_null(value, who, f"{where}.{kind}")
            if value is None:
                raise ObjectivesError(f"{who}: {where}.{kind} must be a whole number of writes, got None")
        out.append({"kind": kind, "value": value})
    return out


def criterion_names(resolved: dict) -> list[str]:
    """The criteria a run of these objectives is judged on (harness.checkers.verdict)."""
    return (list(CRITERIA) + (["detection"] if resolved.get("detection") else [])
            + (["notification", "response"] if resolved.get("escalation") else [])
            + (["rpo_warning"] if resolved.get("rpo_warning") else [])
            + (["p95_latency"] if resolved.get("max_p95_latency_s") else []))


def recorder_settings(experiment: dict) -> dict:
    """Sampler and load settings from `extensions.bcp.recorders` (interval_s, timeout_s, users,
    warmup_s, writes_per_s), defaults filled in; a bad value raises ObjectivesError naming it."""
    who = _who(experiment)
    given = bcp_extension(experiment).get("recorders") or {}
    if not isinstance(given, dict):
        raise ObjectivesError(f"{who}: extensions.bcp.recorders must be a mapping, got {given!r}")
    settings = dict(RECORDER_DEFAULTS)
    for key, value in given.items():
        if key not in RECORDER_DEFAULTS:
            raise ObjectivesError(f"{who}: extensions.bcp.recorders.{key} is not a known field "
                                  f"(known: {', '.join(RECORDER_DEFAULTS)})")
        positive = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        if not positive or (key == "users" and not isinstance(value, int)):
            raise ObjectivesError(f"{who}: extensions.bcp.recorders.{key} must be a positive "
                                  f"{'whole number' if key == 'users' else 'number'}, got {value!r}")
        settings[key] = value
    return settings


def for_experiment(objectives: Objectives, experiment: dict) -> dict:
    """The resolved objectives of one experiment: its bcp extension applied to bcp.yaml."""
    scenario, overrides = from_extension(experiment)
    return resolve(objectives, scenario, overrides, source=_who(experiment))


# Internals ---------------------------------------------------------------------------------

EXTENSION_KEYS = ("name", "scenario", "objectives", "recorders", "negative_control", "expect_failure",
                  "stop_conditions")
STOP_CONDITION_KINDS = {
    "prometheus": "a PromQL expression that must return nothing (any series it returns trips it, as in an alert rule)",
    "alert": "an alert name that must not fire",
    "max_outage_s": "seconds of continuous failure on the scenario's probe after the fault",
    "max_failed_writes": "writes that failed or are in doubt since the fault (lost writes are only known at the end)",
}
# The criteria every run is judged on; "detection" too where the scenario names an alert.
CRITERIA = ("rto", "rpo", "corrupted_writes", "critical_functions", "data_integrity", "recovery_procedure", "steady_state_restored")
# writes_per_s: the whole load's write rate; None (unset) is as fast as the users go.
RECORDER_DEFAULTS = {"interval_s": 0.1, "timeout_s": 1.0, "users": 8, "warmup_s": 3.0, "writes_per_s": None}
_TIGHTEN = ("rto_s", "rpo_s", "max_lost_writes", "stability_s")
_SETTABLE = ("timeout_s",)
_ADDABLE = ("critical_functions", "integrity_checks")
_SCENARIO_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _who(experiment: Any) -> str:
    title = experiment.get("title") if isinstance(experiment, dict) else None
    return f"experiment {title!r}" if title else "experiment (untitled)"


def _bad(file: str, where: str, what: str, value: Any) -> ObjectivesError:
    return ObjectivesError(f"{file}: {where} {what}, got {value!r}")


def _unknown(file: str, where: str, known) -> ObjectivesError:
    return ObjectivesError(f"{file}: {where} is not a known field (known: {', '.join(known)})")


def _seconds(value: Any, file: str, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _bad(file, where, "must be a positive number of seconds", value)
    return value


def _count_or_null(value: Any, file: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(file, where, "must be a whole number of writes >= 0, or null for no bound", value)
    return value


def _name(value: Any, file: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(file, where, "must be a non-empty name", value)
    return value


def _names(value: Any, file: str, where: str) -> list[str]:
    if not isinstance(value, list):
        raise _bad(file, where, "must be a list of names", value)
    seen = []
    for i, item in enumerate(value):
        _name(item, file, f"{where}[{i}]")
        if item in seen:
            raise _bad(file, f"{where}[{i}]", "repeats a name already listed", item)
        seen.append(item)
    return list(value)


def _required_names(value: Any, file: str, where: str) -> list[str]:
    """critical_functions and integrity_checks: the BCP requires both after every recovery, so an
    empty list (which would pass as "nothing required") is refused."""
    names = _names(value, file, where)
    if not names:
        raise _bad(file, where, "must name at least one (the plan requires them after every recovery)", value)
    return names


def _text(value: Any, file: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(file, where, "must be a non-empty sentence", value)
    return value


def _detection(value: Any, file: str, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(file, where, "must be null or a mapping {alert, max_latency_s}", value)
    known = ("alert", "max_latency_s", "min_outage_s")
    for key in value:
        if key not in known:
            raise _unknown(file, f"{where}.{key}", known)
    for key in ("alert", "max_latency_s"):
        if key not in value:
            raise ObjectivesError(f"{file}: {where}.{key} is required")
    # An outage shorter than min_outage_s ends before the alert's `for:` window can elapse; it
    # need not page anyone, so its alert is not required (it is still reported if it fired).
    min_outage = value.get("min_outage_s", 0)
    if min_outage != 0:
        min_outage = _seconds(min_outage, file, f"{where}.min_outage_s")
    return {"alert": _name(value["alert"], file, f"{where}.alert"),
            "max_latency_s": _seconds(value["max_latency_s"], file, f"{where}.max_latency_s"),
            "min_outage_s": min_outage}


def _rpo_warning(value: Any, file: str, where: str) -> dict | None:
    """{alert}: the alert that must fire while the RPO exposure is still under the objective."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(file, where, "must be null or a mapping {alert}", value)
    for key in value:
        if key != "alert":
            raise _unknown(file, f"{where}.{key}", ("alert",))
    if "alert" not in value:
        raise ObjectivesError(f"{file}: {where}.alert is required")
    return {"alert": _name(value["alert"], file, f"{where}.alert")}


SEVERITIES = ("critical", "high", "medium", "low")  # the BCP's escalation matrix, most urgent first
RECOVERY_KINDS = ("manual", "automatic")


def _recovery_kind(value: Any, file: str, where: str) -> str:
    """manual: the plan prescribes a recovery procedure, and a run where none ran fails;
    automatic: supervision, replication or the orchestrator recovers."""
    if value not in RECOVERY_KINDS:
        raise _bad(file, where, f"must be one of {', '.join(RECOVERY_KINDS)}", value)
    return value


def _escalation_matrix(value: Any, file: str) -> dict:
    if not isinstance(value, dict):
        raise _bad(file, "escalation_matrix", "must be a mapping severity -> {notify_s, respond_s}", value)
    out = {}
    for severity, row in value.items():
        where = f"escalation_matrix.{severity}"
        if severity not in SEVERITIES:
            raise _unknown(file, where, SEVERITIES)
        if not isinstance(row, dict):
            raise _bad(file, where, "must be a mapping {notify_s, respond_s}", row)
        for key in row:
            if key not in ("notify_s", "respond_s"):
                raise _unknown(file, f"{where}.{key}", ("notify_s", "respond_s"))
        for key in ("notify_s", "respond_s"):
            if key not in row:
                raise ObjectivesError(f"{file}: {where}.{key} is required")
        out[severity] = {k: _seconds(row[k], file, f"{where}.{k}") for k in ("notify_s", "respond_s")}
    return out


OBJECTIVE_FIELDS: dict[str, Callable[[Any, str, str], Any]] = {
    "rto_s": _seconds,
    "rpo_s": _seconds,
    "stability_s": _seconds,
    "timeout_s": _seconds,
    "probe": _name,
    "max_lost_writes": _count_or_null,
    "critical_functions": _required_names,
    "integrity_checks": _required_names,
    "detection": _detection,
}
_SCENARIO_TEXT = {"description": _text, "bcp_section": _text}
# Per scenario only (no default): its BCP severity (checked against the matrix) and an RPO warning.
_SCENARIO_ONLY = {"severity": _name, "rpo_warning": _rpo_warning,
                  # p95 of acknowledged optimize latency while the fault is active (criterion p95_latency)
                  "max_p95_latency_s": _seconds,
                  # manual: a recovery procedure (actions tagged `recovery`) must run
                  "recovery": _recovery_kind}


def _validate(data: Any, file: str) -> Objectives:
    if not isinstance(data, dict):
        raise ObjectivesError(f"{file}: must be a mapping with 'defaults' and 'scenarios', "
                              f"got {type(data).__name__ if data is not None else 'an empty file'}")
    for key in data:
        if key not in ("defaults", "scenarios", "escalation_matrix"):
            raise _unknown(file, str(key), ("defaults", "scenarios", "escalation_matrix"))
    for key in ("defaults", "scenarios"):
        if not isinstance(data.get(key), dict):
            raise _bad(file, key, "must be a mapping" if key in data else "is required (a mapping)", data.get(key))

    defaults = {}
    for key, value in data["defaults"].items():
        if key not in OBJECTIVE_FIELDS:
            raise _unknown(file, f"defaults.{key}", OBJECTIVE_FIELDS)
        defaults[key] = OBJECTIVE_FIELDS[key](value, file, f"defaults.{key}")
    for key in OBJECTIVE_FIELDS:
        if key not in defaults:
            raise ObjectivesError(f"{file}: defaults.{key} is required (the value every scenario starts from)")

    matrix = _escalation_matrix(data["escalation_matrix"], file) if "escalation_matrix" in data else {}
    if not data["scenarios"]:
        raise ObjectivesError(f"{file}: scenarios must name at least one BCP scenario")
    scenarios = {}
    known = (*_SCENARIO_TEXT, *OBJECTIVE_FIELDS, *_SCENARIO_ONLY)
    for sid, spec in data["scenarios"].items():
        if not isinstance(sid, str) or not _SCENARIO_ID.match(sid):
            raise _bad(file, f"scenarios.{sid}", "is not a valid scenario id (lower-case words joined by '-')", sid)
        where = f"scenarios.{sid}"
        if not isinstance(spec, dict):
            raise _bad(file, where, "must be a mapping with description, bcp_section and overrides", spec)
        fields = {}
        for key, value in spec.items():
            if key == "severity":
                if not isinstance(value, str) or value not in matrix:
                    raise _bad(file, f"{where}.severity", "must be a severity of the escalation_matrix "
                                                         f"({', '.join(matrix) or 'the file has none'})", value)
                fields[key] = value
                continue
            check = _SCENARIO_TEXT.get(key) or OBJECTIVE_FIELDS.get(key) or _SCENARIO_ONLY.get(key)
            if check is None:
                raise _unknown(file, f"{where}.{key}", known)
            fields[key] = check(value, file, f"{where}.{key}")
        for key in _SCENARIO_TEXT:
            if key not in fields:
                raise ObjectivesError(f"{file}: {where}.{key} is required")
        scenarios[sid] = fields
    return Objectives(path=file, defaults=defaults, scenarios=scenarios, escalation_matrix=matrix)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last silently)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool, type(None))):
            continue  # an odd key; construct_mapping reports it if it cannot be used
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
