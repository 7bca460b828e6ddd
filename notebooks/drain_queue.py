# Databricks notebook source
"""Drains the large-batch queue on a cluster: what the workbench's worker does on its schedule, started by
Data Factory's daily trigger (adf/triggers, 02:00 UTC) through the drain_queue pipeline. It is the worker's
own code (orchestrator.worker.drain): each queued job runs once in this cluster's own Spark session, its
record and message kept as the worker keeps them. Small batches are not cleaned here: the Azure Functions
app (function_app.py) drains their queue, on its timer and when Data Factory's small_batch pipeline calls
it.

On Databricks the route arrives through a widget; run as a script it is ``--route large``. The
cluster's environment carries the workbench's settings (the job store, the queues, the lake, and
ORCHESTRATOR_CLUSTER_LAKE_ROOT: where this cluster sees the lake).
"""

# COMMAND ----------

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable

from orchestrator.config import get_settings
from orchestrator.errors import InvalidInput, run_notebook
from orchestrator.jobs import routing
from orchestrator.worker import drain

CLUSTER_ROUTE = "large"  # the only route whose queue a cluster drains

# COMMAND ----------


def _route(argv: Iterable[str] | None = None) -> str:
    """The route to drain: the Databricks widget when running there, the command line otherwise."""
    widgets = globals().get("dbutils")
    if widgets is not None:
        widgets.widgets.text("route", "")
        route = widgets.widgets.get("route")
    else:
        parser = argparse.ArgumentParser(description="Drain one route's queue with the worker's code.")
        parser.add_argument("--route", required=True)
        route = parser.parse_args(list(argv) if argv is not None else None).route
    if route not in routing.QUEUE_NAMES:
        raise InvalidInput("route", f"must be one of {', '.join(routing.QUEUE_NAMES)}, got {route!r}")
    if route != CLUSTER_ROUTE:
        raise InvalidInput(
            "route",
            f"{route} batches are drained by the Azure Functions app (Data Factory's small_batch pipeline), "
            f"not on a cluster; give {CLUSTER_ROUTE}",
        )
    return route


def main(argv: Iterable[str] | None = None) -> list[dict]:
    """Drain the route's queue (large batches in this process's Spark session); print each job's outcome."""
    route = _route(argv)
    settings = dataclasses.replace(get_settings(), spark_runner="session")
    jobs = [{"job_id": job.job_id, "state": job.state, "error": job.error} for job in drain(route, settings)]
    print(json.dumps({"route": route, "jobs": jobs}, sort_keys=True))
    return jobs


if __name__ == "__main__":
    run_notebook(main, on_cluster="dbutils" in globals())
