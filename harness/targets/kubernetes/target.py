"""A Kubernetes deployment as a Target (kind "kubernetes"): described by hand
(deploy/kubernetes/target.example.json), deployed by its operators, never brought up or down by
gameday; healthy when every workload it names is rolled out."""
from __future__ import annotations

from chaoslib.exceptions import ActivityFailed

from harness.targets.base import Target
from harness.targets.kubernetes import client
from harness.targets.kubernetes.rollout import wait_target_ready

__all__ = ["KubernetesTarget"]


class KubernetesTarget(Target):
    kind = client.KIND
    label = "a Kubernetes deployment"
    fault_family = "cluster"

    def status(self) -> dict:
        """Every workload the target names rolled out now (no waiting)."""
        try:
            done = wait_target_ready(timeout_s=0.001, target=str(self.path))
            components = [{"name": c, "healthy": True, "pid": None, "state": "ROLLED OUT", "detail": r["detail"]}
                          for c, r in done.items()]
            return {"api_url": self.data.get("api_url"), "home": None, "healthy": True, "components": components}
        except ActivityFailed as e:
            return {"api_url": self._api_url(), "home": None, "healthy": False, "error": str(e),
                    "components": [{"name": "workloads", "healthy": False, "pid": None, "state": "NOT READY",
                                    "detail": str(e)}]}

    def settle(self, timeout_s: float = 90.0, log=print, port_base: int | None = None) -> bool:
        try:
            wait_target_ready(timeout_s=timeout_s, target=str(self.path))
            return True
        except ActivityFailed as e:
            log(f"Kubernetes target not ready after the last scenario: {e}")
            return False

    def ensure_up(self, port_base: int | None = None, log=print) -> bool:
        log(f"target {self.path} is a Kubernetes deployment: the embedded stack is not started")
        return False

    def _api_url(self):
        try:
            return self.data.get("api_url")
        except Exception:
            return None
