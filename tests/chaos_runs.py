"""Run Chaos Toolkit experiments one after the other in ONE process, each against its own cluster,
with chaoslib's run_experiment (what `chaos run` calls): `python tests/chaos_runs.py PLAN.json`.

PLAN is a list of {"experiment", "kubeconfig", "target", "journal"} (paths). One process for
all, because chaosk8s and the kubernetes client cost about 2 s of imports per `chaos run` on this
machine. chaosk8s reads its kubeconfig from $KUBECONFIG, whose path the kubernetes client fixes at
import: so $KUBECONFIG names one file, and each run copies its own cluster's kubeconfig there first
(chaosk8s loads the file anew for every activity). The harness's own Kubernetes activities find
their cluster through the target description ($GAMEDAY_TARGET), set for each run.
"""
from __future__ import annotations

import json
import os
import shutil
import sys


def main(plan_path: str) -> int:
    from chaoslib.experiment import run_experiment
    from chaoslib.loader import load_experiment
    from chaoslib.log import configure_logger

    configure_logger()  # once: it adds handlers; it also stubs logzero, which some extensions import
    plan = json.loads(open(plan_path).read())
    for item in plan:
        shutil.copyfile(item["kubeconfig"], os.environ["KUBECONFIG"])
        os.environ["GAMEDAY_TARGET"] = item["target"]
        experiment = load_experiment(item["experiment"], verify_tls=False)
        journal = run_experiment(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}})
        with open(item["journal"], "w") as f:
            json.dump(journal, f, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
