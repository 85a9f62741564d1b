"""What one sandboxed run may use: `SandboxLimits` (wall and CPU time, memory, output, processes,
file size) and the network barrier it can get (`NetworkIsolation`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NetworkIsolation = Literal["namespace", "audit-hook", "none"]

# Past this many times `output_bytes` of output (both streams together) the program is killed:
# everything beyond the cap is dropped anyway, and a print loop should not run to the wall limit.
OUTPUT_KILL_FACTOR = 16


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run. `cpu_s` and `memory_mb` are rlimits (RLIMIT_CPU, RLIMIT_AS);
    `output_bytes` is what we keep of each of stdout and stderr; `processes` is RLIMIT_NPROC
    (which the kernel does not apply to root); `file_mb` is RLIMIT_FSIZE."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    output_bytes: int = 64_000
    processes: int = 64
    file_mb: int = 16


DEFAULT_LIMITS = SandboxLimits()
