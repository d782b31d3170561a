"""TLS on the real servers, with a throwaway CA made by the test (trustme): gRPC (AssetService with
a Bearer token; mutual TLS on the GrpcServer every service runs) and the device
gateway over wss:// (a simulated fleet's samples stored exactly once in Postgres). Clients that do
not trust the CA, or speak plaintext, get nowhere."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from actors.handoff import NoTwins
from gridtwin.api.assets.v1 import assets_pb2 as pb
from gridtwin.api.assets.v1 import assets_pb2_grpc as pb_grpc
from gridtwin.grpc_server import GrpcServer
from gridtwin.settings import TlsSettings
from gridtwin.tls import aio_channel, client_ssl_context
from services.access.credentials import CredentialDirectory, register_devices
from services.assets.api import AssetApi
from services.telemetry.gateway import Gateway
from services.telemetry.ingest import IngestConsumer
from services.telemetry.store import TelemetryStore
from simulator.device import DeviceOptions
from simulator.fleet import Fleet, FleetOptions, registrations
from tests.integration.assets_client import bearer

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Pki:
    """PEM files of a test CA, a server certificate for 127.0.0.1/localhost, a client certificate,
    and a second CA that signed none of them."""

    ca_file: str
    wrong_ca_file: str
    server_cert_file: str
    server_key_file: str
    client_cert_file: str
    client_key_file: str

    def server(self, *, require_client_cert: bool = False) -> TlsSettings:
        return TlsSettings(enabled=True, cert_file=self.server_cert_file, key_file=self.server_key_file,
                           ca_file=self.ca_file, require_client_cert=require_client_cert)

    def client(self, ca_file: str | None = None, *, with_cert: bool = False) -> TlsSettings:
        return TlsSettings(enabled=True, ca_file=self.ca_file if ca_file is None else ca_file,
                           cert_file=self.client_cert_file if with_cert else "",
                           key_file=self.client_key_file if with_cert else "")


def _write_cert(cert: trustme.LeafCert, directory: Path, stem: str) -> tuple[str, str]:
    chain, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, wrong_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    wrong_ca.cert_pem.write_to_path(str(directory / "wrong-ca.pem"))
    server = _write_cert(ca.issue_cert("127.0.0.1", "localhost"), directory, "server")
    client = _write_cert(ca.issue_cert("twins.gridtwin.internal"), directory, "client")
    return Pki(str(directory / "ca.pem"), str(directory / "wrong-ca.pem"), *server, *client)


async def _group_count(target: str, tls: TlsSettings | None, token: str) -> int | grpc.StatusCode:
    """How many groups a ListGroups call sees, or the status code it ends with."""
    async with aio_channel(target, tls) as channel:
        stub = pb_grpc.AssetServiceStub(channel)
        try:
            reply = await stub.ListGroups(pb.ListGroupsRequest(path="utility"), metadata=bearer(token), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return len(reply.groups)


async def test_grpc_over_tls_needs_the_ca(pki, platform, assets, assets_engine):
    """An authenticated AssetService call succeeds over TLS verified against the test CA; without
    that CA, with another CA, or in plaintext, the channel never comes up (UNAVAILABLE)."""
    await assets.group("utility.tls")
    settings = platform.assets.model_copy(update={"port": 0, "metrics_port": 0})
    async with AssetApi(settings, assets_engine, tls=pki.server()) as api:
        target = f"127.0.0.1:{api.port}"
        assert await _group_count(target, pki.client(), assets.root) == 2   # utility and utility.tls
        assert await _group_count(f"localhost:{api.port}", pki.client(), assets.root) == 2
        assert await _group_count(target, pki.client(pki.wrong_ca_file), assets.root) == grpc.StatusCode.UNAVAILABLE
        assert await _group_count(target, pki.client(""), assets.root) == grpc.StatusCode.UNAVAILABLE  # system CAs
        assert await _group_count(target, None, assets.root) == grpc.StatusCode.UNAVAILABLE   # plaintext


async def _health(target: str, tls: TlsSettings) -> str | grpc.StatusCode:
    async with aio_channel(target, tls) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def test_mutual_tls_between_services(pki):
    """With require_client_cert, a GrpcServer (every service's scaffold) answers only clients that
    present a certificate from the CA: service-to-service calls, never a stranger's."""
    server = GrpcServer("127.0.0.1", 0, [], lambda _: None, tls=pki.server(require_client_cert=True))
    await server.start()
    try:
        target = f"127.0.0.1:{server.port}"
        assert await _health(target, pki.client(with_cert=True)) == "SERVING"
        assert await _health(target, pki.client()) == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


@pytest.fixture
async def wss_gateway(pki, platform, clean_db):
    """A gateway serving wss:// with the test CA's certificate."""
    async with Gateway(platform.gateway, platform.kafka, CredentialDirectory(clean_db), tls=pki.server()) as gateway:
        yield gateway


@pytest.fixture
async def wss_platform(pki, isolated, clean_db):
    """A wss:// gateway and an ingest consumer, on topics of this test's own."""
    gateway = Gateway(isolated.gateway, isolated.kafka, CredentialDirectory(clean_db), tls=pki.server())
    consumer = IngestConsumer(isolated.ingest, isolated.kafka, TelemetryStore(clean_db, isolated.ingest.max_gap_s),
                              NoTwins())
    async with gateway, consumer:
        yield gateway


async def test_devices_stream_over_wss_and_samples_are_stored(pki, wss_platform, clean_db):
    options = FleetOptions(devices=3, fleet_secret="tls-fleet", id_prefix="tls")
    await register_devices(clean_db, registrations(options))
    device_options = DeviceOptions(url=f"wss://127.0.0.1:{wss_platform.port}", ca_file=pki.ca_file,
                                   backoff_initial_s=0.2, backoff_max_s=1)
    fleet = Fleet(options, device_options)
    async with fleet:
        await fleet.wait_connected(20)
        await asyncio.sleep(2)
        await fleet.stop_streaming()
        await fleet.wait_drained(20)
    ledger = fleet.ledger
    assert ledger.generated_total() >= 3 and ledger.refused_total() == 0
    async with asyncio.timeout(20):
        while await clean_db.fetchval("SELECT count(*) FROM telemetry_samples") < ledger.generated_total():
            await asyncio.sleep(0.1)
    rows = await clean_db.fetch("SELECT device_id, ts FROM telemetry_samples ORDER BY device_id, ts")
    stored: dict[str, list[int]] = {}
    for row in rows:
        stored.setdefault(row["device_id"], []).append(row["ts"] // 1_000)
    assert stored == {d: sorted(ts) for d, ts in ledger.generated.items()}


async def test_devices_without_tls_or_trusting_another_ca_cannot_connect(pki, wss_gateway, clean_db):
    options = FleetOptions(devices=1, fleet_secret="tls-fleet", id_prefix="tlsbad")
    await register_devices(clean_db, registrations(options))
    port = wss_gateway.port
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(f"wss://127.0.0.1:{port}", ssl=client_ssl_context(pki.wrong_ca_file), open_timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(f"wss://127.0.0.1:{port}", ssl=client_ssl_context(), open_timeout=5)   # system CAs
    with pytest.raises((InvalidMessage, EOFError, ConnectionError)):
        await connect(f"ws://127.0.0.1:{port}", open_timeout=5)   # plaintext to a TLS port

    # A simulated device with the wrong CA keeps retrying and never gets a session (nor sends a sample).
    fleet = Fleet(options, DeviceOptions(url=f"wss://127.0.0.1:{port}", ca_file=pki.wrong_ca_file,
                                         backoff_initial_s=0.1, backoff_max_s=0.3))
    async with fleet:
        await asyncio.sleep(2)
        assert fleet.devices[0].sessions == 0 and not fleet.devices[0].connected.is_set()
    assert await clean_db.fetchval("SELECT count(*) FROM telemetry_samples WHERE device_id LIKE 'tlsbad-%'") == 0
