"""The telemetry gRPC API against real Postgres and the real broker, called over a real channel."""

import asyncio
import uuid

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from gridtwin.api.device.v1 import device_pb2 as dpb
from gridtwin.api.telemetry.v1 import telemetry_service_pb2 as pb
from gridtwin.api.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.unixtime import now_ms
from services.telemetry.api import SERVICE_NAME, LiveHub, TelemetryApi
from services.telemetry.store import TelemetryStore
from tests.integration.access_support import authenticator, authorized_channel, ensure_root_token

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
T0 = 1_750_000_000_000 // DAY_MS * DAY_MS  # a UTC midnight in mid-2025
QUEUE_SIZE = 8


def record(device: str, installation: str, ts_ms: list[int], load_w: float = 1_000.0) -> TelemetryRecord:
    samples = [dpb.Sample(timestamp_unix_ms=t, load_power_w=load_w, site_power_w=load_w, solar_power_w=0,
                          state_of_charge_pct=50, grid_status=dpb.GRID_STATUS_CONNECTED) for t in ts_ms]
    return TelemetryRecord(device_id=device, installation_id=installation, sequence=1,
                           received_unix_ms=T0, samples=samples)


async def store(pool, *records: TelemetryRecord) -> None:
    await TelemetryStore(pool, max_gap_s=300).write(list(records))


@pytest.fixture(scope="module")
async def api(platform, pool, assets_engine):
    server = TelemetryApi(platform, pool, authenticator=authenticator(assets_engine),
                          hub=LiveHub(platform.kafka, queue_size=QUEUE_SIZE))
    await server.start()
    yield server
    await server.stop(grace_s=0.5)


@pytest.fixture(scope="module")
async def channel(api, pool):
    async with authorized_channel(f"127.0.0.1:{api.port}", pool) as channel:
        yield channel


@pytest.fixture
async def stub(channel, pool) -> pb_grpc.TelemetryServiceStub:
    await ensure_root_token(pool)   # streams start at once (tests/integration/access_support.py)
    return pb_grpc.TelemetryServiceStub(channel)


def rpc_count(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("gridtwin_api_rpcs_total", {"method": method, "code": code}) or 0.0


async def refused(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code()


# ------------------------------------------------------------ GetLatestSample

async def test_latest_sample_is_the_newest_of_the_installation(clean_db, stub):
    await store(clean_db, record("d1", "home", [T0 + i * 1_000 for i in range(10)], load_w=500),
                record("d2", "home", [T0 + 20_000], load_w=700), record("d3", "other", [T0 + 60_000]))
    latest = await stub.GetLatestSample(pb.GetLatestSampleRequest(installation_id="home"))
    assert latest.device_id == "d2"
    assert latest.sample.timestamp_unix_ms == T0 + 20_000
    assert latest.sample.load_power_w == 700
    assert latest.sample.state_of_charge_pct == 50
    assert latest.sample.grid_status == dpb.GRID_STATUS_CONNECTED


async def test_latest_sample_not_found_and_invalid_ids(clean_db, stub):
    before = rpc_count("GetLatestSample", "NOT_FOUND")
    call = stub.GetLatestSample(pb.GetLatestSampleRequest(installation_id="nobody"))
    assert await refused(call) == grpc.StatusCode.NOT_FOUND
    assert rpc_count("GetLatestSample", "NOT_FOUND") == before + 1
    for bad in ("", "x" * 129, "no spaces"):
        call = stub.GetLatestSample(pb.GetLatestSampleRequest(installation_id=bad))
        assert await refused(call) == grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------------ QueryRange

def query(start_ms: int, end_ms: int, max_points: int = 0, resolution: pb.Resolution = pb.RESOLUTION_AUTO,
          installation: str = "home") -> pb.QueryRangeRequest:
    return pb.QueryRangeRequest(installation_id=installation, start_unix_ms=start_ms, end_unix_ms=end_ms,
                                max_points=max_points, resolution=resolution)


async def test_auto_gives_raw_samples_for_a_short_range(clean_db, stub):
    await store(clean_db, record("d1", "home", [T0 + i * 1_000 for i in range(180)]))
    answer = await stub.QueryRange(query(T0, T0 + 120_000))
    assert answer.resolution == pb.RESOLUTION_RAW
    assert [p.timestamp_unix_ms for p in answer.points] == [T0 + i * 1_000 for i in range(120)]
    point = answer.points[0]
    assert (point.load_power_w, point.site_power_w, point.sample_count) == (1_000, 1_000, 1)
    assert not point.HasField("energy")

    # 60 samples in a range that cuts two minutes in half: counted exactly, so they fit 60 points
    answer = await stub.QueryRange(query(T0 + 30_500, T0 + 90_500, max_points=60))
    assert answer.resolution == pb.RESOLUTION_RAW
    assert len(answer.points) == 60
    answer = await stub.QueryRange(query(T0 + 30_500, T0 + 90_500, max_points=59))
    assert answer.resolution == pb.RESOLUTION_ONE_MINUTE
    assert [p.timestamp_unix_ms for p in answer.points] == [T0, T0 + 60_000]


async def test_auto_gives_a_rollup_with_energy_for_a_long_range(clean_db, stub):
    # 1 kW for 3 h, a sample every 10 s (the last one at T0 + 3 h, just outside the range)
    await store(clean_db, record("d1", "home", [T0 + i * 10_000 for i in range(1_081)]))
    answer = await stub.QueryRange(query(T0, T0 + 3 * 3_600_000, max_points=100))
    assert answer.resolution == pb.RESOLUTION_FIFTEEN_MINUTES
    assert [p.timestamp_unix_ms for p in answer.points] == [T0 + i * 900_000 for i in range(12)]
    for point in answer.points:
        assert point.sample_count == 90
        assert point.load_power_w == pytest.approx(1_000)
        assert point.state_of_charge_pct == pytest.approx(50)
        assert point.energy.load_wh == pytest.approx(250)           # 1 kW × 15 min
        assert point.energy.grid_import_wh == pytest.approx(250)
        assert point.energy.grid_export_wh == pytest.approx(0)
        assert point.energy.covered_s == pytest.approx(900)
    assert sum(p.energy.load_wh for p in answer.points) == pytest.approx(3_000)

    answer = await stub.QueryRange(query(T0, T0 + 3 * 3_600_000, max_points=10))
    assert answer.resolution == pb.RESOLUTION_ONE_HOUR
    assert [(p.sample_count, round(p.energy.load_wh, 6)) for p in answer.points] == [(360, 1_000)] * 3

    # nothing but days fits: days, truncated to the budget
    answer = await stub.QueryRange(query(T0 - 9 * DAY_MS, T0 + DAY_MS, max_points=1))
    assert answer.resolution == pb.RESOLUTION_ONE_DAY
    assert len(answer.points) == 1
    assert answer.points[0].energy.load_wh == pytest.approx(3_000)


async def test_a_bucket_with_energy_but_no_sample(clean_db, stub):
    await store(clean_db, record("d1", "home", [T0 + 50_000, T0 + 130_000]))
    answer = await stub.QueryRange(query(T0, T0 + 180_000, resolution=pb.RESOLUTION_ONE_MINUTE))
    assert [p.timestamp_unix_ms for p in answer.points] == [T0, T0 + 60_000, T0 + 120_000]
    middle = answer.points[1]
    assert middle.sample_count == 0
    assert middle.load_power_w == 0
    assert middle.energy.load_wh == pytest.approx(1_000 * 60 / 3_600)
    assert middle.energy.covered_s == pytest.approx(60)
    assert [p.sample_count for p in answer.points] == [1, 0, 1]


async def test_an_explicit_resolution_is_honoured_and_capped(clean_db, stub):
    await store(clean_db, record("d1", "home", [T0 + i * 10_000 for i in range(1_081)]))
    answer = await stub.QueryRange(query(T0, T0 + 3 * 3_600_000, 50, pb.RESOLUTION_ONE_MINUTE))
    assert answer.resolution == pb.RESOLUTION_ONE_MINUTE
    assert [p.timestamp_unix_ms for p in answer.points] == [T0 + i * 60_000 for i in range(50)]
    assert all(p.sample_count == 6 for p in answer.points)
    assert answer.points[0].energy.load_wh == pytest.approx(1_000 / 60)

    answer = await stub.QueryRange(query(T0, T0 + 3 * 3_600_000, 5, pb.RESOLUTION_RAW))
    assert answer.resolution == pb.RESOLUTION_RAW
    assert [p.timestamp_unix_ms for p in answer.points] == [T0 + i * 10_000 for i in range(5)]

    answer = await stub.QueryRange(query(T0, T0 + DAY_MS, 0, pb.RESOLUTION_ONE_DAY))
    assert answer.resolution == pb.RESOLUTION_ONE_DAY
    assert [(p.timestamp_unix_ms, p.sample_count) for p in answer.points] == [(T0, 1_081)]


async def test_invalid_queries(clean_db, stub):
    cases = [
        query(T0, T0),                                                    # empty range
        query(T0 + 1, T0),                                                # reversed
        query(T0, T0 + 1_000, installation=""),
        query(T0, T0 + 1_000, max_points=10_001),
        query(T0, T0 + 8 * DAY_MS, resolution=pb.RESOLUTION_ONE_MINUTE),  # 11,520 buckets
        query(T0, T0 + 1_000, resolution=42),  # type: ignore[arg-type]  # unknown resolution
    ]
    for request in cases:
        assert await refused(stub.QueryRange(request)) == grpc.StatusCode.INVALID_ARGUMENT, request
    assert rpc_count("QueryRange", "INVALID_ARGUMENT") >= len(cases)


# ------------------------------------------------------------ health and reflection

async def test_health_reports_serving(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_the_service(channel):
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)]
    answers = [a async for a in reflection.ServerReflectionInfo(iter(requests))]
    assert SERVICE_NAME in {s.name for s in answers[0].list_services_response.service}
    assert answers[1].file_descriptor_response.file_descriptor_proto


# ------------------------------------------------------------ StreamLiveSamples

async def wait_for_subscribers(hub: LiveHub, installation: str, count: int) -> None:
    while hub.subscribers(installation) != count:
        await asyncio.sleep(0.01)


async def next_sample(call) -> pb.LiveSample:
    message = await call.read()
    assert message is not grpc.aio.EOF
    return message


async def test_live_samples_reach_their_installation_only_in_order(platform, api, stub):
    home, other = f"home-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    now = now_ms()
    home_call = stub.StreamLiveSamples(pb.StreamLiveSamplesRequest(installation_id=home))
    other_call = stub.StreamLiveSamples(pb.StreamLiveSamplesRequest(installation_id=other))
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka.bootstrap_servers)
    await producer.start()
    try:
        async with asyncio.timeout(60):
            await wait_for_subscribers(api.hub, home, 1)
            await wait_for_subscribers(api.hub, other, 1)

            async def produce(rec: TelemetryRecord) -> None:
                key = rec.installation_id.encode()
                await producer.send_and_wait(platform.kafka.telemetry_topic, rec.SerializeToString(), key=key)

            await produce(record("other-dev", other, [now]))
            first = record("home-dev", home, [now, now + 1_000, now + 2_000])
            await produce(first)
            await produce(first)  # a replay: must not be sent again
            # once the other installation's sample is out, anything misrouted would be queued already
            assert (await next_sample(other_call)).device_id == "other-dev"
            await produce(record("home-dev", home, [now + 3_000], load_w=2_000))

            received = []
            while not received or received[-1].sample.timestamp_unix_ms < now + 3_000:
                received.append(await next_sample(home_call))
    finally:
        home_call.cancel()
        other_call.cancel()
        await producer.stop()
    assert [m.device_id for m in received] == ["home-dev"] * 4
    assert [m.sample.timestamp_unix_ms for m in received] == [now + i * 1_000 for i in range(4)]
    assert received[-1].sample.load_power_w == 2_000
    async with asyncio.timeout(60):
        await wait_for_subscribers(api.hub, home, 0)


async def test_a_subscriber_that_falls_behind_is_ended(api, stub):
    home = f"slow-{uuid.uuid4().hex[:8]}"
    dropped = REGISTRY.get_sample_value("gridtwin_api_live_subscribers_dropped_total") or 0.0
    call = stub.StreamLiveSamples(pb.StreamLiveSamplesRequest(installation_id=home))
    async with asyncio.timeout(60):
        await wait_for_subscribers(api.hub, home, 1)
    # more records than the queue holds, handed over before the stream can send any of them
    for i in range(QUEUE_SIZE + 2):
        api.hub.dispatch(record("slow-dev", home, [T0 + i * 1_000]))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in call:
            pass
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert api.hub.subscribers(home) == 0
    assert REGISTRY.get_sample_value("gridtwin_api_live_subscribers_dropped_total") == dropped + 1


# ------------------------------------------------------------ pages and local days (issue 15)

async def test_a_range_larger_than_a_page_is_paged_without_loss_or_repeat(clean_db, stub):
    # two devices of one installation share every other timestamp: the cursor tells them apart
    await store(clean_db, record("d1", "home", [T0 + i * 1_000 for i in range(150)]),
                record("d2", "home", [T0 + i * 2_000 for i in range(75)]))
    request = query(T0, T0 + 300_000, 100, pb.RESOLUTION_RAW)
    pages, token = [], ""
    while True:
        request.page_token = token
        answer = await stub.QueryRange(request)
        assert answer.resolution == pb.RESOLUTION_RAW and len(answer.points) <= 100
        pages.append(answer.points)
        token = answer.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [100, 100, 25]
    got = sorted(p.timestamp_unix_ms for page in pages for p in page)
    assert got == sorted([T0 + i * 1_000 for i in range(150)] + [T0 + i * 2_000 for i in range(75)])

    # AUTO keeps the resolution the first page chose
    first = await stub.QueryRange(query(T0, T0 + 300_000, 10, pb.RESOLUTION_ONE_MINUTE))
    assert len(first.points) == 3 and not first.next_page_token
    first = await stub.QueryRange(query(T0, T0 + 150_000, 100))
    assert first.resolution == pb.RESOLUTION_ONE_MINUTE and not first.next_page_token

    # a token belongs to its query; a forged one is refused
    page = await stub.QueryRange(query(T0, T0 + 300_000, 100, pb.RESOLUTION_RAW))
    other = query(T0, T0 + 300_001, 100, pb.RESOLUTION_RAW)
    other.page_token = page.next_page_token
    assert await refused(stub.QueryRange(other)) == grpc.StatusCode.INVALID_ARGUMENT
    other = query(T0, T0 + 300_000, 100, pb.RESOLUTION_RAW)
    other.page_token = "not-a-token"
    assert await refused(stub.QueryRange(other)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_day_points_are_the_installations_local_days_unless_utc_is_asked(clean_db, stub):
    from services.access.credentials import DeviceRegistration, register_devices

    await register_devices(clean_db, [DeviceRegistration("berlin-dev", "berlin", "secret-berlin")])
    await clean_db.execute("UPDATE installations SET time_zone = 'Europe/Berlin' WHERE installation_id = 'berlin'")
    times = [T0 - DAY_MS + i * 240_000 for i in range(4 * 360)]      # every 4 min from T0 − 1 d to T0 + 3 d
    await store(clean_db, record("berlin-dev", "berlin", times))
    local_midnight = T0 - 2 * 3_600_000                                # CEST in June: UTC+2
    answer = await stub.QueryRange(query(T0, T0 + 2 * DAY_MS, 10, pb.RESOLUTION_ONE_DAY, installation="berlin"))
    assert answer.time_zone == "Europe/Berlin"
    days = [local_midnight + k * DAY_MS for k in range(3)]             # the local days overlapping the range
    assert [p.timestamp_unix_ms for p in answer.points] == days
    assert [p.sample_count for p in answer.points] == [sum(d <= t < d + DAY_MS for t in times) for d in days]
    assert answer.points[0].load_power_w == pytest.approx(1_000)
    assert answer.points[0].energy.load_wh == pytest.approx(24_000)

    request = query(T0, T0 + 2 * DAY_MS, 10, pb.RESOLUTION_ONE_DAY, installation="berlin")
    request.day_boundaries = pb.DAY_BOUNDARIES_UTC
    answer = await stub.QueryRange(request)
    assert answer.time_zone == "UTC"
    assert [(p.timestamp_unix_ms, p.sample_count) for p in answer.points] == [(T0, 360), (T0 + DAY_MS, 360)]

    paged = query(T0 - DAY_MS, T0 + 2 * DAY_MS, 2, pb.RESOLUTION_ONE_DAY, installation="berlin")
    first = await stub.QueryRange(paged)
    paged.page_token = first.next_page_token
    second = await stub.QueryRange(paged)
    assert [p.timestamp_unix_ms for p in [*first.points, *second.points]] == [
        local_midnight + k * DAY_MS for k in range(-1, 3)]
    assert not second.next_page_token
