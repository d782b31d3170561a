"""gRPC server reflection under both names clients ask for: `grpc.reflection.v1alpha` (what
grpcio-reflection serves) and `grpc.reflection.v1` (what grpcurl, Postman and grpc-java ask for
first; grpc-java deprecated v1alpha). grpcio-reflection has no v1 servicer yet
(grpc/grpc#38576), but the two protocols are the same messages with the same field numbers under
another package name, so one servicer answers both: the v1 method decodes with the v1alpha
message classes, and the v1 file descriptor (the v1alpha one renamed) is registered in the
descriptor pool so that a client can ask for the reflection service's own schema too.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_V1_PACKAGE = "grpc.reflection.v1"


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The v1 reflection schema: v1alpha's file under v1's package and file name."""
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha.DESCRIPTOR.CopyToProto(proto)
    old_prefix, new_prefix = f".{v1alpha.DESCRIPTOR.package}.", f".{_V1_PACKAGE}."
    proto.name, proto.package = _V1_FILE, _V1_PACKAGE
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old_prefix):
                field.type_name = new_prefix + field.type_name.removeprefix(old_prefix)
    for service in proto.service:
        for method in service.method:
            method.input_type = new_prefix + method.input_type.removeprefix(old_prefix)
            method.output_type = new_prefix + method.output_type.removeprefix(old_prefix)
    proto.options.ClearField("java_package")
    return proto


def _register_v1_schema(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
    except KeyError:
        pool.Add(v1_file_descriptor())


def enable(service_names: list[str] | tuple[str, ...], server: grpc.aio.Server) -> None:
    """Serves reflection v1alpha and v1 on `server`, listing `service_names` and both reflection
    services. Call before the server starts."""
    _register_v1_schema(descriptor_pool.Default())
    names = [*service_names, V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME]
    servicer = reflection.aio.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=v1alpha.ServerReflectionRequest.FromString,
            response_serializer=v1alpha.ServerReflectionResponse.SerializeToString),
    }),))
