"""Nothing runs against production by accident.

A target description may say `environment: production`; a Kubernetes target may list
`allowed_namespaces`. Against production `gameday run` refuses unless it is given
`--allow-production` AND every experiment is tagged `production-safe`; no experiment may touch a
namespace outside the allowlist. `describe_plan` is what `--dry-run` prints: what would be
injected where, touching nothing.

Pure functions of the target description and the loaded experiments: no I/O.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["refusal", "describe_plan", "PRODUCTION_SAFE_TAG", "EVERY_NAMESPACE"]

PRODUCTION_SAFE_TAG = "production-safe"
_NAMESPACE_ARGS = ("ns", "namespace", "pod_namespace")
_TARGET_NAMESPACES = ("namespace", "database_namespace", "monitoring_namespace")
# A node drain evicts whatever runs on the node, in any namespace: no allowlist can bound it.
EVERY_NAMESPACE = "(every namespace of a drained node)"
_DRAINS = {("chaosk8s.node.actions", "drain_nodes")}
_VAR = re.compile(r"^\$\{(\w+)\}$")


def _activities(experiment: dict) -> list[dict]:
    ssh = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
    return [*ssh, *(experiment.get("method") or []), *(experiment.get("rollbacks") or [])]


def _resolved(value: Any, experiment: dict) -> Any:
    """A "${name}" argument as the experiment's configuration sets it (a plain value, or an env
    entry's default); anything else, or a variable it cannot resolve, as it is (so an unknown
    namespace is never taken for an allowed one)."""
    m = _VAR.match(value) if isinstance(value, str) else None
    if not m:
        return value
    entry = (experiment.get("configuration") or {}).get(m[1])
    if isinstance(entry, dict):
        entry = entry.get("default", value)
    return entry if isinstance(entry, (str, int, float)) else value


def namespaces_named(experiment: dict, target: dict) -> set[str]:
    """Every namespace a run would touch: the target's own, any an activity names (configuration
    variables resolved), and EVERY_NAMESPACE for a node drain."""
    found = {target[k] for k in _TARGET_NAMESPACES if isinstance(target.get(k), str)}
    for a in _activities(experiment):
        provider = a.get("provider") or {}
        args = provider.get("arguments") or {}
        found |= {_resolved(v, experiment) for k, v in args.items()
                  if k in _NAMESPACE_ARGS and isinstance(_resolved(v, experiment), str)}
        if (provider.get("module"), provider.get("func")) in _DRAINS:
            found.add(EVERY_NAMESPACE)
    return found


def refusal(target: dict, experiments: list[tuple[str, dict]], allow_production: bool) -> str | None:
    """Why these experiments must not run against this target (one line), or None."""
    allowed = target.get("allowed_namespaces")
    if allowed is not None:
        for name, experiment in experiments:
            outside = sorted(namespaces_named(experiment, target) - set(allowed))
            if outside:
                return (f"experiment {name} touches namespace(s) {', '.join(outside)} outside the target's "
                        f"allowed_namespaces ({', '.join(allowed) or 'none'}); nothing was injected")
    if str(target.get("environment", "")).lower() != "production":
        return None
    who = target.get("name") or "the target"
    if not allow_production:
        return (f"{who} is a production environment: give --allow-production to run against it "
                f"(and tag each experiment '{PRODUCTION_SAFE_TAG}'); nothing was injected")
    unsafe = [name for name, e in experiments if PRODUCTION_SAFE_TAG not in (e.get("tags") or [])]
    if unsafe:
        return (f"{who} is a production environment and {', '.join(unsafe)} "
                f"{'is' if len(unsafe) == 1 else 'are'} not tagged '{PRODUCTION_SAFE_TAG}'; nothing was injected")
    return None


def describe_plan(target: dict, experiments: list[tuple[str, dict, dict]]) -> list[str]:
    """What a run would do, one line per step: (name, experiment, resolved objectives) each."""
    where = (f"{target.get('kind', 'local')} target {target.get('name') or target.get('api_url')}"
             f"{' (PRODUCTION)' if str(target.get('environment', '')).lower() == 'production' else ''}")
    lines = [f"dry run against {where}: nothing is injected"]
    for name, experiment, objectives in experiments:
        lines.append(f"{name}: scenario {objectives['scenario']} (RTO {objectives['rto_s']:g} s, "
                     f"RPO {objectives['rpo_s']:g} s, timeout {objectives['timeout_s']:g} s)")
        for section, acts in (("method", experiment.get("method") or []), ("rollback", experiment.get("rollbacks") or [])):
            for a in acts:
                p = a.get("provider") or {}
                tags = [t for t in a.get("tags") or [] if t in ("fault", "recovery", "measure")]
                call = f"{p.get('module', p.get('type'))}.{p.get('func', p.get('url', p.get('path', '?')))}"
                args = {k: _resolved(v, experiment) for k, v in (p.get("arguments") or {}).items()}
                lines.append(f"  {section:<8} {('/'.join(tags) or a.get('type', 'step')):<9} {a.get('name')}: "
                             f"{call}({_args(args)})")
    return lines


def _args(arguments: Any) -> str:
    if not isinstance(arguments, dict):
        return ""
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
