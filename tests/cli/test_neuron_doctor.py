"""`myninja neuron doctor`: one screen on a machine without Neuron, and on a (simulated) Inf2
instance: a real `neuron-ls` executable on PATH printing what inf2.48xlarge's does, and the
library doubles importable under their real names."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import run_myninja
from tests.local_http import free_port
from tests.openai_stub import openai_stub

DOUBLE = Path(__file__).parents[1] / "backends" / "neuron_double"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def fake_neuron_ls(folder: Path, devices: int, cores_each: int) -> dict[str, str]:
    """A neuron-ls printing `devices` devices as JSON; the env that puts it first on PATH."""
    listing = [
        {
            "neuron_device": i,
            "bdf": f"00:{i + 16:02x}.0",
            "connected_to": [],
            "nc_count": cores_each,
            "memory_size": 34359738368,
            "neuron_processes": [],
        }
        for i in range(devices)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "neuron-ls"
    tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(listing)}\nEOF\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_without_neuron_it_explains_what_is_missing_on_one_screen() -> None:
    done = run_myninja("neuron", "doctor")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 24
    assert "neuron-ls not found" in done.stdout
    for package in ("vllm", "neuronx-distributed-inference", "transformers-neuronx"):
        assert any(package in line and "not installed" in line for line in lines)
    assert "none configured" in done.stdout
    assert "myninja backends add" in done.stdout and "docs/neuron.md" in done.stdout
    assert "Traceback" not in done.stderr


def test_on_an_inf2_instance_it_counts_cores_and_suggests_serving(tmp_path: Path) -> None:
    env = fake_neuron_ls(tmp_path / "bin", devices=12, cores_each=2)
    env["PYTHONPATH"] = str(DOUBLE)
    done = run_myninja("neuron", "doctor", "--json", env=env)
    assert done.returncode == 0, done.stderr  # cores and an engine library: ready
    report = json.loads(done.stdout)
    assert (report["devices"]["devices"], report["devices"]["cores"]) == (12, 24)
    status = {row["package"]: row["status"] for row in report["libraries"]}
    assert status["transformers-neuronx"] == "ok"
    assert status["neuronx-distributed-inference"] == "ok"
    assert status["vllm"] == "missing"
    assert any("--engine nxdi" in s and "--tp-degree 24" in s for s in report["next"])
    screen = run_myninja("neuron", "doctor", env=env).stdout
    assert "12 device(s), 24 NeuronCores, 384 GiB" in screen


def test_a_library_that_raises_on_import_is_reported_with_its_error(tmp_path: Path) -> None:
    stub = tmp_path / "site" / "transformers_neuronx"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        'raise RuntimeError("placeholder package, see Neuron docs")\n'
    )
    done = run_myninja("neuron", "doctor", "--json", env={"PYTHONPATH": str(stub.parent)})
    row = next(
        r for r in json.loads(done.stdout)["libraries"] if r["module"] == "transformers_neuronx"
    )
    assert row["status"] == "broken"
    assert "RuntimeError: placeholder package" in row["error"]
    assert any("transformers-neuronx is installed but does not import" in s for s in
               json.loads(done.stdout)["next"])  # fmt: skip


def test_endpoints_up_and_down_are_told_apart(myninja_home: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    with openai_stub([LLAMA]) as up:
        run_myninja("backends", "add", "inf2", "--url", up, "--agent", "researcher")
        run_myninja("backends", "add", "trn1", "--url", down)
        done = run_myninja("neuron", "doctor")
        extra = run_myninja("neuron", "doctor", "--url", up, "--json")
    assert done.returncode == 0, done.stderr  # an endpoint answers: ready
    assert f"inf2         {up}  up: {LLAMA}" in done.stdout
    assert f"trn1         {down}  cannot connect" in done.stdout
    assert "trn1 (" in done.stdout and "does not answer" in done.stdout
    assert "used by researcher" in done.stdout
    rows = json.loads(extra.stdout)["endpoints"]
    assert [r["ok"] for r in rows if r["url"] == up] == [True, True]  # configured and --url
