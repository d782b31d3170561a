"""Notices of samples the store did not take: grouped per device and gateway, carried on the
commands topic, read by the edge agent's session."""

from gridtwin.api.control.v1 import control_pb2 as cpb
from gridtwin.api.device.v1 import device_pb2 as pb
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from services.telemetry.notices import SamplesNotStored, conflicting_resends, notice_message

T0 = 1_750_000_000_000


def test_conflicts_become_one_notice_per_device_with_its_last_gateway_in_ascending_chunks():
    records = [TelemetryRecord(device_id="a", gateway_id="gw-1"), TelemetryRecord(device_id="b", gateway_id="gw-1"),
               TelemetryRecord(device_id="a", gateway_id="gw-2"), TelemetryRecord(device_id="c", gateway_id="gw-3")]
    conflicting = [("a", (T0 + 2) * 1_000), ("a", T0 * 1_000), ("b", T0 * 1_000), ("a", (T0 + 1) * 1_000),
                   ("a", T0 * 1_000)]
    assert conflicting_resends(conflicting, records, max_timestamps=2) == [
        SamplesNotStored("gw-2", "a", (T0, T0 + 1)), SamplesNotStored("gw-2", "a", (T0 + 2,)),
        SamplesNotStored("gw-1", "b", (T0,))]
    assert conflicting_resends([], records, max_timestamps=2) == []


def test_a_notice_travels_as_a_gateway_command_batch():
    batch = cpb.GatewayCommandBatch.FromString(notice_message(SamplesNotStored("gw-1", "a", (T0, T0 + 1))))
    assert batch.gateway_id == "gw-1" and not batch.commands
    [entry] = batch.notices
    assert entry.device_id == "a" and list(entry.notice.timestamps_unix_ms) == [T0, T0 + 1]
    assert entry.notice.reason == pb.REJECT_REASON_CONFLICTING_RESEND
    assert entry.notice.detail == "conflicting re-send: the stored values differ"


def test_the_edge_session_reads_a_notice():
    from edge import link

    session = link.Session(hello_sent_ms=T0)
    notice = pb.SampleNotice(timestamps_unix_ms=[T0], reason=pb.REJECT_REASON_CONFLICTING_RESEND, detail="why")
    event = session.receive(pb.CloudFrame(sample_notice=notice).SerializeToString(), T0)
    assert event == link.SamplesNotStored((T0,), "conflicting_resend", "why")


def test_the_edge_counters_count_samples_not_stored():
    from edge.counters import Counters

    counters = Counters()
    counters.not_stored("conflicting_resend", "why", (T0, T0 + 1))
    assert counters.samples_not_stored == {"conflicting_resend": 2}
    assert "not stored 2" in counters.summary()


async def test_the_simulated_device_logs_and_counts_a_notice():
    from simulator.device import DeviceOptions, SimulatedDevice
    from simulator.ledger import Ledger

    class Frames:
        def __init__(self, *frames: bytes) -> None:
            self._frames = list(frames)

        def __aiter__(self):
            return self

        async def __anext__(self) -> bytes:
            if not self._frames:
                raise StopAsyncIteration
            return self._frames.pop(0)

    ledger = Ledger()
    device = SimulatedDevice("sim-1", "secret", DeviceOptions(url="ws://unused"), ledger)
    notice = pb.SampleNotice(timestamps_unix_ms=[T0, T0 + 1_000], reason=pb.REJECT_REASON_CONFLICTING_RESEND)
    await device._handle_frames(Frames(pb.CloudFrame(sample_notice=notice).SerializeToString()), set())  # type: ignore[arg-type]
    assert ledger.not_stored["sim-1"] == [(T0, "REJECT_REASON_CONFLICTING_RESEND"),
                                          (T0 + 1_000, "REJECT_REASON_CONFLICTING_RESEND")]
    assert ledger.refused_total() == 0
