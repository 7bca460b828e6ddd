"""The workbench engine: generation, storage, quality, cleaning and loading. Knows nothing of Streamlit."""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"

REPOSITORY = Path(__file__).resolve().parents[1]


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a child process of ours (a worker, the Spark notebook): this one, with the code on
    the Python path, whichever folder the child starts in, and ``extra`` set."""
    path = os.pathsep.join(p for p in (str(REPOSITORY), os.environ.get("PYTHONPATH")) if p)
    from orchestrator.cleaning.spark.connect import REMOTE_MODE

    # a child chooses its own Spark from its settings, never as a Connect client because this process is one
    inherited = {k: v for k, v in os.environ.items() if k != REMOTE_MODE}
    return {**inherited, "PYTHONPATH": path, **extra}
