"""The HTTP API: JSON resources, Server-Sent Events and OpenAPI over the gRPC services.

A transcoding gateway (as grpc-gateway or Envoy's JSON transcoder): every route calls one gRPC
method with the caller's credential, so every business rule and access rule stays in the
services. `routes` is the table, `transcode` the pure JSON ↔ protobuf mapping, `app` the ASGI
service around them.
"""
