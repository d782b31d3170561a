"""The platform's Kafka topics: created where missing, with their partition counts."""

from __future__ import annotations

from gridtwin.settings import KafkaSettings


async def ensure_topics(kafka: KafkaSettings, topics: dict[str, int]) -> None:
    """Creates missing topics with the given partition counts."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name, partitions in topics.items() if name not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


def platform_topics(kafka: KafkaSettings) -> dict[str, int]:
    return {kafka.telemetry_topic: kafka.telemetry_partitions, kafka.device_events_topic: kafka.telemetry_partitions,
            kafka.alerts_topic: kafka.telemetry_partitions}
