"""`myninja neuron doctor`: can this setup run an agent on AWS Inferentia/Trainium?"""

from __future__ import annotations

import json
from typing import Any

import click

from myninja.config_file import load_config
from myninja.errors import EXIT_FAILED, EXIT_OK


@click.group()
def neuron() -> None:
    """AWS Inferentia/Trainium (Neuron): checks and next steps."""


@neuron.command("doctor")
@click.option("--url", "urls", multiple=True, help="Also check this endpoint (…/v1); repeatable.")
@click.option("--json", "as_json", is_flag=True)
def doctor(urls: tuple[str, ...], as_json: bool) -> int:
    """Devices (neuron-ls), Neuron libraries, endpoints (/v1/models), and what to do next.

    Exits 0 when an agent can use Neuron now (an endpoint answers, or this instance has
    NeuronCores and an engine library), 1 otherwise."""
    from myninja.backends.neuron_doctor import diagnose

    report = diagnose(load_config(), urls)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report))
    return EXIT_OK if report["ready"] else EXIT_FAILED


def render(report: dict[str, Any]) -> str:
    devices = report["devices"]
    if devices["error"]:
        device_line = devices["error"]
    else:
        gib = devices.get("memory", 0) / 2**30
        device_line = (
            f"{devices['devices']} device(s), {devices['cores']} NeuronCores"
            + (f", {gib:.0f} GiB" if gib else "")
            + f" ({devices['tool']})"
        )
    lines = ["Neuron doctor", f"  Devices    {device_line}", "  Libraries"]
    for row in report["libraries"]:
        if row["status"] == "ok":
            state = f"ok {row['version'] or ''}".rstrip()
        elif row["status"] == "broken":
            state = f"installed, fails to import: {row.get('error', '')}"
        else:
            state = "not installed"
        lines.append(f"    {row['package']:<31} {state}")
    lines.append("  Endpoints")
    if not report["endpoints"]:
        lines.append("    none configured (myninja backends add NAME --url http://HOST:8000/v1)")
    for e in report["endpoints"]:
        state = (
            f"up: {', '.join(e['models']) or 'no models'}"
            if e["ok"]
            else e["error"].removeprefix(f"{e['name']}: ")
        )
        lines.append(f"    {e['name']:<12} {e['url']}  {state}")
    lines.append("Next")
    lines.extend(f"  {i}. {step}" for i, step in enumerate(report["next"], 1))
    return "\n".join(lines)
