"""The route table: every resource of the HTTP API and the one gRPC method it calls.

Pure data, read by the app (to serve), the OpenAPI generator (to describe) and the access-matrix
test (to check every route × principal against the method's rule in ACCESS). A route never
decides anything itself: the method's servicer authorizes and validates.

How a request becomes the method's request message (services/http/transcode.py):
- path parameters fill the fields `params` names (default: the field of the parameter's name);
- `body="*"`: the JSON body is the whole message (path parameters win); `body="spec"`: the JSON
  body is that field; `body=""`: no body, the query string fills any field (`a.b=1`);
- `fixed` fields are set by the route itself (e.g. which relation a listing follows).
A list whose method pages (`page_token` → `next_page_token`) answers with a `next` link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    UNARY = "unary"         # one request, one JSON response
    EVENTS = "events"       # a server stream as Server-Sent Events
    DOWNLOAD = "download"   # a server stream of chunks ({data, content_type}) as one file


@dataclass(frozen=True)
class Route:
    method: str                      # HTTP method
    path: str                        # under /api/v1 (or absolute when it starts with /oauth)
    rpc: str                         # the gRPC method's full name: /package.Service/Method
    summary: str
    body: str = ""                   # "*", a field name, or "" (query string)
    params: dict[str, str] = field(default_factory=dict)   # path parameter → field path
    fixed: dict[str, object] = field(default_factory=dict)  # field path → value (JSON form)
    kind: Kind = Kind.UNARY
    status: int = 200                # 201 for creates
    # Server-Sent Events: the field of each message that is its event id (monotonic), and the
    # request field that resumes after such an id ("" = the stream is a state snapshot: a
    # resumed client gets the newest state).
    event_id: str = ""
    resume_field: str = ""
    name: str = ""                   # the OpenAPI operationId when one method has several routes

    @property
    def service(self) -> str:
        return self.rpc.split("/")[1]

    @property
    def rpc_name(self) -> str:
        return self.rpc.rsplit("/", 1)[1]

    @property
    def operation_id(self) -> str:
        if self.name:
            return self.name
        name = self.rpc_name
        return name[0].lower() + name[1:] + ({"events": "Events", "download": "File"}.get(self.kind.value, ""))

    def field_of(self, param: str) -> str:
        return self.params.get(param, param)


ASSETS = "/gridtwin.assets.v1.AssetService/"
TELEMETRY = "/gridtwin.telemetry.v1.TelemetryService/"
TWINS = "/gridtwin.twins.v1.TwinService/"
ANALYTICS = "/gridtwin.analytics.v1.AnalyticsService/"
WEATHER = "/gridtwin.weather.v1.WeatherService/"
CONTROL = "/gridtwin.control.v1.ControlService/"
VPP = "/gridtwin.control.v1.VppService/"
ACCESS_SERVICE = "/gridtwin.access.v1.AccessService/"

_I = "/installations/{installation_id}"

ROUTES: tuple[Route, ...] = (
    # ------------------------------------------------------------------ assets
    Route("POST", "/customers", ASSETS + "CreateCustomer", "Create a customer", body="*", status=201),
    Route("GET", "/customers/{customer_id}", ASSETS + "GetCustomer", "A customer"),
    Route("POST", "/installations", ASSETS + "CreateInstallation", "Create an installation", body="*", status=201),
    Route("GET", _I, ASSETS + "GetInstallation", "An installation"),
    Route("PATCH", _I, ASSETS + "UpdateInstallationSettings",
          "Change an installation's settings (backup reserve, StormWatch, priority)", body="*"),
    Route("GET", "/installations", ASSETS + "SearchInstallationsInBox",
          "Installations inside a longitude/latitude box, paged"),
    Route("GET", "/installations/in-polygon", ASSETS + "SearchInstallationsInPolygon",
          "Installations inside a WKT polygon, paged"),
    Route("GET", "/installations/near", ASSETS + "SearchInstallationsNear",
          "Installations nearest to a point, within a radius, nearest first, paged"),
    Route("POST", _I + "/devices", ASSETS + "RegisterDevice", "Register a device (answers its credential once)",
          body="*", status=201),
    Route("GET", _I + "/devices", ASSETS + "ListDevices", "The devices of an installation, paged"),
    Route("GET", "/devices/{device_id}", ASSETS + "GetDevice", "A device"),
    Route("POST", "/devices/{device_id}/revoke", ASSETS + "RevokeDevice", "Revoke a device's credential"),
    Route("POST", "/devices/{device_id}/credential-rotations", ASSETS + "RotateDeviceCredential",
          "Give a device a new credential (the old one stays valid for graceS)", body="*", status=201),
    Route("POST", _I + "/device-claims", ASSETS + "CreateDeviceClaim",
          "A device and a one-time claim code for its edge agent", body="*", status=201),
    Route("POST", "/device-claims/redeem", ASSETS + "ClaimDevice",
          "Exchange a claim code for the device's credential (no credential needed)", body="*"),
    Route("POST", "/groups", ASSETS + "CreateGroup", "Create a group (an ltree path)", body="*", status=201),
    Route("GET", "/groups", ASSETS + "ListGroups", "Groups related to a path (descendants, ancestors), paged"),
    Route("GET", "/groups/{path}/installations", ASSETS + "ListGroupInstallations",
          "Installations in a group at any depth, paged"),
    Route("PUT", "/groups/{path}/installations/{installation_id}", ASSETS + "AddToGroup",
          "Add an installation to a group"),
    Route("DELETE", "/groups/{path}/installations/{installation_id}", ASSETS + "RemoveFromGroup",
          "Remove an installation from a group"),
    Route("GET", _I + "/groups", ASSETS + "ListInstallationGroups", "The groups an installation belongs to"),
    Route("POST", "/programs", ASSETS + "CreateProgram", "Create a program (a group one enrolls in)",
          body="*", status=201),
    Route("GET", "/programs/{program}/enrollments/{installation_id}", ASSETS + "GetEnrollment",
          "An installation's enrollment state in a program"),
    Route("POST", "/programs/{program}/enrollments/{installation_id}/changes", ASSETS + "ChangeEnrollment",
          "Move an enrollment (eligible → pending → enrolled, or out)", body="*", status=201),
    Route("GET", "/programs/{program}/enrollments/{installation_id}/changes", ASSETS + "ListEnrollmentHistory",
          "The enrollment's audit trail"),
    Route("POST", "/api-tokens", ASSETS + "CreateToken", "Create an API token (scopes over group paths)",
          body="*", status=201, name="createApiToken"),
    Route("DELETE", "/api-tokens/{principal_id}", ASSETS + "RevokeToken", "Revoke an API token", name="revokeApiToken"),
    # ------------------------------------------------------------------ telemetry
    Route("GET", _I + "/samples/latest", TELEMETRY + "GetLatestSample", "The newest sample"),
    Route("GET", _I + "/samples", TELEMETRY + "QueryRange",
          "Samples or rollups over a time range (startUnixMs, endUnixMs)"),
    Route("GET", _I + "/samples/stream", TELEMETRY + "StreamLiveSamples", "Live samples as Server-Sent Events",
          kind=Kind.EVENTS, event_id="sample.timestamp_unix_ms"),
    # ------------------------------------------------------------------ twins
    Route("GET", _I + "/twin", TWINS + "GetTwin", "The installation's digital twin"),
    Route("GET", _I + "/twin/stream", TWINS + "StreamTwin",
          "The twin now, then every change, as Server-Sent Events", kind=Kind.EVENTS, event_id="version"),
    Route("GET", "/alerts", TWINS + "ListAlerts", "Twin alerts of the fleet, newest first, paged"),
    Route("GET", _I + "/alerts", TWINS + "ListAlerts", "Twin alerts of an installation, newest first, paged",
          name="listInstallationAlerts"),
    Route("GET", _I + "/alert-log", TWINS + "ExportAlertLog", "The alert log over a range, as CSV or JSON",
          kind=Kind.DOWNLOAD),
    Route("POST", _I + "/storm-opt-outs", TWINS + "OptOutOfStorm",
          "Opt the installation out of StormWatch for one weather alert", body="*", status=201),
    Route("GET", _I + "/notifications", TWINS + "ListNotifications",
          "What the twin told the owner, newest first, paged"),
    # ------------------------------------------------------------------ analytics
    Route("GET", _I + "/energy-report", ANALYTICS + "GetEnergyReport",
          "Energy, self-sufficiency and cost of an installation", params={"installation_id": "target.installation_id"}),
    Route("GET", "/groups/{path}/energy-report", ANALYTICS + "GetEnergyReport",
          "Energy of a group's installations", params={"path": "target.group_path"},
          name="getGroupEnergyReport"),
    Route("GET", _I + "/capacity-trend", ANALYTICS + "GetCapacityTrend", "Battery capacity and its fade"),
    Route("GET", _I + "/series", ANALYTICS + "GetSeries", "Chart series of an installation",
          params={"installation_id": "target.installation_id"}),
    Route("GET", "/groups/{path}/series", ANALYTICS + "GetSeries", "Chart series of a group",
          params={"path": "target.group_path"}, name="getGroupSeries"),
    # ------------------------------------------------------------------ weather
    Route("GET", "/weather/alerts", WEATHER + "ListActiveAlerts", "Active weather alerts, paged"),
    Route("GET", "/weather/alerts/{alert_id}", WEATHER + "GetAlert", "A weather alert"),
    Route("GET", "/weather/alerts/{alert_id}/installations", WEATHER + "ListAffectedInstallations",
          "The installations a weather alert covers, paged"),
    Route("GET", "/weather/alert-changes", WEATHER + "ListAlertChanges", "Changes of the active set after afterSeq"),
    Route("GET", "/weather/alert-changes/stream", WEATHER + "StreamAlertChanges",
          "Changes of the active alerts as Server-Sent Events (resumable)", kind=Kind.EVENTS,
          event_id="seq", resume_field="after_seq"),
    # ------------------------------------------------------------------ control
    Route("POST", _I + "/commands", CONTROL + "SubmitCommand", "Send a command to the installation's device",
          body="*", status=201),
    Route("GET", _I + "/commands", CONTROL + "ListCommands", "Commands of an installation, newest first, paged"),
    Route("GET", "/commands/{command_id}", CONTROL + "GetCommand", "A command and its lifecycle"),
    Route("POST", "/commands/{command_id}/cancel", CONTROL + "CancelCommand", "Cancel a command not yet done"),
    Route("POST", "/fan-outs", CONTROL + "SubmitGroupCommand", "Send a command to every device of a group",
          body="*", status=201),
    Route("GET", "/fan-outs/{fanout_id}", CONTROL + "GetFanOutProgress", "A fan-out's progress"),
    Route("GET", "/fan-outs/{fanout_id}/stream", CONTROL + "StreamFanOutProgress",
          "A fan-out's progress as Server-Sent Events", kind=Kind.EVENTS),
    Route("POST", "/fan-outs/{fanout_id}/cancel", CONTROL + "CancelFanOut", "Cancel what a fan-out has not sent"),
    # ------------------------------------------------------------------ vpp
    Route("POST", "/events", VPP + "CreateEvent", "Create a grid event", body="spec", status=201),
    Route("GET", "/events", VPP + "ListEvents", "Grid events, newest first, paged"),
    Route("GET", "/events/{event_id}", VPP + "GetEvent", "A grid event"),
    Route("PUT", "/events/{event_id}", VPP + "UpdateEvent", "Change a grid event (a new revision)", body="spec"),
    Route("POST", "/events/{event_id}/cancel", VPP + "CancelEvent", "Cancel a grid event"),
    Route("GET", "/events/{event_id}/participants", VPP + "ListParticipants", "An event's participants and why, paged"),
    Route("POST", "/events/{event_id}/participants/{installation_id}/opt-out", VPP + "OptOut",
          "Opt an installation out of an event"),
    Route("GET", "/events/{event_id}/progress", VPP + "GetEventProgress", "The event's fan-out progress"),
    Route("GET", "/events/{event_id}/report", VPP + "GetEventReport", "Energy discharged and compensation"),
    Route("GET", "/groups/{path}/contribution", VPP + "StreamContribution",
          "The live discharge of a group's homes as Server-Sent Events", kind=Kind.EVENTS),
    Route("GET", _I + "/contribution", VPP + "StreamContribution",
          "The live discharge of one home as Server-Sent Events", kind=Kind.EVENTS,
          name="streamInstallationContributionEvents"),
    # ------------------------------------------------------------------ people (AccessService)
    Route("GET", "/me", ACCESS_SERVICE + "WhoAmI", "Who the caller is"),
    Route("POST", "/users", ACCESS_SERVICE + "CreateUser", "Create a user", body="*", status=201),
    Route("GET", "/users", ACCESS_SERVICE + "ListUsers", "Users, paged"),
    Route("POST", "/users/{user_id}/disable", ACCESS_SERVICE + "DisableUser", "Disable a user, ending their sessions"),
    Route("POST", _I + "/invitations", ACCESS_SERVICE + "InviteHomeowner",
          "Invite a homeowner to an installation", body="*", status=201),
    Route("POST", "/password-resets", ACCESS_SERVICE + "CreatePasswordReset", "A one-time password reset code",
          body="*", status=201),
    Route("POST", "/password-resets/redeem", ACCESS_SERVICE + "ResetPassword", "Set a password with a reset code",
          body="*"),
    Route("POST", "/tokens", ACCESS_SERVICE + "CreateToken", "Create a personal access token", body="*", status=201),
    Route("GET", "/tokens", ACCESS_SERVICE + "ListTokens", "Personal access tokens, paged"),
    Route("DELETE", "/tokens/{token_id}", ACCESS_SERVICE + "RevokeToken", "Revoke a personal access token"),
    Route("POST", "/clients", ACCESS_SERVICE + "CreateClient", "Create an OAuth client (client credentials)",
          body="*", status=201),
    Route("GET", "/audit-log", ACCESS_SERVICE + "ListAuditLog", "Every write and who made it, paged"),
)

# Served by the app itself around AccessService calls (cookies, forms): listed for the matrix.
SESSION_RPCS = {
    "POST /auth/login": ACCESS_SERVICE + "Login",
    "POST /auth/logout": ACCESS_SERVICE + "Logout",
    "POST /invitations/accept": ACCESS_SERVICE + "AcceptInvitation",
    "POST /oauth/token": ACCESS_SERVICE + "IssueClientToken",
    "GET /auth/oidc/callback": ACCESS_SERVICE + "LoginWithIdentity",   # services/http/oidc.py
}
