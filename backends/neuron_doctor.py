"""What this machine and config have for running a model on AWS Inferentia/Trainium.

Three looks: the devices (`neuron-ls`), the Neuron libraries (imported in a child process, so a
library that hangs or crashes on import cannot take the caller with it), and the configured
OpenAI-compatible endpoints (`/v1/models`). From them, what to do next."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
from typing import Any

from myninja.backends.factory import quick_gateway
from myninja.config import Config, GatewayBackendConfig
from myninja.errors import MyninjaError

# (distribution, module) in the order a person would reach for them.
LIBRARIES = (
    ("vllm", "vllm"),
    ("vllm-neuron", "vllm_neuron"),
    ("optimum-neuron", "optimum.neuron"),
    ("neuronx-distributed-inference", "neuronx_distributed_inference"),
    ("transformers-neuronx", "transformers_neuronx"),
    ("torch-neuronx", "torch_neuronx"),
    ("neuronx-cc", "neuronxcc"),
)
ENGINE_LIBRARIES = {"neuronx-distributed-inference": "nxdi", "transformers-neuronx": "tnx"}
DOCS = "docs/neuron.md"

_IMPORT_ALL = """
import importlib, json, sys
result = {}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
        result[name] = {"ok": True, "version": str(getattr(module, "__version__", "") or "")}
    except BaseException as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        result[name] = {"ok": False, "error": type(exc).__name__ + ": " + text[:160]}
print(json.dumps(result))
"""


def neuron_devices(timeout: float = 20) -> dict[str, Any]:
    """`neuron-ls --json-output`: the devices and NeuronCores it reports."""
    tool = shutil.which("neuron-ls")
    if tool is None:
        why = "neuron-ls not found: no Neuron tools here (not an Inf2/Trn1 instance?)"
        return {"tool": None, "devices": 0, "cores": 0, "error": why}
    try:
        done = subprocess.run(
            [tool, "--json-output"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"tool": tool, "devices": 0, "cores": 0, "error": f"neuron-ls failed: {exc}"}
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"tool": tool, "devices": 0, "cores": 0, "error": f"neuron-ls failed: {why}"}
    try:
        listed = _device_list(json.loads(done.stdout))
    except ValueError:
        return {"tool": tool, "devices": 0, "cores": 0, "error": "neuron-ls gave no JSON"}
    cores = sum(int(d.get("nc_count", 0) or 0) for d in listed)
    memory = sum(int(d.get("memory_size", 0) or 0) for d in listed)
    return {"tool": tool, "devices": len(listed), "cores": cores, "memory": memory, "error": None}


def _device_list(data: Any) -> list[dict[str, Any]]:
    """The list of devices, whether neuron-ls printed it bare or inside an object."""
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list) and all(isinstance(d, dict) for d in value):
                return value
    raise ValueError("no device list")


def libraries(timeout: float = 180) -> list[dict[str, Any]]:
    """Each library: missing, importable (with its version) or installed but failing."""
    rows, present = [], []
    for dist, module in LIBRARIES:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = None
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its parent package (optimum) is not there either
            found = False
        except (ImportError, ValueError):  # a parent package that is itself broken
            found = True
        row = {"package": dist, "module": module, "version": version}
        row["status"] = "missing" if not found and version is None else "unchecked"
        if row["status"] == "unchecked":
            present.append(module)
        rows.append(row)
    if present:
        imported = _import_in_child(present, timeout)
        for row in rows:
            if row["module"] in imported:
                outcome = imported[row["module"]]
                row["status"] = "ok" if outcome.get("ok") else "broken"
                row["version"] = row["version"] or outcome.get("version") or None
                if not outcome.get("ok"):
                    row["error"] = outcome.get("error")
    return rows


def _import_in_child(modules: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_ALL, *modules],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as exc:
        why = f"import check failed: {exc}"[:160]
        return {m: {"ok": False, "error": why} for m in modules}


async def endpoints(config: Config, urls: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every configured gateway backend, and each extra URL: does /v1/models answer?"""
    from myninja.backends.gateway import GatewayBackend

    probes: list[tuple[str, str, Any]] = [
        (name, cfg.url, quick_gateway(config, name))
        for name, cfg in config.backends.items()
        if isinstance(cfg, GatewayBackendConfig)
    ]
    for url in urls:
        probes.append(
            (url, url, GatewayBackend("url", url, connect_timeout=3, read_timeout=5, max_retries=0))
        )

    async def look(name: str, url: str, backend: Any) -> dict[str, Any]:
        row: dict[str, Any] = {"name": name, "url": url, "agents": _users(config, name)}
        try:
            row.update(ok=True, models=await backend.list_models())
        except MyninjaError as exc:
            row.update(ok=False, error=exc.one_line())
        finally:
            await backend.aclose()
        return row

    return list(await asyncio.gather(*(look(*probe) for probe in probes)))


def _users(config: Config, name: str) -> list[str]:
    return [agent for agent, cfg in config.agents.items() if cfg.backend == name]


def diagnose(config: Config, urls: tuple[str, ...] = ()) -> dict[str, Any]:
    report: dict[str, Any] = {
        "devices": neuron_devices(),
        "libraries": libraries(),
        "endpoints": asyncio.run(endpoints(config, urls)),
    }
    report["next"] = next_steps(report)
    report["ready"] = any(e["ok"] for e in report["endpoints"]) or (
        report["devices"]["cores"] > 0 and any(_usable(report, p) for p in ENGINE_LIBRARIES)
    )
    return report


def _usable(report: dict[str, Any], package: str) -> bool:
    return any(r["package"] == package and r["status"] == "ok" for r in report["libraries"])


def next_steps(report: dict[str, Any]) -> list[str]:
    devices, steps = report["devices"], []
    up = [e for e in report["endpoints"] if e["ok"]]
    down = [e for e in report["endpoints"] if not e["ok"]]
    for row in report["libraries"]:
        if row["status"] == "broken":
            steps.append(
                f"{row['package']} is installed but does not import; install it from the Neuron "
                "repository (--extra-index-url https://pip.repos.neuron.amazonaws.com) or use a "
                "Neuron DLAMI virtual environment (PyPI's transformers-neuronx is a placeholder)."
            )
    for e in down:
        steps.append(
            f"{e['name']} ({e['url']}) does not answer: start the server on the instance, or "
            "the tunnel to it (ssh -N -L 8000:localhost:8000 ubuntu@HOST); then "
            f"`myninja backends test {e['name']}`."
        )
    if devices["tool"] is None and not up:
        steps.append(
            "This machine has no Neuron devices. Serve the model on an Inf2/Trn1 instance "
            f"(vLLM with the Neuron plugin, {DOCS}), then point agents at it: myninja backends "
            "add inf2 --url http://HOST:8000/v1 --agent researcher"
        )
    elif devices["tool"] is not None and devices["cores"] == 0:
        steps.append(
            "neuron-ls sees no NeuronCores: check the driver (aws-neuronx-dkms) and that this "
            "is an Inf2/Trn1 instance."
        )
    elif devices["cores"] > 0:
        steps.extend(_on_instance(report, devices["cores"], bool(up)))
    for e in up:
        who = ", ".join(e["agents"]) or "no agent yet (add --agent NAME, or set [agents.X])"
        steps.append(f"{e['name']} is up ({', '.join(e['models']) or 'no models'}); used by {who}.")
    return steps


def _on_instance(report: dict[str, Any], cores: int, serving: bool) -> list[str]:
    if serving:
        return []
    tp = f"--tensor-parallel-size {cores}" if cores else ""
    if _usable(report, "vllm"):
        return [
            f"Serve with vLLM: vllm serve MODEL {tp} --port 8000 ({DOCS}), then "
            "myninja backends add inf2 --url http://localhost:8000/v1 --agent researcher"
        ]
    engines = [ENGINE_LIBRARIES[p] for p in ENGINE_LIBRARIES if _usable(report, p)]
    if engines:
        return [
            f"Serve with myninja: myninja serve --engine {engines[0]} --model /path/to/Llama "
            f"--tp-degree {cores} (first start compiles; {DOCS})"
        ]
    return [
        "No serving library imports here: activate the DLAMI's NxD Inference / vLLM virtual "
        f"environment, or install vllm-neuron from the Neuron repository ({DOCS})."
    ]
