"""gridtwin edge: the device side of the protocol, for a Raspberry-Pi-class computer at the home.

It reads the local devices of one installation through adapters (Tesla Powerwall local API,
Fronius Solar API v1, SunSpec over Modbus TCP, DSMR/P1 smart meters, MQTT topics), combines their
readings into the installation's samples, and streams them to the gateway with the device
protocol (proto/gridtwin/device/v1/device.proto); it carries out the commands the devices allow.

    adapters (edge/adapters/)  ──Snapshot──▶ combine.py ──SampleValues──▶ buffer.py (SQLite WAL)
    read → readings with units                pure: which source            │ sequences, batches,
    and timestamps; apply → result            owns each signal              ▼ acks survive power loss
          ▲                                                              uplink.py ──wss──▶ gateway
          └── control.py (pure: command → actions, plans → setpoints) ◀── link.py (sans-I/O frames)

Pure core (model, units, combine, control, link, backoff, the vendors' mapping functions at the top
of each adapter module), thin I/O around it (adapters, buffer, uplink, agent). Nothing here imports
the platform's services: the agent is its own small process (`python -m edge`, `gridtwin edge`).
"""

__version__ = "0.1.0"
