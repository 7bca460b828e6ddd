"""Starts the workbench: Streamlit's server on app.py, with the modules the pages need imported meanwhile.

`python -m orchestrator.serve [streamlit options]` is `streamlit run app.py [options]`, plus one thing:
Streamlit runs app.py only when a browser connects, so the login page would pay for importing the login
library and the orchestrator's user store after the browser has loaded the frontend. Here a background
thread imports them while the server starts and the browser loads.
"""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path

from streamlit.web import cli

APP = Path(__file__).resolve().parents[1] / "app.py"
# What the login page imports (about 0.4 s), and nothing more: on a small machine more work here would
# compete with the browser loading the frontend.
WARM_UP = ("streamlit_authenticator", "orchestrator.auth", "orchestrator.jobs.store")


def _warm_up() -> None:
    for module in WARM_UP:
        importlib.import_module(module)


def main(argv: list[str]) -> None:
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *argv]  # Streamlit reads its command line from sys.argv too
    cli.main(sys.argv[1:], prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
