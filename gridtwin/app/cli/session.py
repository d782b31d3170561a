"""`gridtwin login | logout | whoami | config …`: who the CLI acts as, and where the APIs are."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Annotated

import grpc
import typer

from gridtwin.app.cli import client, config, output
from gridtwin.app.cli.errors import USAGE, CliError, from_rpc
from gridtwin.app.cli.output import OutputOption

config_app = typer.Typer(help="The CLI's contexts (server addresses, CA, token) in ~/.config/gridtwin/config.toml "
                              "or $GRIDTWIN_CONFIG.", no_args_is_help=True)
DEFAULT_CONTEXT = "default"


def _context_to_write(cfg: config.Config) -> config.Context:
    name = client.INVOCATION.context or cfg.current or DEFAULT_CONTEXT
    return cfg.contexts.get(name) or config.Context(name)


def _principal_record(principal: object) -> dict[str, object]:
    from gridtwin.api.access.v1 import access_pb2 as pb

    p = principal
    return {"kind": pb.Principal.Kind.Name(p.kind), "principal_id": p.principal_id,  # type: ignore[attr-defined]
            "name": p.name, "role": p.role, "scopes": list(p.scopes),  # type: ignore[attr-defined]
            "allowed_paths": list(p.allowed_paths),  # type: ignore[attr-defined]
            "installation_ids": list(p.installation_ids),  # type: ignore[attr-defined]
            "expires": output.when(p.expires_unix_ms) or "never"}  # type: ignore[attr-defined]


def login(
    username: Annotated[str, typer.Option(help="your username (password login)")] = "",
    password: Annotated[str, typer.Option(envvar="GRIDTWIN_PASSWORD", help="asked for when not given")] = "",
    token: Annotated[str, typer.Option("--token", "--with-token",
                                       help="store this personal access token instead")] = "",
    server: Annotated[str | None, typer.Option(help="host of the platform's APIs (each service at its port)")] = None,
    ca_file: Annotated[str | None, typer.Option(help="PEM CA to verify the servers with (turns TLS on)")] = None,
) -> None:
    """Logs in (AccessService.Login with username and password) or stores a personal access token
    (--token), in the current context (or `gridtwin --context NAME login`), creating it."""
    from gridtwin.api.access.v1 import access_pb2 as pb
    from gridtwin.api.access.v1 import access_pb2_grpc as pb_grpc

    if bool(username) == bool(token):
        raise CliError("give --username (password login) or --token (a personal access token)", USAGE)
    cfg = config.load()
    context = _context_to_write(cfg)
    if server is not None:
        context = dataclasses.replace(context, server=server)
    if ca_file is not None:
        context = dataclasses.replace(context, ca_file=ca_file)
    # Addresses come from the context being written; the file changes only once the login worked.
    if username:
        if not password:
            password = typer.prompt("password", hide_input=True)
        with client.api("access", bearer="", context=context) as api:
            session = api.call(pb_grpc.AccessServiceStub(api.channel).Login,
                               pb.LoginRequest(username=username, password=password))
        context = dataclasses.replace(context, token=session.token, username=username,
                                      expires_unix_ms=session.expires_unix_ms)
        who = _principal_record(session.principal)
    else:
        with client.api("access", bearer=token, context=context) as api:
            try:
                principal = pb_grpc.AccessServiceStub(api.channel).WhoAmI(
                    pb.WhoAmIRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=30)
                who = _principal_record(principal)
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                    raise from_rpc(error, "access", api.address) from None
                who = {"name": "(not checked: this platform has no AccessService)", "expires": ""}
        context = dataclasses.replace(context, token=token, username=str(who["name"]),
                                      expires_unix_ms=0)
    path = config.save(cfg.with_context(context, current=True))
    output.note(f"logged in as {who['name']} in context {context.name!r} "
                f"(expires {who.get('expires') or output.when(context.expires_unix_ms) or 'never'}); token in {path}")


def logout() -> None:
    """Ends the session (AccessService.Logout) and forgets the context's token."""
    from gridtwin.api.access.v1 import access_pb2 as pb
    from gridtwin.api.access.v1 import access_pb2_grpc as pb_grpc

    cfg = config.load()
    context = cfg.context(client.INVOCATION.context)
    if context is None or not context.token:
        output.note("not logged in")
        return
    # Already over, or the server is away: forgetting the token locally still logs out. (A
    # personal access token is not a session: it stays valid until revoked.)
    with client.api("access", bearer=context.token) as api, contextlib.suppress(grpc.RpcError):
        pb_grpc.AccessServiceStub(api.channel).Logout(
            pb.LogoutRequest(), metadata=[("authorization", f"Bearer {context.token}")], timeout=10)
    config.save(cfg.with_context(config.forget_token(context)))
    output.note(f"logged out of context {context.name!r}")


def whoami(fmt: OutputOption = output.Format.table) -> None:
    """Who the token is (AccessService.WhoAmI): kind, scopes, group paths or installations."""
    from gridtwin.api.access.v1 import access_pb2 as pb
    from gridtwin.api.access.v1 import access_pb2_grpc as pb_grpc

    with client.api("access") as api:
        principal = api.call(pb_grpc.AccessServiceStub(api.channel).WhoAmI, pb.WhoAmIRequest())
    output.emit_one(_principal_record(principal), fmt)


@config_app.command("get-contexts")
def get_contexts(fmt: OutputOption = output.Format.table) -> None:
    """Lists the contexts (the current one marked with *)."""
    cfg = config.load()
    rows = [{"current": "*" if c.name == cfg.current else "", "name": c.name, "server": c.server,
             "servers": " ".join(f"{k}={v}" for k, v in sorted(c.servers.items())), "ca_file": c.ca_file,
             "user": c.username, "logged_in": bool(c.token), "expires": output.when(c.expires_unix_ms)}
            for c in cfg.contexts.values()]
    output.emit(rows, ["current", "name", "server", "servers", "ca_file", "user", "logged_in", "expires"], fmt,
                empty=f"no contexts in {config.path()} (gridtwin login creates one)")


@config_app.command("use-context")
def use_context(name: Annotated[str, typer.Argument()]) -> None:
    """Makes NAME the current context."""
    cfg = config.load()
    if name not in cfg.contexts:
        raise CliError(f"no context {name!r} (gridtwin config get-contexts)", USAGE)
    config.save(dataclasses.replace(cfg, current=name))
    output.note(f"current context: {name}")


@config_app.command("set-context")
def set_context(
    name: Annotated[str, typer.Argument()],
    server: Annotated[str | None, typer.Option(help="host of every service (at its default port)")] = None,
    service: Annotated[list[str] | None, typer.Option(
        help=f"SERVICE=HOST:PORT for one service (repeatable; {', '.join(config.SERVICES)})")] = None,
    ca_file: Annotated[str | None, typer.Option(help="PEM CA (turns TLS on); '' = plaintext")] = None,
) -> None:
    """Creates or changes a context's addresses (its token stays)."""
    cfg = config.load()
    context = cfg.contexts.get(name) or config.Context(name)
    servers = dict(context.servers)
    for item in service or []:
        key, _, address = item.partition("=")
        if key not in config.SERVICES or not address:
            raise CliError(f"--service {item!r}: SERVICE=HOST:PORT, SERVICE one of {', '.join(config.SERVICES)}",
                           USAGE)
        servers[key] = address
    context = dataclasses.replace(context, servers=servers,
                                  server=context.server if server is None else server,
                                  ca_file=context.ca_file if ca_file is None else ca_file)
    config.save(cfg.with_context(context))
    output.note(f"context {name!r} saved in {config.path()}")
