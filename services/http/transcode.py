"""JSON ↔ protobuf for the HTTP API: pure functions over the generated descriptors.

JSON follows the proto3 JSON mapping (lowerCamelCase names, 64-bit integers as strings, enums
by name); requests may name fields either way (`startUnixMs` or `start_unix_ms`). Bad input is
refused before any call, each fault with the RFC 6901 pointer of the member at fault (or the
query parameter): unknown fields, wrong types, integers out of range, NaN and infinities (JSON has
none, and no quantity of ours is one).
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import gridtwin.api
from gridtwin.errors import json_pointer

_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)


@dataclass(frozen=True)
class Fault:
    """One thing wrong with a request: `pointer` into the JSON body, or `parameter` (path/query)."""

    detail: str
    pointer: str = ""
    parameter: str = ""


class BadRequest(Exception):
    def __init__(self, faults: list[Fault]) -> None:
        super().__init__("; ".join(f"{f.pointer or f.parameter or '/'}: {f.detail}" for f in faults))
        self.faults = faults


def _load_descriptors() -> None:
    for module in pkgutil.walk_packages(gridtwin.api.__path__, "gridtwin.api."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def method_descriptor(rpc: str) -> MethodDescriptor:
    """`/pkg.Service/Method` → its descriptor (from the generated modules under gridtwin.api)."""
    _load_descriptors()
    service, method = rpc.strip("/").split("/")
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]


def message_class(descriptor: Descriptor) -> type[Message]:
    return GetMessageClass(descriptor)


def find_field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    found = descriptor.fields_by_name.get(name)
    if found is None:
        found = next((f for f in descriptor.fields if f.json_name == name), None)
    return found


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


# ------------------------------------------------------------------ JSON bodies

def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(raw: bytes) -> Any:
    """The JSON document in `raw` (empty: an empty object); NaN and Infinity refused."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest([Fault(f"not valid JSON: {exc}")]) from None


def _scalar_fault(field: FieldDescriptor, value: Any) -> str | None:
    """Why `value` cannot be the JSON form of scalar `field` (None: it can)."""
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int | str | float):
            return "expected an integer"
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except ValueError:
            number = None
        if number is None:
            return "expected an integer"
        low, high = _INT_RANGES[cpp]
        return None if low <= number <= high else f"out of range [{low}, {high}]"
    if cpp in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "expected a number"
        try:
            number_f = float(value)
        except ValueError:
            return "expected a number"
        return None if math.isfinite(number_f) else "expected a finite number"
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return None if isinstance(value, bool) else "expected true or false"
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        names = field.enum_type.values_by_name
        if isinstance(value, str) and value in names:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value in field.enum_type.values_by_number:
            return None
        return "expected one of " + ", ".join(n for n in names if not n.endswith("_UNSPECIFIED"))
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return None if isinstance(value, str) else "expected a string"
    return None


def check(descriptor: Descriptor, value: Any, pointer: str = "") -> list[Fault]:
    """Every fault of `value` as the JSON form of a `descriptor` message, with pointers."""
    if not isinstance(value, dict):
        return [Fault("expected an object", pointer=pointer or "")]
    faults: list[Fault] = []
    for key, item in value.items():
        here = f"{pointer}/{_escape(key)}"
        field = find_field(descriptor, key)
        if field is None:
            faults.append(Fault("unknown field", pointer=here))
            continue
        if item is None:
            continue
        if is_map(field):
            if not isinstance(item, dict):
                faults.append(Fault("expected an object", pointer=here))
                continue
            value_field = field.message_type.fields_by_name["value"]
            for k, v in item.items():
                faults += _check_value(value_field, v, f"{here}/{_escape(k)}")
        elif field.is_repeated:
            if not isinstance(item, list):
                faults.append(Fault("expected an array", pointer=here))
                continue
            for i, element in enumerate(item):
                faults += _check_value(field, element, f"{here}/{i}")
        else:
            faults += _check_value(field, item, here)
    return faults


def _check_value(field: FieldDescriptor, value: Any, pointer: str) -> list[Fault]:
    if field.message_type is not None:
        return check(field.message_type, value, pointer)
    fault = _scalar_fault(field, value)
    return [Fault(fault, pointer=pointer)] if fault else []


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


# ------------------------------------------------------------------ path and query parameters

def _field_path(descriptor: Descriptor, dotted: str) -> list[FieldDescriptor] | None:
    path: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in dotted.split("."):
        if current is None:
            return None
        field = find_field(current, part)
        if field is None:
            return None
        path.append(field)
        current = field.message_type if not is_map(field) else None
    return path


def _from_text(field: FieldDescriptor, text: str) -> Any:
    """A query/path string as the JSON value of scalar `field` (checked by `_scalar_fault`)."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), text)
    if cpp in _FLOATS:
        try:
            return float(text)
        except ValueError:
            return text
    if cpp == FieldDescriptor.CPPTYPE_ENUM and text.lstrip("-").isdigit():
        return int(text)
    return text


def parameters_to_json(descriptor: Descriptor, items: Iterable[tuple[str, str]], *,
                       path: bool = False) -> dict[str, Any]:
    """Query (or path) parameters as a JSON object for `descriptor`: `a.b=1` sets member b of a;
    a repeated field takes every value given. Unknown or ill-typed parameters are faults."""
    document: dict[str, Any] = {}
    faults: list[Fault] = []
    for name, text in items:
        fields = _field_path(descriptor, name)
        if fields is None or any(f.is_repeated for f in fields[:-1]) or fields[-1].message_type is not None:
            faults.append(Fault("unknown parameter" if fields is None else "not a scalar field", parameter=name))
            continue
        leaf = fields[-1]
        value = _from_text(leaf, text)
        fault = _scalar_fault(leaf, value)
        if fault:
            faults.append(Fault(fault, parameter=name))
            continue
        target = document
        for f in fields[:-1]:
            target = target.setdefault(f.name, {})
        if leaf.is_repeated and not path:
            target.setdefault(leaf.name, []).append(value)
        else:
            target[leaf.name] = value
    if faults:
        raise BadRequest(faults)
    return document


def merge(into: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` written over `into` (nested objects merged, proto and JSON names unified by the
    caller passing proto names in both)."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def _proto_names(descriptor: Descriptor, document: dict[str, Any]) -> dict[str, Any]:
    """`document` (already checked) with every member under its proto field name, so that body
    and parameters merge however each spelled its names."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        field = find_field(descriptor, key)
        assert field is not None
        if field.message_type is not None and not is_map(field) and isinstance(value, dict):
            value = _proto_names(field.message_type, value)
        elif field.message_type is not None and field.is_repeated and isinstance(value, list) and not is_map(field):
            value = [_proto_names(field.message_type, v) if isinstance(v, dict) else v for v in value]
        out[field.name] = value
    return out


def build_request(descriptor: Descriptor, *, body: Any = None, body_field: str = "",
                  path_params: Mapping[str, str] = {}, query: Iterable[tuple[str, str]] = (),
                  fixed: Mapping[str, Any] = {}) -> Message:
    """The request message: the body (whole, or as field `body_field`), then query parameters,
    then path parameters and `fixed` values, each written over what came before."""
    document: dict[str, Any] = {}
    if body is not None and body_field:
        field = find_field(descriptor, body_field)
        assert field is not None and field.message_type is not None, body_field
        faults = check(field.message_type, body)
        if faults:
            raise BadRequest(faults)
        document[field.name] = _proto_names(field.message_type, body)
    elif body is not None:
        faults = check(descriptor, body)
        if faults:
            raise BadRequest(faults)
        document = _proto_names(descriptor, body)
    merge(document, parameters_to_json(descriptor, query))
    merge(document, parameters_to_json(descriptor, path_params.items(), path=True))
    for dotted, value in fixed.items():
        target = document
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    message = message_class(descriptor)()
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as exc:
        raise BadRequest([Fault(str(exc))]) from None
    return message


def to_json(message: Message) -> dict[str, Any]:
    """The proto3 JSON form of `message`, every field shown (zeros too: a client reads a stable
    shape)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def field_value(message: Message, dotted: str) -> Any:
    value: Any = message
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def pointer_of(field: str) -> str:
    return json_pointer(field)
