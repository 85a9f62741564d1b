"""A task's statuses, defined here once: every other module imports them."""

from __future__ import annotations

# In the order a task goes through them.
STATUSES = ("queued", "running", "waiting", "done", "failed", "cancelled")
# Over: nothing runs the task again unless someone resumes (a failed one) or retries it.
FINISHED = frozenset({"done", "failed", "cancelled"})
# At rest: nothing runs the task until someone acts (answers a waiting one, resumes, retries).
RESTING = FINISHED | {"waiting"}
# Queued, running or waiting: what a starting worker looks at to resume.
UNFINISHED = tuple(s for s in STATUSES if s not in FINISHED)
# What `tasks resume` refuses: a failed task continues from its last checkpoint, these do not.
NEVER_RESUMED = frozenset({"done", "cancelled"})
