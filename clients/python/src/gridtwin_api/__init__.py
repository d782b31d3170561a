"""The gridtwin platform's gRPC contracts, generated from its proto/ by `gridtwin proto generate`. Do not edit.

Modules: gridtwin_api.<domain>.v1.<file>_pb2 (messages) and <file>_pb2_grpc (stubs)."""
