"""The virtual power plant: grid events (gRPC and OpenADR 3), dispatch to the twins, live
contribution per hierarchy node, and the after-event report with compensation."""
