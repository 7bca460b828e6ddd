"""The stages a job is timed in, in the order each engine runs them, and their names as people read them.

The in-process pipeline and the Spark path report these names as each stage ends; the job view shows the
labels, and a running cleaning's progress is the share of its engine's stages done.
"""

from __future__ import annotations

LABELS = {
    "generate": "generate",
    "read_raw": "read raw",
    "clean": "clean",
    "write_silver": "write silver and quarantine",
    "gold": "build gold",
    "spark": "clean on Spark",
    "read_outputs": "read Spark's outputs",
    "load_warehouse": "load the warehouse",
    "load_operational": "load the operational database",
}
PANDAS = ("read_raw", "clean", "write_silver", "gold", "load_warehouse", "load_operational")
SPARK = ("spark", "read_outputs", "load_warehouse", "load_operational")
SPARK_LOADED_BY_RUN = ("spark", "read_outputs")  # a Data Factory pipeline loads the outputs itself
FINAL_STEP = "write the silver manifest"  # after the last timed stage, before the job ends


def label(name: str) -> str:
    """A stage as the job view names it."""
    return LABELS.get(name, name.replace("_", " "))


def under_way(expected: tuple[str, ...], done: int) -> str:
    """What a cleaning is doing once ``done`` of its ``expected`` stages have ended."""
    return f"now: {label(expected[done]) if done < len(expected) else FINAL_STEP}"
