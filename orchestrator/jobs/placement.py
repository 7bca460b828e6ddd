"""Where a job lives: the cloud it was created on (a job param), and the clouds holding a verified copy of it.

A job is created on one of the configured clouds (Settings.clouds; the default is the profile) and names it
in its params, so its files are read, cleaned and deleted there whatever the default is later; a job recorded
before clouds were chosen per job lives on the default cloud. A cleaning lives on the cloud its data was
cleaned on: its generation's own, or one holding a synced copy of it (orchestrator.sync).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import NotFound

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.jobs.store import Job

CLOUD = "cloud"  # the job param naming the cloud the job lives on
COPIES = "copies"  # the job param listing the other clouds holding a verified copy of its files


def home(job: Job, settings: Settings) -> str:
    """The cloud ``job`` was created on."""
    return job.params.get(CLOUD) or settings.profile


def copies(job: Job) -> list[str]:
    """The other clouds a sync left a complete, verified copy of ``job`` on."""
    return list(job.params.get(COPIES, []))


def clouds_of(job: Job, settings: Settings) -> list[str]:
    """Every cloud holding ``job``: its own first, then its copies."""
    return [home(job, settings), *(cloud for cloud in copies(job) if cloud != home(job, settings))]


def lives_on(job: Job, settings: Settings) -> str:
    """Where ``job`` lives, as the pages say it: its cloud, then the clouds holding a copy."""
    from orchestrator.clouds import CLOUDS

    own, *others = clouds_of(job, settings)
    return CLOUDS[own].label + "".join(f" + copy on {CLOUDS[cloud].label}" for cloud in others)


def settings_for(job: Job, settings: Settings) -> Settings:
    """``settings`` as ``job`` uses them: its cloud's lake, queues and runners."""
    return settings.on_cloud(home(job, settings))


def settings_for_id(job_id: str, settings: Settings) -> Settings:
    """``settings`` for the job ``job_id``; an unknown id keeps them (the caller's own checks report it)."""
    from orchestrator.jobs.store import JobStore

    store = JobStore.default(settings=settings)
    try:
        job = store.get(job_id)
    except NotFound:
        return settings
    finally:
        store.close()
    return settings_for(job, settings)
