"""Live contribution behind telemetry: N installations at 1 Hz through the real broker into a
ContributionTracker. Prints the lag of the contribution behind the telemetry (device timestamp
of each record's newest sample → applied to the node sums: p50/p99; the goal is < 2 s) and the
updates applied per second.

    .venv/bin/python -m bench.contribution [--installations 10000] [--seconds 30]

It uses a topic of its own (8 partitions) on the project's broker and no database: memberships
are given (10 utilities × 10 regions × 10 feeders + one program).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import numpy as np
from aiokafka import AIOKafkaProducer

from gridtwin import kafka_topics
from gridtwin.api.device.v1.device_pb2 import Sample
from gridtwin.api.telemetry.v1.records_pb2 import TelemetryRecord
from gridtwin.app import infra
from gridtwin.settings import Settings
from services.control.vpp.contribution import ContributionIndex, ContributionTracker


async def run(installations: int, seconds: float, partitions: int) -> None:
    settings = Settings()
    infra.ensure_broker(settings.kafka, settings.var_dir)
    topic = f"bench-contribution-{uuid.uuid4().hex[:8]}"
    await kafka_topics.ensure_topics(settings.kafka, {topic: partitions})
    ids = [f"inst{k:06d}" for k in range(installations)]
    memberships = {i: [f"utility.u{k % 10}.r{k // 10 % 10}.f{k // 100 % 10}", "program.vpp.enrolled"]
                   for k, i in enumerate(ids)}
    ages: list[float] = []
    tracker = ContributionTracker(
        bootstrap_servers=settings.kafka.bootstrap_servers, topic=topic, group_id=None, pool=None,
        index=ContributionIndex(memberships, stale_after_s=30), on_sample_age=ages.append)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    rng = np.random.default_rng(1)
    power = rng.uniform(-3000, 5000, installations)
    keys = [i.encode() for i in ids]
    try:
        async with tracker:
            await asyncio.wait_for(tracker.ready.wait(), 60)
            warmup_s, started = 3.0, time.time()
            tick, measured_from, updates_at_start = 0, 0.0, 0
            # Every installation reports once a second, spread evenly over the second.
            while time.time() - started < seconds + warmup_s:
                second = started + tick
                for chunk in range(10):
                    lo, hi = chunk * installations // 10, (chunk + 1) * installations // 10
                    await asyncio.sleep(max(second + chunk / 10 - time.time(), 0))
                    now_ms = int(time.time() * 1000)
                    for k in range(lo, hi):
                        record = TelemetryRecord(device_id=ids[k], installation_id=ids[k], received_unix_ms=now_ms,
                                                 samples=[Sample(timestamp_unix_ms=now_ms, battery_power_w=power[k])])
                        await producer.send(topic, record.SerializeToString(), key=keys[k])
                tick += 1
                if tick == int(warmup_s):
                    ages.clear()
                    measured_from, updates_at_start = time.time(), tracker.updates
            elapsed = time.time() - measured_from
            produced = (tick - int(warmup_s)) * installations
            await producer.flush()
            await asyncio.sleep(1.0)
            a = np.array(ages)
            program = tracker.index.node("program.vpp")
            print(f"{installations} installations at 1 Hz, {partitions} partitions, {elapsed:.1f} s measured")
            print(f"contribution lag behind telemetry: p50 {np.percentile(a, 50) * 1000:.0f} ms, "
                  f"p99 {np.percentile(a, 99) * 1000:.0f} ms, max {a.max() * 1000:.0f} ms (goal < 2 s)")
            applied = tracker.updates - updates_at_start
            print(f"updates applied: {applied:,} of {produced:,} produced, {applied / elapsed:,.0f}/s; "
                  f"program node: {program.discharge_w / 1e6:.2f} MW from "
                  f"{program.installations_reporting} installations")
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installations", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.installations, args.seconds, args.partitions))


if __name__ == "__main__":
    main()
