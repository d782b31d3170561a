"""The pure twin logic: state, rules, alert lifecycle. Never imports ray, grpc, asyncpg or *_pb2."""
