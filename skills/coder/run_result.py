"""What one sandboxed run did (`RunResult`): its exit, its output, which limit stopped it, and
which confinement it ran under."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from myninja.skills.coder.limits import (
    DEFAULT_LIMITS,
    OUTPUT_KILL_FACTOR,
    NetworkIsolation,
    SandboxLimits,
)


@dataclass
class RunResult:
    """What one sandboxed run did. `exit_code` is negative for a signal, as in subprocess.
    `killed_reason` is set when a limit stopped the program: "wall time", "cpu time", "memory",
    "output", "file size", "processes", "cancelled" or "signal SIGNAME"."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration_s: float
    truncated: bool
    network_isolation: NetworkIsolation
    limits: SandboxLimits = field(default=DEFAULT_LIMITS, repr=False)
    cpu_time_s: float = 0.0
    confinement: str = "in-process"  # "kernel" (confine.py) or the audit hook alone

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_reason is None

    @property
    def refusal(self) -> str | None:
        """The last "sandbox: … not allowed" message the program ran into, if any."""
        found = re.findall(r"PermissionError: (sandbox: [^\n]+)", self.stderr)
        return found[-1] if found else None

    def limit_message(self) -> str | None:
        """The killed_reason as a sentence with its number, e.g. "killed: memory limit 512 MB"."""
        reason, limits = self.killed_reason, self.limits
        if reason is None:
            return None
        sentences = {
            "wall time": f"timed out after {limits.wall_s:g} s (wall time)",
            "cpu time": f"killed: cpu time limit {limits.cpu_s} s",
            "memory": f"killed: memory limit {limits.memory_mb} MB",
            "output": f"killed: output limit ({OUTPUT_KILL_FACTOR} x {limits.output_bytes} bytes)",
            "file size": f"stopped: file size limit {limits.file_mb} MB",
            "processes": f"stopped: process limit {limits.processes}",
            "not confined": "not run: no kernel confinement",
        }
        return sentences.get(reason, f"killed: {reason}")

    def summary(self) -> str:
        """One line: what stopped the program (or its exit code), any sandbox refusal,
        truncation and the time taken."""
        limit = self.limit_message()
        parts = [limit, f"exit {self.exit_code}"] if limit else [f"exit {self.exit_code}"]
        if self.refusal and not (limit and self.refusal.startswith("sandbox: process limit")):
            parts.append(self.refusal)
        if self.truncated:
            parts.append("output truncated")
        parts.append(f"{self.duration_s:.2f} s")
        return "; ".join(parts)
