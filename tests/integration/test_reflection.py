"""Server reflection as grpcurl and newer clients use it: v1 (`grpc.reflection.v1`) beside
v1alpha, on the server every gridtwin service runs (gridtwin/grpc_server.py)."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from gridtwin import reflection
from gridtwin.api.weather.v1 import weather_pb2, weather_pb2_grpc
from gridtwin.grpc_server import GrpcServer

WEATHER = weather_pb2.DESCRIPTOR.services_by_name["WeatherService"].full_name


def _v1_classes() -> tuple[type, type]:
    """A v1 client's own message classes, from a pool of its own (not the server's)."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(reflection.v1_file_descriptor())
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest"))
    response = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse"))
    return request, response


async def _ask(port: int, service: str, requests: list[object], response_type: type) -> list[object]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(f"/{service}/ServerReflectionInfo",
                                     request_serializer=lambda m: m.SerializeToString(),  # type: ignore[attr-defined]
                                     response_deserializer=response_type.FromString)  # type: ignore[attr-defined]
        return [reply async for reply in call(iter(requests))]


async def test_a_v1_reflection_client_lists_the_services_and_reads_their_schema() -> None:
    server = GrpcServer("127.0.0.1", 0, [WEATHER],
                        lambda s: weather_pb2_grpc.add_WeatherServiceServicer_to_server(
                            weather_pb2_grpc.WeatherServiceServicer(), s))
    await server.start()
    try:
        request, response = _v1_classes()
        listed, described, own = await _ask(server.port, "grpc.reflection.v1.ServerReflection", [
            request(list_services=""),
            request(file_containing_symbol=WEATHER),
            request(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
        ], response)
        names = {s.name for s in listed.list_services_response.service}  # type: ignore[attr-defined]
        assert {WEATHER, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"} <= names
        files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                 for raw in described.file_descriptor_response.file_descriptor_proto]  # type: ignore[attr-defined]
        assert any(s.name == "WeatherService" for f in files for s in f.service)
        own_files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                     for raw in own.file_descriptor_response.file_descriptor_proto]  # type: ignore[attr-defined]
        assert own_files[0].package == "grpc.reflection.v1"

        # v1alpha still answers (older grpcurl, grpcui).
        from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

        (old,) = await _ask(server.port, "grpc.reflection.v1alpha.ServerReflection",
                            [v1alpha.ServerReflectionRequest(list_services="")], v1alpha.ServerReflectionResponse)
        assert WEATHER in {s.name for s in old.list_services_response.service}  # type: ignore[attr-defined]
    finally:
        await server.stop(0)
