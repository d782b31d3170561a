"""A test client of the AssetService over a real channel: tokens, calls by method name, row counts."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc

from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc
from services.access.model import Scope
from services.access.service_tokens import issue_token
from services.assets.api import AssetApi
from services.assets.model import GroupPath
from services.assets.repository import AssetRepository

TABLES = ("customers", "installations", "devices", "hierarchy_groups", "programs", "group_memberships",
          "enrollment_audit", "api_principals")
OK = grpc.StatusCode.OK


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def device_auth(device_id: str, credential: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Device {device_id} {credential}"),)


class AssetsClient:
    def __init__(self, api: AssetApi, pool: asyncpg.Pool, channel: grpc.aio.Channel) -> None:
        self.api = api
        self.pool = pool
        self.repository: AssetRepository = api.repository
        self.stub = pb_grpc.AssetServiceStub(channel)
        self.root = ""  # a global admin token, minted by connect()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, api: AssetApi, pool: asyncpg.Pool) -> AsyncIterator[AssetsClient]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            client = cls(api, pool, channel)
            client.root = await client.token(Scope.ADMIN, paths=("",), name="root")
            yield client

    async def token(self, *scopes: Scope, paths: tuple[str, ...] = ("",), expires_unix_ms: int | None = None,
                    name: str = "test") -> str:
        """Mints a token straight into the database (as `gridtwin assets token create` does)."""
        token, principal = issue_token(name, frozenset(scopes), tuple(GroupPath(p) for p in paths), expires_unix_ms)
        await self.repository.create_principal(principal, hashlib.sha256(token.encode()).digest(), "test")
        return token

    async def call(self, method: str, request: Any, token: str | None = None,
                   metadata: tuple[tuple[str, str], ...] | None = None) -> Any:
        """The response; raises grpc.aio.AioRpcError when refused. Uses the root token by default."""
        if metadata is None:
            metadata = bearer(token if token is not None else self.root)
        return await getattr(self.stub, method)(request, metadata=metadata)

    async def outcome(self, method: str, request: Any, token: str | None = None,
                      metadata: tuple[tuple[str, str], ...] | None = None) -> tuple[grpc.StatusCode, Any]:
        """(OK, response) or (the refusal's code, its details)."""
        try:
            return OK, await self.call(method, request, token, metadata)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details()

    async def counts(self) -> dict[str, int]:
        return {t: await self.pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}

    # ------------------------------------------------------------ building a world

    async def group(self, path: str) -> None:
        await self.call("CreateGroup", pb.CreateGroupRequest(path=path))

    async def installation(self, installation_id: str, longitude_deg: float, latitude_deg: float,
                           *groups: str, customer_id: str = "") -> pb.Installation:
        request = pb.CreateInstallationRequest(
            installation=pb.Installation(
                installation_id=installation_id, customer_id=customer_id,
                location=pb.GeoPoint(longitude_deg=longitude_deg, latitude_deg=latitude_deg),
                time_zone="America/Los_Angeles", battery_nominal_energy_wh=13_500, max_charge_power_w=5_000,
                max_discharge_power_w=5_000),
            group_paths=list(groups))
        return await self.call("CreateInstallation", request)

    async def device(self, installation_id: str, serial: str) -> pb.RegisterDeviceResponse:
        return await self.call("RegisterDevice", pb.RegisterDeviceRequest(installation_id=installation_id,
                                                                           serial=serial))
