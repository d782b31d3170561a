"""Typed settings, read from environment variables once at each entry point and passed down.

Every variable has the prefix ``GRIDTWIN_``; nested groups use ``__``, for example
``GRIDTWIN_KAFKA__BOOTSTRAP_SERVERS=broker-0:9092`` or ``GRIDTWIN_GATEWAY__PORT=8765``.
Defaults describe the single-machine platform that ``make run`` starts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class TlsSettings(BaseModel):
    """TLS for every gRPC server and the device gateway (wss://), and for the clients between them.

    Off by default (the single-machine platform speaks plaintext on loopback). With `enabled`, the
    servers present `cert_file`/`key_file`; clients (services calling services, the CLI, the
    simulator's devices) verify servers against `ca_file` (empty: the system's CAs) and present
    `cert_file`/`key_file` when given. `require_client_cert` makes the gRPC servers demand a
    client certificate signed by `ca_file` (mutual TLS between services); devices never need
    one, they authenticate with their credential. Paths are PEM files, read when a server starts.
    """

    enabled: bool = False
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    require_client_cert: bool = False

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("tls: cert_file and key_file go together")
        if self.require_client_cert and not self.ca_file:
            raise ValueError("tls: require_client_cert needs ca_file (the CA that signs client certificates)")
        return self


class PostgresSettings(BaseModel):
    url: str = "postgresql://gridtwin:gridtwin@127.0.0.1:55432/gridtwin"
    pool_min_size: int = 1
    pool_max_size: int = 8
    # The local cluster that `gridtwin infra up` creates; ignored when `url` points elsewhere.
    local_cluster: str = "gridtwin"
    manage_local_cluster: bool = True


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    telemetry_topic: str = "telemetry"
    telemetry_partitions: int = 8
    device_events_topic: str = "device-events"   # command acks and state reports
    alerts_topic: str = "twin-alerts"            # twin alerts (gridtwin.twins.v1.Alert), key = installation
    # control → gateways: one GatewayCommandBatch per gateway, on the partition its id hashes to
    commands_topic: str = "commands"
    commands_partitions: int = 8
    # memory: fast, lost when the broker stops. durable: an S3 folder store that survives restarts,
    # but this Tansu build then answers fetches seconds late (measured p50 ≈ 8 s), so it is opt-in.
    local_broker_storage: str = Field(default="memory", pattern="^(memory|durable)$")
    local_s3_port: int = 9000
    manage_local_broker: bool = True


class GatewaySettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8765
    gateway_id: str = "gateway-0"
    metrics_port: int = 9101
    max_frame_bytes: int = 2**20
    max_samples_per_batch: int = 2_000
    max_in_flight_batches_per_device: int = 8
    max_in_flight_batches_total: int = 20_000
    hello_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    rate_limit_batches_per_s: float = 20.0
    rate_limit_burst_batches: int = 200
    max_clock_skew_s: float = 300.0            # samples further in the future are rejected
    max_sample_age_s: float = 30 * 86_400.0    # older samples are rejected
    produce_linger_ms: int = 5
    auth_cache_s: float = 60.0
    # How often every open session's credential is checked again: a device revoked, or rotated
    # with its old credential's grace over, is closed (4001) within this (plus auth_cache_s).
    revalidate_s: float = 60.0
    # The session registry (which gateway holds which device, services/control/routing.py).
    registry_flush_interval_s: float = 0.02
    heartbeat_interval_s: float = 5.0


class IngestSettings(BaseModel):
    group_id: str = "telemetry-ingest"
    metrics_port: int = 9102
    max_records_per_batch: int = 2_000
    fetch_timeout_ms: int = 200
    # How long the broker may hold an empty fetch. None: 50 ms, or 500 ms against the local durable
    # broker, whose fetches never return with shorter waits.
    fetch_max_wait_ms: int | None = None
    max_pending_batches: int = 2       # written-but-not-committed batches before pausing fetches
    max_gap_s: float = 300.0            # energy is never integrated across a longer gap
    # Sample notices to devices waiting to be published; beyond it new ones are dropped, counted.
    max_pending_notices: int = 1_000


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9103
    default_max_points: int = 1_000


class AssetsSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 50052                 # gRPC AssetService
    metrics_port: int = 9105
    # A token or device found valid is trusted this long: a revocation through another replica
    # (or straight in the database) takes effect within it; through this one, at once.
    auth_cache_s: float = 10.0
    auth_cache_entries: int = 10_000


class OidcSettings(BaseModel):
    """Optional login against an external OpenID Connect identity provider (services/http/oidc.py
    runs the authorization-code flow with PKCE; services/access/identity.py checks the ID token).
    Off by default: local accounts (passwords) are the embedded default and stay on beside it.

    An identity is (issuer, subject). Its first login links it to the local user whose username
    equals `username_claim`, when that user has no identity of this issuer yet; later logins go by
    the link alone, so renaming at the provider changes nothing. `new_identities` says what an
    identity with no such user gets: "refuse" (the default: only people an admin created get in,
    so the provider cannot grant more than a local account holds), or "viewer": an operator
    account with the viewer role over `viewer_paths`, created on first login (read only, and no
    further than the paths an admin configured). Choose a `username_claim` the provider's admins
    control (`preferred_username` is editable by users at some providers; `email` with verified
    addresses, or a custom claim, is then the safer choice).
    """

    enabled: bool = False
    issuer: str = ""                   # e.g. https://login.example.com/realms/gridtwin (discovery below it)
    client_id: str = ""
    client_secret: str = ""            # "" = a public client (PKCE alone)
    scopes: list[str] = ["openid", "profile", "email"]
    # Where the provider sends the browser back, as registered there ("" = this API's own
    # /api/v1/auth/oidc/callback as the request reached it).
    redirect_url: str = ""
    username_claim: str = "preferred_username"
    new_identities: str = Field(default="refuse", pattern="^(refuse|viewer)$")
    viewer_paths: list[str] = []       # "viewer": the group paths a new account reads ("" = all)
    # Signs the short-lived cookie holding state, nonce and PKCE verifier between login and
    # callback ("" = derived from client_secret, which every replica holds).
    cookie_secret: str = ""
    flow_timeout_s: float = 600.0      # login → callback must happen within this
    clock_skew_s: float = 60.0         # leeway for the ID token's exp, iat and nbf
    jwks_cache_s: float = 3_600.0      # the provider's keys are fetched again after this (or for an unknown kid)
    http_timeout_s: float = 10.0       # discovery, keys and the token endpoint

    @model_validator(mode="after")
    def _complete(self) -> OidcSettings:
        if not self.enabled:
            return self
        if not self.issuer or not self.client_id:
            raise ValueError("oidc: enabled needs issuer and client_id")
        if "openid" not in self.scopes:
            raise ValueError("oidc: scopes must include openid")
        if not self.cookie_secret and not self.client_secret:
            raise ValueError("oidc: a public client (no client_secret) needs cookie_secret")
        if self.new_identities == "viewer" and not self.viewer_paths:
            raise ValueError('oidc: new_identities "viewer" needs viewer_paths')
        return self


class AccessSettings(BaseModel):
    """People's sessions, one-time codes and login throttling (services/access), served by the
    assets process."""

    session_ttl_s: float = 12 * 3_600.0        # a session ends this long after login at the latest
    session_idle_s: int = 30 * 60              # …or after this long without a call
    login_max_failures: int = 5                # per username and per source, within the window
    login_failure_window_s: float = 15 * 60.0
    login_lockout_s: float = 15 * 60.0
    reset_ttl_s: float = 3_600.0               # a password reset code
    invitation_ttl_s: float = 7 * 86_400.0     # an invitation code
    client_token_ttl_s: int = 3_600            # an OAuth 2.0 client access token
    oidc: OidcSettings = OidcSettings()        # GRIDTWIN_ACCESS__OIDC__ENABLED=true, …__ISSUER=…


class AnalyticsSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 50054                 # gRPC AnalyticsService
    metrics_port: int = 9107
    auth_cache_s: float = 10.0        # as AssetsSettings: tokens are the AssetService's
    auth_cache_entries: int = 10_000
    default_max_points: int = 1_000   # chart points per channel when a request says 0


# StormWatch's default event types (actors/twin/stormwatch.py DEFAULT_EVENT_TYPES is the same set).
STORMWATCH_EVENT_TYPES = frozenset({
    "Hurricane Warning", "Hurricane Watch", "Tropical Storm Warning", "Tropical Storm Watch",
    "Winter Storm Warning", "Blizzard Warning", "Ice Storm Warning", "High Wind Warning", "Extreme Wind Warning",
    "Tornado Warning", "Severe Thunderstorm Warning", "Storm Surge Warning",
})


class TwinsSettings(BaseModel):
    """The twin runtime on Ray (actors/runtime) and the TwinService gRPC API."""

    host: str = "127.0.0.1"
    port: int = 50053                  # gRPC TwinService
    metrics_port: int = 9106
    # The Ray cluster every twin process joins. "local" starts one inside the process (a single
    # process only: two processes with their own clusters would each host the same twins).
    ray_address: str = "127.0.0.1:6380"
    manage_local_ray: bool = True      # `gridtwin infra up` starts a Ray head on ray_address
    local_num_cpus: int = 2
    namespace: str = "gridtwin"        # Ray namespace of the shard and singleton actors
    shards: int = 2                    # initial shard count (later: `gridtwin twins reshard`)
    max_in_flight_batches_per_shard: int = 4
    passivation_idle_s: float = 1_800.0
    snapshot_interval_s: float = 10.0
    tick_interval_s: float = 5.0       # clock rules (stale/offline), passivation, snapshots
    # A twin replays the telemetry journal from its snapshot's position, however old; one without
    # a snapshot replays this far back (the oldest sample the gateway accepts).
    replay_horizon_s: float = 30 * 86_400.0
    shard_pool_size: int = 2           # Postgres connections per shard
    rules: str = "{}"                  # fleet-wide rule overrides, JSON: {"solar_negative": {...}}
    stream_min_interval_s: float = 1.0
    # StormWatch: the cluster's one weather poller (a singleton actor the twins service starts)
    # follows the Weather API's change log ("" = the weather service of these settings).
    stormwatch_poller: bool = True
    stormwatch_weather_api: str = ""
    # A read token for it ("" = the poller issues its own: it holds the database anyway).
    stormwatch_weather_token: str = ""
    stormwatch_poll_interval_s: float = 10.0
    # The alert event types (CAP `event`, exactly as the NWS names them) StormWatch charges for.
    # JSON: GRIDTWIN_TWINS__STORMWATCH_EVENT_TYPES='["Tornado Warning", "Flood Warning"]'.
    stormwatch_event_types: frozenset[str] = STORMWATCH_EVENT_TYPES


class WeatherSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 50055                  # gRPC WeatherService
    metrics_port: int = 9108
    # Where alerts come from: the NWS API (empty: none) and/or a folder of feed files.
    feed_url: str = ""                 # e.g. https://api.weather.gov/alerts/active?status=actual
    feed_dir: str = ""
    user_agent: str = "gridtwin-weather (ops@example.invalid)"   # the NWS asks for a contact
    poll_interval_s: float = 60.0
    http_timeout_s: float = 10.0
    backoff_base_s: float = 5.0
    backoff_max_s: float = 300.0
    stream_poll_s: float = 1.0         # how often StreamAlertChanges looks for new changes
    # Alerts past their end are recorded expired by a sweep this often (with or without feeds).
    expiry_sweep_s: float = 5.0


class ControlSettings(BaseModel):
    """The ControlService (commands, control plans, fan-outs) and its dispatcher."""

    host: str = "127.0.0.1"
    port: int = 50056                  # gRPC ControlService
    metrics_port: int = 9109
    auth_cache_s: float = 10.0         # as AssetsSettings: tokens are the AssetService's
    ack_group_id: str = "control-acks"   # consumer group on the device-events topic
    claim_batch: int = 5_000           # due commands claimed per dispatcher round
    max_commands_per_message: int = 1_000
    idle_poll_s: float = 1.0           # the dispatcher looks at least this often (NOTIFY wakes it sooner)
    gateway_stale_s: float = 30.0      # a gateway without a heartbeat this long gets nothing routed
    retry_base_delay_s: float = 5.0    # unacknowledged sends: exponential backoff with jitter
    retry_max_delay_s: float = 300.0
    max_attempts: int = 6
    stream_interval_s: float = 0.5     # StreamFanOutProgress: at most one update per interval


class VppSettings(BaseModel):
    """The VPP service: grid events (gRPC VppService and the OpenADR 3 REST endpoint), the relay
    of the twins' decisions to commands, and the live contribution."""

    host: str = "127.0.0.1"
    port: int = 50057                  # gRPC VppService
    rest_host: str = "127.0.0.1"
    rest_port: int = 8766              # OpenADR 3: /openadr3/events
    metrics_port: int = 9110
    auth_cache_s: float = 10.0         # as AssetsSettings: tokens are the AssetService's
    stream_interval_s: float = 1.0     # StreamContribution: one update per interval by default
    contribution_stale_s: float = 30.0   # a home silent this long drops out of the live sums
    contribution_reload_s: float = 60.0  # how often enrollments are reloaded into the sums
    intent_sweep_s: float = 2.0        # the outbox of twin decisions not yet carried out
    max_gap_s: float = 300.0           # the report never integrates across a longer silence


class HttpSettings(BaseModel):
    """The HTTP API (services/http): JSON resources and Server-Sent Events over the gRPC services,
    OpenAPI at /api/v1/openapi.json, docs at /docs. Every limit is per process."""

    host: str = "127.0.0.1"
    port: int = 8080
    metrics_port: int = 9111
    # Browser origins allowed to call the API with CORS (empty: CORS off, same-origin only).
    cors_origins: list[str] = []
    # The session cookie is `Secure` unless the API speaks plain HTTP on loopback and this says so.
    cookie_secure: bool = True
    session_cookie: str = "gridtwin_session"
    # Per principal (credential, or client address when anonymous): a token bucket.
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 200
    # Idempotency-Key: a create's stored response is replayed for this long.
    idempotency_ttl_s: float = 86_400.0
    upstream_timeout_s: float = 30.0
    # Server-Sent Events: events queued per client before it is dropped as too slow, a comment
    # line this often, and events kept per stream for Last-Event-ID resumption.
    sse_queue_events: int = 64
    sse_heartbeat_s: float = 15.0
    sse_replay_events: int = 256
    max_body_bytes: int = 1_048_576
    # A built front end (web/dist) served at / when the folder exists ("" = ROOT/web/dist).
    static_dir: str = ""


class SimulatorSettings(BaseModel):
    gateway_url: str = "ws://127.0.0.1:8765"
    devices: int = 100
    sample_interval_s: float = 1.0
    fleet_secret: str = "gridtwin-demo-fleet"   # device credentials derive from it (demo only)
    metrics_port: int = 9104


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDTWIN_", env_nested_delimiter="__")

    var_dir: Path = ROOT / "var"
    log_level: str = "INFO"
    postgres: PostgresSettings = PostgresSettings()
    kafka: KafkaSettings = KafkaSettings()
    gateway: GatewaySettings = GatewaySettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    assets: AssetsSettings = AssetsSettings()
    access: AccessSettings = AccessSettings()
    weather: WeatherSettings = WeatherSettings()
    twins: TwinsSettings = TwinsSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    control: ControlSettings = ControlSettings()
    vpp: VppSettings = VppSettings()
    http: HttpSettings = HttpSettings()
    tls: TlsSettings = TlsSettings()   # GRIDTWIN_TLS__ENABLED=true, GRIDTWIN_TLS__CERT_FILE=…

    @model_validator(mode="after")
    def _fetch_wait_for_broker(self) -> Settings:
        if self.ingest.fetch_max_wait_ms is None:
            durable = self.kafka.manage_local_broker and self.kafka.local_broker_storage == "durable"
            self.ingest.fetch_max_wait_ms = 500 if durable else 50
        return self
