"""The task runtime: many tasks at once in one asyncio process, checkpointed, recorded,
resumable, and served to other processes by the background worker.

manager      submits, drives, answers, cancels and resumes tasks (`TaskManager`)
inputs       what a run starts from: the request checked, the graph's context, its first state
skillset     the skills, grants and MCP servers that new tasks use
questions    which open questions an answer is for
recorder     turns a task's events into history rows, each event stored exactly once
branch_tree  folds events into plans → steps → branches (the recorder's rows, the app's tree)
feed         one task's events: replayed from history, then live, in order, exactly once
owners       which process runs a task, and whether it is still alive
notify       the `notify_command` and the payloads it gets
wire         where the worker listens, and how requests and replies travel
worker       the background worker's socket server
client       the worker's client (`WorkerClient`), which also starts and replaces workers
schedules    scheduled tasks: each due run claimed, then submitted as a task, exactly once

Nothing is imported here: the app imports the client without the graph's weight."""
