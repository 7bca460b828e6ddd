"""Jobs: their records, states and completion events, and the rule that routes a batch to a queue."""

from orchestrator.jobs.store import Event, IllegalTransition, Job, JobStore, MySQLSettings, new_job_id

__all__ = ["Event", "IllegalTransition", "Job", "JobStore", "MySQLSettings", "new_job_id"]
