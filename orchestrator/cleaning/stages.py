"""The stages a job is timed in, in the order each engine runs them, and their names as people read them.

The in-process pipeline and the Spark path report these names as each stage ends; the job view shows the
labels, and a running cleaning's progress is the share of its engine's stages done. A local Spark run tells
the notebook's own stages as it goes, one line each in its log (ended_line, read back by told_stage).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

Stage = Callable[[str, float], None]  # told each stage's name and seconds as the stage ends

LABELS = {
    "generate": "generate",
    "read_raw": "read raw",
    "clean": "clean",
    "write_silver": "write silver and quarantine",
    "gold": "build gold",
    "spark": "clean on Spark",
    "spark_start": "Spark: start the session",
    "spark_clean": "Spark: clean columns and repair across tables",
    "spark_settle": "Spark: quarantine, de-duplicate and write silver",
    "spark_gold": "Spark: build gold",
    "spark_write": "Spark: finish the output files",
    "spark_run": "Spark: start and end the run",
    "read_outputs": "read Spark's outputs",
    "load_warehouse": "load the warehouse",
    "load_operational": "load the operational database",
}
PANDAS = ("read_raw", "clean", "write_silver", "gold", "load_warehouse", "load_operational")
SPARK = ("spark", "read_outputs", "load_warehouse", "load_operational")
SPARK_LOADED_BY_RUN = ("spark", "read_outputs")  # a Data Factory pipeline loads the outputs itself
# The notebook's stages (notebooks/clean_large_batch.py running cleaning/spark/job.py), as a run that tells
# them ends each one; then the rest of the run's time (its process starting and ending), so they add up to
# the run as "spark" does.
NOTEBOOK = ("spark_start", "spark_clean", "spark_settle", "spark_write", "spark_gold")
RUN_REST = "spark_run"
SPARK_TOLD = (*NOTEBOOK, RUN_REST, *SPARK[1:])
_ENDED = "workbench stage ended: "  # how a line of a run's log telling a stage's end begins
FINAL_STEP = "write the silver manifest"  # after the last timed stage, before the job ends


def label(name: str) -> str:
    """A stage as the job view names it."""
    return LABELS.get(name, name.replace("_", " "))


def under_way(expected: tuple[str, ...], done: int) -> str:
    """What a cleaning is doing once ``done`` of its ``expected`` stages have ended."""
    return f"now: {label(expected[done]) if done < len(expected) else FINAL_STEP}"


def on_run(expected: tuple[str, ...], done: int, state: str, seconds: float) -> str:
    """What a cleaning is doing while its Spark run goes on: the stage under way, the run's state and how long
    it has run, such as "now: build gold (Spark run running for 1 min 05 s)"."""
    minutes, rest = divmod(int(seconds), 60)
    took = f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
    return f"{under_way(expected, done)} (Spark run {state.lower()} for {took})"


def ended_line(name: str, seconds: float) -> str:
    """The line a run prints when one of its stages ends, for the runner to read back (told_stage)."""
    return _ENDED + json.dumps({"stage": name, "seconds": round(seconds, 3)})


def told_stage(line: str) -> tuple[str, float] | None:
    """The stage and its seconds a line of a run's log tells the end of, or None for any other line."""
    if not line.startswith(_ENDED):
        return None
    try:
        told = json.loads(line.removeprefix(_ENDED))
        return str(told["stage"]), float(told["seconds"])
    except (ValueError, KeyError, TypeError):
        return None  # a line cut short (the run was stopped while printing it)


def stage_timer(tell: Stage) -> Callable[[str], None]:
    """A function telling a stage's end to ``tell``, timed from the end of the stage before (the first from
    now)."""
    since = time.perf_counter()

    def ended(name: str) -> None:
        nonlocal since
        now = time.perf_counter()
        tell(name, now - since)
        since = now

    return ended
