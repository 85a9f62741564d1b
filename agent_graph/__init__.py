"""The agent runtime: task state and events, the LangGraph graph (route, plan, branch, judge,
replan, ask, finalize) and its nodes, the task runtime and background worker, the history
store, evaluation, and dataset export. docs/architecture.md draws the path of one task."""
