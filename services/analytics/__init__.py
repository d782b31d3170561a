"""Energy analytics over the telemetry rollups: flows and ratios, daily totals in local time,
tariffs and cost, battery capacity and its fade, chart series. Pure modules (`flows`, `localtime`,
`tariffs`, `summary`, `capacity`, `series`) and thin I/O around them (`reader`, `api`, `cli`)."""
