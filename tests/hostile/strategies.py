"""Hypothesis strategies and fixed lists of hostile input, shared by the unit and live hostile tests.

Hypothesis runs derandomized here (a fixed seed per test): CI sees the same inputs every run, and
a failure found once is found again.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gridtwin.api.device.v1 import device_pb2 as pb

# Deterministic, no deadline (CI machines are shared and slow), no example database on disk.
settings.register_profile(
    "hostile", derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HOSTILE = settings.get_profile("hostile")

# Strings that break naive ltree, lquery/ltxtquery and SQL handling, and text Postgres refuses.
HOSTILE_STRINGS: tuple[str, ...] = (
    "a.b'; DROP TABLE installations;--",
    "'; DELETE FROM devices WHERE ''='",
    "\" OR 1=1 --",
    "*.!@#",
    "a.b|c",
    "a.*{1,}.b",
    "!a & b | c",
    "a.b@ & c*",
    "utility.*",
    "a..b",
    ".",
    "a.b\x00c",
    "\x00",
    "$1",
    "%_%",
    "\\",
    "a.b\nc",
    "ütility.pge",
    "\u202eevil",
    "🔋.⚡",
    "a" * 300,
    ".".join(["x"] * 70_000),
)

# Sequence numbers near the ends of uint64, where sign or overflow bugs show.
SEQUENCES = st.one_of(st.integers(0, 20), st.integers(2**63 - 3, 2**63 + 3), st.integers(2**64 - 3, 2**64 - 1),
                      st.integers(0, 2**64 - 1))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 50.0, 1e6, -1e6]))
TIMESTAMPS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(1_749_999_000_000, 1_750_000_100_000))


@st.composite
def samples(draw: st.DrawFn) -> pb.Sample:
    return pb.Sample(
        timestamp_unix_ms=draw(TIMESTAMPS),
        site_power_w=draw(FLOATS), battery_power_w=draw(FLOATS), solar_power_w=draw(FLOATS),
        load_power_w=draw(FLOATS), state_of_charge_pct=draw(FLOATS),
        grid_status=draw(st.integers(0, 3)),
        extra=draw(st.dictionaries(st.text(max_size=8), FLOATS, max_size=3)),
    )


def hello_frames(device_ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[pb.DeviceFrame]:
    ids = device_ids if device_ids is not None else st.one_of(st.text(max_size=40),
                                                              st.sampled_from(HOSTILE_STRINGS[:20]))
    return st.builds(lambda d, c, v: pb.DeviceFrame(hello=pb.Hello(device_id=d, credential=c, protocol_version=v)),
                     ids, st.text(max_size=40), st.one_of(st.just(1), st.integers(0, 2**32 - 1)))


def telemetry_frames(max_samples: int = 40) -> st.SearchStrategy[pb.DeviceFrame]:
    return st.builds(lambda seq, ss: pb.DeviceFrame(telemetry=pb.TelemetryBatch(sequence=seq, samples=ss)),
                     SEQUENCES, st.lists(samples(), max_size=max_samples))


def oversized_batches(limit: int) -> st.SearchStrategy[pb.DeviceFrame]:
    """A batch one to a few samples over the session's limit (cheap samples: the count is the point)."""
    return st.builds(lambda seq, extra: pb.DeviceFrame(telemetry=pb.TelemetryBatch(
        sequence=seq, samples=[pb.Sample(timestamp_unix_ms=i) for i in range(limit + extra)])),
        SEQUENCES, st.integers(1, 3))


def event_frames() -> st.SearchStrategy[pb.DeviceFrame]:
    ack = st.builds(lambda i, o, d: pb.DeviceFrame(command_ack=pb.CommandAck(command_id=i, outcome=o, detail=d)),
                    st.text(max_size=20), st.integers(0, 4), st.text(max_size=20))
    report = st.builds(lambda ts, r, c: pb.DeviceFrame(state_report=pb.StateReport(
        timestamp_unix_ms=ts, backup_reserve_pct=r, config=c)),
        TIMESTAMPS, FLOATS, st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
    return st.one_of(ack, report)


def device_frames(max_samples_per_batch: int) -> st.SearchStrategy[bytes]:
    """Bytes a hostile device may send: garbage, truncated/extended protobuf, and well-formed
    frames with hostile content, in any order."""
    frames = st.one_of(hello_frames(), telemetry_frames(), event_frames(), oversized_batches(max_samples_per_batch),
                       st.just(pb.DeviceFrame()))
    serialized = frames.map(lambda f: f.SerializeToString())
    return st.one_of(
        serialized,
        serialized,
        st.binary(max_size=200),
        st.tuples(serialized, st.binary(min_size=1, max_size=20)).map(lambda t: t[0] + t[1]),   # trailing junk
        serialized.filter(lambda b: len(b) > 1).map(lambda b: b[: len(b) // 2]),                 # truncated
    )
