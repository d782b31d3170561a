"""`gridtwin edge …` (also `python -m edge …`, lighter on a small computer): run the agent on a home's
devices, check its configuration, discover devices at an address, claim the device's credential."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help=__doc__, no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="the agent's TOML file",
                                            envvar="GRIDTWIN_EDGE_CONFIG")]


def _config(path: Path):  # type: ignore[no-untyped-def]
    from edge.config import ConfigError, load

    try:
        return load(path)
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def run(
    config: ConfigOption = Path("edge.toml"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the readings; send and store nothing")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    simulated_clock: Annotated[str, typer.Option(
        hidden=True, help="tests and benchmarks: START_MS:RATE (START relative to now with +/-)")] = "",
) -> None:
    """Reads the configured devices and streams the installation's samples to the gateway (until
    SIGTERM or Ctrl-C; what is buffered stays on disk for the next run)."""
    from edge.agent import Agent
    from edge.clock import Clock, parse_simulated
    from edge.provision import ProvisioningError

    settings = _config(config)
    _logging(verbose)
    clock = parse_simulated(simulated_clock) if simulated_clock else Clock()

    async def main() -> None:
        agent = Agent(settings, clock=clock, dry_run=dry_run)   # adapters are made in the running loop
        task = asyncio.create_task(agent.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    except ProvisioningError as error:
        typer.echo(f"cannot start: {error}", err=True)
        raise typer.Exit(3) from None


@app.command()
def check(config: ConfigOption = Path("edge.toml")) -> None:
    """Validates the configuration file and says what the agent would do with it."""
    settings = _config(config)
    typer.echo(f"{config}: valid")
    for source in settings.sources:
        control = " (takes commands)" if getattr(source, "control", False) else ""
        typer.echo(f"  {source.name}: {source.kind}, every {source.poll_interval_s:g} s{control}")
    typer.echo(f"  samples every {settings.agent.sample_interval_s:g} s to {settings.agent.gateway_url}, "
               f"buffered in {settings.agent.state_dir}")


@app.command()
def discover(
    host: Annotated[str, typer.Argument(help="an address on the home's network")],
    port: Annotated[list[str], typer.Option(help="KIND=PORT (repeatable), e.g. sunspec=1502")] = [],  # noqa: B006
    only: Annotated[list[str], typer.Option(help="probe only these kinds (repeatable)")] = [],  # noqa: B006
    timeout_s: Annotated[float, typer.Option(help="per probe")] = 2.0,
    p1_wait_s: Annotated[float, typer.Option(help="how long to wait for a P1 telegram")] = 3.0,
) -> None:
    """Probes HOST for known devices (Powerwall, Fronius, SunSpec, MQTT, P1 bridges) and prints a
    configuration to start from."""
    from edge.discover import DEFAULT_PORTS
    from edge.discover import discover as probe

    ports: dict[str, list[int]] = {}
    for item in port:
        kind, _, number = item.partition("=")
        if kind not in DEFAULT_PORTS or not number.isdigit():
            typer.echo(f"--port {item!r}: use KIND=PORT with KIND one of {', '.join(DEFAULT_PORTS)}", err=True)
            raise typer.Exit(2)
        ports.setdefault(kind, []).append(int(number))
    chosen = {k: tuple(ports.get(k, v)) for k, v in DEFAULT_PORTS.items() if not only or k in only}
    found = asyncio.run(probe(host, ports=chosen, timeout_s=timeout_s, p1_wait_s=p1_wait_s))
    if not found:
        typer.echo(f"nothing known answered at {host} ({', '.join(f'{k} {v}' for k, v in chosen.items())})")
        raise typer.Exit(1)
    for device in found:
        typer.echo(f"{device.kind} on port {device.port}: {device.description}")
    typer.echo("\n# a configuration to start from\n")
    typer.echo("\n".join(device.config for device in found))


@app.command()
def claim(config: ConfigOption = Path("edge.toml")) -> None:
    """Exchanges identity.claim_code for the device's credential now (`run` does it by itself when
    it has none) and stores it in the state directory."""
    from edge.buffer import DiskBuffer
    from edge.provision import ProvisioningError, resolve

    settings = _config(config)
    _logging(False)
    buffer = DiskBuffer(Path(settings.agent.state_dir) / "buffer.sqlite3")
    try:
        identity = resolve(settings.identity, buffer)
    except ProvisioningError as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(3) from None
    finally:
        buffer.close()
    typer.echo(f"this agent is device {identity.device_id}"
               + (f" of installation {identity.installation_id}" if identity.installation_id else ""))
