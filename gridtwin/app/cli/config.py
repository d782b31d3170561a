"""The CLI's own configuration: named contexts (where the platform's APIs are, which CA to trust,
which token to send), as kubectl's kubeconfig. Kept in `~/.config/gridtwin/config.toml` or
`$GRIDTWIN_CONFIG`, written with mode 0600 because it holds tokens:

    current-context = "local"

    [contexts.local]
    server = "127.0.0.1"        # one host: every service at its default port
    ca_file = ""                # a PEM CA: speak TLS and verify the servers against it
    token = "gt_…"

    [contexts.local.servers]    # optional: one address per service, over `server`
    assets = "assets.example.net:443"

Services: access and assets (one process), analytics, control, telemetry, twins, vpp, weather.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from gridtwin.app.cli.errors import USAGE, CliError

SERVICES = ("access", "analytics", "assets", "control", "telemetry", "twins", "vpp", "weather")


@dataclass(frozen=True)
class Context:
    name: str
    server: str = ""                                    # "" = the host each service's settings name
    servers: dict[str, str] = field(default_factory=dict)   # service → "host:port"
    ca_file: str = ""
    token: str = ""
    username: str = ""                                  # who logged in (shown by get-contexts)
    expires_unix_ms: int = 0                            # of the session token; 0 = never / unknown


@dataclass(frozen=True)
class Config:
    current: str = ""
    contexts: dict[str, Context] = field(default_factory=dict)

    def context(self, name: str = "") -> Context | None:
        """The named context, else the current one; None when there is none (settings apply)."""
        wanted = name or self.current
        if not wanted:
            return None
        if wanted not in self.contexts:
            raise CliError(f"no context {wanted!r} in the configuration (gridtwin config get-contexts)", USAGE)
        return self.contexts[wanted]

    def with_context(self, context: Context, *, current: bool = False) -> Config:
        return Config(context.name if current or not self.current else self.current,
                      {**self.contexts, context.name: context})


def path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("GRIDTWIN_CONFIG"):
        return Path(env["GRIDTWIN_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "gridtwin" / "config.toml"


def parse(text: str, source: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
        contexts = {}
        for name, raw in data.get("contexts", {}).items():
            unknown = set(raw) - {"server", "servers", "ca_file", "token", "username", "expires_unix_ms"}
            if unknown:
                raise ValueError(f"context {name!r}: unknown keys {sorted(unknown)}")
            servers = {str(k): str(v) for k, v in raw.get("servers", {}).items()}
            if set(servers) - set(SERVICES):
                raise ValueError(f"context {name!r}: servers for unknown services "
                                 f"{sorted(set(servers) - set(SERVICES))} (known: {', '.join(SERVICES)})")
            contexts[name] = Context(name, str(raw.get("server", "")), servers, str(raw.get("ca_file", "")),
                                     str(raw.get("token", "")), str(raw.get("username", "")),
                                     int(raw.get("expires_unix_ms", 0)))
        return Config(str(data.get("current-context", "")), contexts)
    except (tomllib.TOMLDecodeError, ValueError, TypeError, AttributeError) as error:
        raise CliError(f"{source}: {error}", USAGE) from None


def render(config: Config) -> str:
    """TOML (JSON strings are TOML basic strings)."""
    lines = [f"current-context = {json.dumps(config.current)}", ""]
    for context in config.contexts.values():
        key = json.dumps(context.name)
        lines.append(f"[contexts.{key}]")
        for name in ("server", "ca_file", "token", "username"):
            lines.append(f"{name} = {json.dumps(getattr(context, name))}")
        lines.append(f"expires_unix_ms = {context.expires_unix_ms}")
        if context.servers:
            lines += ["", f"[contexts.{key}.servers]"]
            lines += [f"{service} = {json.dumps(address)}" for service, address in sorted(context.servers.items())]
        lines.append("")
    return "\n".join(lines)


def load(file: Path | None = None) -> Config:
    """The configuration (empty when the file does not exist)."""
    file = file or path()
    try:
        text = file.read_text()
    except FileNotFoundError:
        return Config()
    except OSError as error:
        raise CliError(f"{file}: {error.strerror or error}", USAGE) from None
    return parse(text, str(file))


def save(config: Config, file: Path | None = None) -> Path:
    """Writes atomically with mode 0600 (the file holds tokens)."""
    file = file or path()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = file.with_name(file.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(render(config))
    os.chmod(temporary, 0o600)
    os.replace(temporary, file)
    return file


def forget_token(context: Context) -> Context:
    return replace(context, token="", username="", expires_unix_ms=0)
