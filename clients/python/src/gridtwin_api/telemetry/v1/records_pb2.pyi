from gridtwin_api.device.v1 import device_pb2 as _device_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TelemetryRecord(_message.Message):
    __slots__ = ("device_id", "installation_id", "sequence", "received_unix_ms", "gateway_id", "samples")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    installation_id: str
    sequence: int
    received_unix_ms: int
    gateway_id: str
    samples: _containers.RepeatedCompositeFieldContainer[_device_pb2.Sample]
    def __init__(self, device_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., received_unix_ms: _Optional[int] = ..., gateway_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[_device_pb2.Sample, _Mapping]]] = ...) -> None: ...
