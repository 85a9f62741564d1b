"""A task's plans → steps → branches, folded from its events: the rows the recorder keeps in
history's branches table and the tree the app draws come from this one fold."""

from __future__ import annotations

from typing import Any

# The events that change a branch's row in history (a search only changes what is drawn).
ROW_EVENTS = frozenset({"branch_started", "branch_done", "evaluation", "selected"})
ROW_FIELDS = (
    "step", "round", "branch_id", "agent", "temperature", "text", "score", "reasons", "kept"
)  # fmt: skip


def branch_row(branch: dict[str, Any]) -> dict[str, Any]:
    """A folded branch as `HistoryStore.record_branch` takes it."""
    return {name: branch[name] for name in ROW_FIELDS}


class BranchTree:
    """Fold events in one at a time with `add`. `rounds` holds one entry per plan:
    `{"round", "steps": [{"title", "branches": [branch, …]}]}`; a branch is a dict with the
    row fields and, for drawing, `done`, `checks`, `revisions` and `search` (its query and the
    passages found). `branches` maps (step, round, branch_id) to the same dicts."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, Any]] = []
        self.branches: dict[tuple[int, int, str], dict[str, Any]] = {}
        self.folded = 0  # events added so far
        self._latest: dict[str, dict[str, Any]] = {}  # branch_id -> its latest attempt

    def add(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Fold in one event; returns the branch it changed, if any."""
        self.folded += 1
        kind = event["type"]
        if kind == "plan":
            steps = [{"title": s["title"], "branches": []} for s in event["steps"]]
            self.rounds.append({"round": event["round"], "steps": steps})
            return None
        if kind == "retrieved":
            branch = self.latest(event.get("branch_id") or "")
            if branch is not None:
                branch["search"] = (event["query"], len(event["passages"]))
            return branch
        if kind not in ROW_EVENTS:
            return None
        branch = self._branch(event)
        if kind == "branch_started":
            branch.update(agent=event["agent"], temperature=event["temperature"])
            self._place(branch)
        elif kind == "branch_done":
            branch.update(
                text=event["text"],
                done=True,
                checks=event.get("checks"),
                revisions=event.get("revisions"),
            )
        elif kind == "evaluation":
            branch.update(score=event["score"], reasons=event["reasons"])
        else:
            branch["kept"] = True
        return branch

    def latest(self, branch_id: str) -> dict[str, Any] | None:
        """The latest attempt of the branch with this id."""
        return self._latest.get(branch_id)

    def extend(self, events: list[dict[str, Any]]) -> None:
        """Fold in the events of `events` not folded yet (a list that only grows)."""
        for event in events[self.folded :]:
            self.add(event)

    def _branch(self, event: dict[str, Any]) -> dict[str, Any]:
        ident = (event["step"], event["round"], event["branch_id"])
        branch = self.branches.get(ident)
        if branch is None:
            step, round_, branch_id = ident
            branch = self.branches[ident] = {
                "step": step,
                "round": round_,
                "branch_id": branch_id,
                "agent": "",
                "temperature": 0.0,
                "text": "",
                "score": None,
                "reasons": None,
                "kept": False,
                "done": False,
                "checks": None,
                "revisions": None,
                "search": None,
                "placed": False,
            }
            self._latest[branch_id] = branch
        return branch

    def _place(self, branch: dict[str, Any]) -> None:
        """Under its step of the latest plan, once (a branch before any plan is only a row)."""
        if branch["placed"] or not self.rounds:
            return
        steps = self.rounds[-1]["steps"]
        if 0 <= branch["step"] < len(steps):
            steps[branch["step"]]["branches"].append(branch)
            branch["placed"] = True


def plan_rounds(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold a whole list of events; its plans → steps → branches."""
    tree = BranchTree()
    tree.extend(events)
    return tree.rounds
