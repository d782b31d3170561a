"""Weather: provider adapters (NWS alerts GeoJSON), normalization of alert areas to WKT,
the alert lifecycle (Alert / Update / Cancel / expiry), storage, the WeatherService gRPC API,
two-step geo matching of installations, StormWatch rules and the poller that ties them together."""
