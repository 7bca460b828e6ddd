"""The workbench's table of pages and the session key the frame sets: light on purpose, so the login page
imports nothing of the engine."""

from __future__ import annotations

from typing import NamedTuple

SESSION_ID = "_session_id"  # session_state key: the server-side session this browser tab is signed in with


class PageEntry(NamedTuple):
    """A page after login. Its URL path differs from its file name on purpose: a run that starts before the
    frame (app.py) has called st.navigation runs a file under pages/ by its own name, without the frame (every
    AppTest run starts so; the server is told otherwise at start, see app.py), and the pages guard against
    that; these never match one."""

    path: str
    title: str
    icon: str
    url: str
    purpose: str  # what the page is for, as the home page lists it


PAGES = (
    PageEntry(
        "pages/home.py", "Home", ":material/home:", "start", "each page with its purpose; the latest jobs"
    ),
    PageEntry(
        "pages/generate.py",
        "Generate",
        ":material/add:",
        "generation",
        "related tables of a data contract, dirty on purpose, with an answer key of every error",
    ),
    PageEntry(
        "pages/contracts.py",
        "Contracts",
        ":material/schema:",
        "data-contracts",
        "the data sets to generate, as data contracts: tables, keys and rules in a diagram; add your own",
    ),
    PageEntry(
        "pages/pipelines.py",
        "Pipelines",
        ":material/cleaning:",
        "cleaning",
        "clean a generated job now or at its scheduled run: pandas for small batches, Spark for large ones",
    ),
    PageEntry(
        "pages/jobs.py", "Jobs", ":material/list:", "job-list", "follow every run; retry or cancel one"
    ),
    PageEntry(
        "pages/quality.py",
        "Data quality",
        ":material/analytics:",
        "data-quality",
        "profile a layer, score it against the answer key, compare, export a report",
    ),
    PageEntry(
        "pages/settings.py",
        "Settings",
        ":material/settings:",
        "configuration",
        "the profile and schedules in use; for administrators, the secrets set and connection tests",
    ),
    PageEntry("pages/account.py", "Account", ":material/person:", "account", "change your password"),
)
ADMIN_PAGES = (
    PageEntry("pages/admin_users.py", "Users", ":material/group:", "users", "add and manage accounts"),
)
HOME = PAGES[0].path
