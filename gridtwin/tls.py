"""TLS from `TlsSettings`: server credentials for gRPC, SSL contexts for the websocket gateway, and
channels and contexts for the clients that talk to them — one place that reads the PEM files.

Every function returns None (servers) or a plaintext channel (clients) when TLS is off, so callers
never branch on it themselves.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

import grpc

from gridtwin.settings import TlsSettings


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _server_files(tls: TlsSettings) -> tuple[str, str]:
    if not tls.cert_file or not tls.key_file:
        raise ValueError("tls is enabled but cert_file/key_file are not set: a server needs both")
    return tls.cert_file, tls.key_file


# ------------------------------------------------------------ gRPC

def grpc_server_credentials(tls: TlsSettings | None) -> grpc.ServerCredentials | None:
    """The credentials a gRPC server binds its port with; None: plaintext."""
    if tls is None or not tls.enabled:
        return None
    cert_file, key_file = _server_files(tls)
    return grpc.ssl_server_credentials(
        [(_read(key_file), _read(cert_file))],
        root_certificates=_read(tls.ca_file) if tls.ca_file else None,
        require_client_auth=tls.require_client_cert,
    )


def grpc_channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file) if tls.ca_file else None,   # None: the system's CAs
        private_key=_read(tls.key_file) if tls.key_file else None,
        certificate_chain=_read(tls.cert_file) if tls.cert_file else None,
    )


def aio_channel(target: str, tls: TlsSettings | None, *,
                options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel:
    """An asyncio channel to a gridtwin gRPC server: TLS verified against `tls.ca_file` when
    `tls.enabled`, plaintext otherwise."""
    if tls is None or not tls.enabled:
        return grpc.aio.insecure_channel(target, options=list(options))
    return grpc.aio.secure_channel(target, grpc_channel_credentials(tls), options=list(options))


def channel(target: str, tls: TlsSettings | None, *, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """As `aio_channel`, blocking (the CLI)."""
    if tls is None or not tls.enabled:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, grpc_channel_credentials(tls), options=list(options))


# ------------------------------------------------------------ websockets (and any other TLS socket)

def server_ssl_context(tls: TlsSettings | None) -> ssl.SSLContext | None:
    """The gateway's context (wss://); None: plaintext. Devices are not asked for certificates:
    they authenticate with their credential in the Hello."""
    if tls is None or not tls.enabled:
        return None
    cert_file, key_file = _server_files(tls)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def client_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """A client context that verifies the server's certificate and host name against `ca_file`
    (empty: the system's CAs)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
