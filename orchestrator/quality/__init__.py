"""Data quality of a job's layers: DuckDB profiling, the shared rules, scoring against the generator's truth,
before/after comparison, stored metrics and reports (HTML, JSON, CSV, XLSX).

The calls the UI and the pipeline use:
- ``profile_job(user, job_id, layer)`` profiles a layer (scored against the truth if any) and stores it;
- ``latest_run(user, job_id, layer)`` / ``load_run(run_id)`` / ``run_history(user)`` read stored runs;
- ``compare(run_a, run_b)`` sets two runs side by side;
- ``failing_rows(run, rule_id)`` reads a rule's failing rows whole, with raw lines and answer-key entries;
- ``score_raw`` / ``score_silver`` score a layer without profiling it;
- ``write_report(run, format, target)`` exports a run.
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Any

from orchestrator.config import Settings, get_settings
from orchestrator.jobs import placement
from orchestrator.quality import store
from orchestrator.quality.compare import Comparison, compare
from orchestrator.quality.engine import Progress, Session, check_sample_rows, profile_session
from orchestrator.quality.layers import LAYERS, RAW, SILVER, UnreadableFile, locate
from orchestrator.quality.model import DEFAULT_SAMPLE_ROWS, QualityRun, Score
from orchestrator.quality.scoring import score_raw_session, score_silver_session
from orchestrator.storage import open_lake, paths

if TYPE_CHECKING:
    from orchestrator.quality.report import FORMATS, write_report
    from orchestrator.quality.rows import FailingRow, failing_rows

# Imported on first use: reports need plotly and openpyxl, failing rows the cleaning engine (pandas), and
# every process that only generates, queues or stores runs would pay for them at start-up.
_LAZY = {"FORMATS": "report", "write_report": "report", "FailingRow": "rows", "failing_rows": "rows"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "FORMATS",
    "LAYERS",
    "Comparison",
    "FailingRow",
    "QualityRun",
    "Score",
    "UnreadableFile",
    "compare",
    "failing_rows",
    "latest_run",
    "load_run",
    "profile_job",
    "run_history",
    "score_raw",
    "score_silver",
    "write_report",
]


def _session(user: str, job_id: str, layer: str, settings: Settings, memory_limit: str | None) -> Session:
    storage = open_lake(placement.settings_for_id(job_id, settings))  # on the job's own cloud
    return Session(storage, locate(storage, user, job_id, layer), memory_limit)


def _has_truth(session: Session) -> bool:
    files = session.files
    return session.storage.exists(paths.answer_key(files.user, files.source_job_id))


def profile_job(
    user: str,
    job_id: str,
    layer: str,
    settings: Settings | None = None,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    score: bool = True,
    save: bool = True,
    progress: Progress | None = None,
    memory_limit: str | None = None,
) -> QualityRun:
    """Profile one layer of a job, score raw or silver against the truth if it exists, and store the run."""
    started = time.perf_counter()
    settings = settings or get_settings()
    check_sample_rows(sample_rows)
    with _session(user, job_id, layer, settings, memory_limit) as session:
        session.load(progress)
        run = profile_session(session, sample_rows, progress)
        if score and layer in (RAW, SILVER) and _has_truth(session):
            run.score = score_raw_session(session) if layer == RAW else score_silver_session(session)
    run.seconds = round(time.perf_counter() - started, 3)
    if save:
        store.save(run, settings)
    return run


def score_raw(user: str, job_id: str, settings: Settings | None = None) -> Score:
    """Recall and precision of the rules per injected error kind on a job's raw layer."""
    settings = settings or get_settings()
    with _session(user, job_id, RAW, settings, None) as session:
        session.load()
        return score_raw_session(session)


def score_silver(user: str, job_id: str, settings: Settings | None = None) -> Score:
    """Cells of a job's silver layer still different from the clean truth, per injected error kind."""
    settings = settings or get_settings()
    with _session(user, job_id, SILVER, settings, None) as session:
        session.load()
        return score_silver_session(session)


def latest_run(user: str, job_id: str, layer: str, settings: Settings | None = None) -> QualityRun | None:
    """The newest stored run of a job's layer (None if it was never profiled); no file is read."""
    return store.latest(user, job_id, layer, settings or get_settings())


def load_run(run_id: str, settings: Settings | None = None) -> QualityRun:
    return store.load(run_id, settings or get_settings())


def run_history(user: str, job_id: str | None = None, settings: Settings | None = None) -> list[dict]:
    return store.history(user, job_id, settings or get_settings())
