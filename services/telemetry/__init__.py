"""Telemetry: the websocket gateway, the Kafka ingest consumers, the time-series store and rollups,
and the telemetry gRPC API."""
