"""Checks on template.yaml, samconfig.toml and scripts/create_tables.py.

The deployed stack cannot be exercised here (no AWS, no Docker), so these tests pin what can go
wrong silently: a function without a route, a route that differs between API Gateway and
`cargo lambda watch`, a policy wider than needed (as SAM really generates it), a route without a
throttle or a function without its share of concurrency, logs kept forever, a secret with a
default.
"""

from __future__ import annotations

import importlib.util
import os
import json
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from unittest import mock

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent
SERVERLESS_FUNCTION = "AWS::Serverless::Function"

# The values the functions read from Secrets Manager; none may be a parameter or a variable.
SECRET_NAMES = ("TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "SESSION_SECRET")
ACCOUNT_PARAMETERS = (
    "TwilioAccountSid",
    "TwilioNumber",
    "TwilioTwimlAppSid",
    "TwilioAgentTwimlAppSid",
)
KEY_SHAPED = re.compile(r"(AC|SK|AP)[0-9a-fA-F]{32}")


def _load_create_tables():
    spec = importlib.util.spec_from_file_location("create_tables", ROOT / "scripts" / "create_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


create_tables = _load_create_tables()
sys.path.insert(0, str(ROOT / "scripts"))
import routes  # noqa: E402

# The routes as template.yaml states them; the Rust test `every_copy_of_the_route_table_agrees`
# holds them against the route table (shared/src/routes.rs).
ROUTES = {}
for _method, _path, _function in routes.template_routes(TEMPLATE):
    ROUTES.setdefault(_function, []).append((_method, _path))


@pytest.fixture(scope="module")
def template():
    return create_tables.load_template(TEMPLATE)


@pytest.fixture(scope="module")
def translated():
    """The template as CloudFormation gets it from SAM, the parameters at their defaults: what
    the functions' roles really grant, Globals merged in."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicyNames:
        def load(self):
            raise AssertionError("the template names a managed policy: name none (least privilege)")

    sam = yaml_parse(TEMPLATE.read_text())
    for resource in sam["Resources"].values():
        if resource["Type"] == SERVERLESS_FUNCTION:
            # What `sam package` does; the translator wants an S3 location.
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1"}):
        return transform(sam, {}, NoManagedPolicyNames())


def _functions(template):
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == SERVERLESS_FUNCTION
    }


def _function_name(resource):
    """The function a resource is: the one binary serves the function its WARMLINE_FUNCTION names."""
    return resource["Properties"].get("Environment", {}).get("Variables", {}).get("WARMLINE_FUNCTION")


def _function_for(template, folder):
    matches = [
        (logical_id, resource)
        for logical_id, resource in _functions(template).items()
        if _function_name(resource) == folder
    ]
    assert len(matches) == 1, f"functions/{folder}: expected one function, found {[m[0] for m in matches]}"
    return matches[0]


def _function_folders():
    return sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").is_file())


def test_function_folders_match_the_route_table():
    assert _function_folders() == sorted(ROUTES)


@pytest.mark.parametrize("folder", _function_folders())
def test_each_function_folder_is_one_function_of_the_one_binary(template, folder):
    logical_id, resource = _function_for(template, folder)
    metadata = resource.get("Metadata", {})
    assert metadata.get("BuildMethod") == "rust-cargolambda"
    # Every function is the binary `warmline` of lambda/, which `sam build` builds once.
    assert resource["Properties"]["CodeUri"] == "lambda"
    assert metadata.get("BuildProperties", {}).get("Binary") == "warmline"
    # Its logical id is its name's: a WARMLINE_FUNCTION copied from a neighbour stands out.
    assert logical_id == "".join(part.capitalize() for part in folder.split("-")) + "Function"


def test_every_function_names_a_function_folder_once(template):
    names = sorted(_function_name(resource) for resource in _functions(template).values())
    assert names == _function_folders()
    # Each function names its own: none inherits a name from Globals.
    assert "WARMLINE_FUNCTION" not in template["Globals"]["Function"]["Environment"]["Variables"]


def test_the_one_binary_is_the_warmline_package():
    with open(ROOT / "lambda" / "Cargo.toml", "rb") as f:
        package = tomllib.load(f)["package"]
    assert package["name"] == "warmline"
    with open(ROOT / "Cargo.toml", "rb") as f:
        assert "lambda" in tomllib.load(f)["workspace"]["members"]


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_every_http_api_event_is_on_the_one_api(template, folder):
    _, resource = _function_for(template, folder)
    for event in resource["Properties"]["Events"].values():
        assert event["Type"] == "HttpApi"
        assert create_tables.ref_target(event["Properties"]["ApiId"]) == "Api"


def _api(template):
    apis = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi"]
    assert len(apis) == 1
    return apis[0].get("Properties", {})


def test_http_api_uses_default_stage(template):
    # A named stage would prefix every path, breaking the URLs pasted into Twilio.
    assert _api(template).get("StageName", "$default") == "$default"


# --- Throttles and reserved concurrency, sized for a team ------------------------------------
#
# The sizing of docs/SECURITY.md ("Throttles", "Reserved concurrency"), for 20 agents and 100
# calls at once. A route's peak is (requests, within seconds): e.g. 100 callers arriving within
# 10 s. Change a number here, in template.yaml and in the docs together.

TWILIO_ROUTES = {
    "POST /conference/connect/client": (100, 10),  # 100 callers arriving within 10 s
    # Their first fetch, and the 30-s music turns of the 100 already waiting (33 in 10 s).
    "POST /conference/wait": (133, 10),
    "POST /conference/{conference_id}/events": (120, 10),  # the callers' joins, 20 agents'
    "POST /conference/{conference_id}/agents/{agent_id}/status": (20, 5),  # 20 rings ending
    "POST /conference/{conference_id}/connect/{agent_id}": (20, 5),  # 20 agents answering
    "POST /call/connect": (100, 10),  # the 100 callers, from the customer page
    "POST /call/agent": (20, 10),  # the 20 agents calling customers back
    "POST /call/customer/{agent_id}": (20, 10),  # ...the customers answering
    "POST /call/customer/{agent_id}/status": (20, 10),  # ...and those calls ending
    "POST /voicemail/{conference_id}/choice": (100, 8),  # 100 offered at once, 8 s to press
    "POST /voicemail/{conference_id}/back": (100, 10),  # ...or back into line
    "POST /voicemail/{conference_id}/done": (50, 30),  # half of them leaving a message
    "POST /voicemail/{conference_id}/recording": (50, 30),
}
ANONYMOUS_ROUTES = {
    "GET /": (100, 10),  # the 100 callers opening the customer page
    "GET /static/{file}": (500, 10),  # 5 assets a page
    "POST /tickets": (20, 60),
    "POST /token": (120, 10),  # a token per customer call, and the 20 agents' at a shift's start
    "POST /login": (20, 10),  # the whole team signing in at the start of a shift
    "GET /login": (20, 10),
}
AGENT_ROUTES = {
    "GET /dashboard": (20, 10),
    "GET /presence": (20, 10),
    "GET /wallboard": (20, 5),  # every open dashboard every 5 s
    "GET /calls/current": (20, 2),  # every dashboard on a call every 2 s
    "PUT /presence": (20, 2),  # everyone saying "available" at once; then one per 30 s each
    "GET /tickets": (20, 10),
    "GET /tickets/{ticket_id}/recording": (20, 10),
    "POST /tickets/{ticket_id}/status": (20, 10),
    "POST /tickets/{ticket_id}/notes": (20, 10),
    "GET /tickets/{ticket_id}/calls": (20, 40),  # the team each opening a ticket's calls
    "GET /calls.csv": (5, 10),  # a team lead exporting, a page at a time
    "POST /logout": (20, 10),
    "POST /conference/{agent_id}/call": (5, 10),
    "POST /calls/{call_id}/{action}": (5, 20),
}
PEAKS = {**TWILIO_ROUTES, **ANONYMOUS_ROUTES, **AGENT_ROUTES}

# (rate per second, burst) of every route: what template.yaml sets.
ROUTE_LIMITS = {
    "POST /conference/connect/client": (50, 100),
    "POST /conference/wait": (50, 100),
    "POST /conference/{conference_id}/events": (50, 100),
    "POST /conference/{conference_id}/agents/{agent_id}/status": (20, 40),
    "POST /conference/{conference_id}/connect/{agent_id}": (20, 40),
    "POST /call/connect": (20, 40),
    "POST /call/agent": (10, 20),
    "POST /call/customer/{agent_id}": (10, 20),
    "POST /call/customer/{agent_id}/status": (10, 20),
    "POST /voicemail/{conference_id}/choice": (20, 50),
    "POST /voicemail/{conference_id}/back": (20, 50),
    "POST /voicemail/{conference_id}/done": (5, 20),
    "POST /voicemail/{conference_id}/recording": (5, 20),
    "GET /": (50, 100),
    "GET /static/{file}": (100, 200),
    "POST /tickets": (10, 20),
    "POST /token": (20, 40),
    "POST /login": (10, 20),
    "GET /login": (10, 20),
    "GET /dashboard": (10, 20),
    "GET /presence": (10, 20),
    "GET /wallboard": (10, 20),
    "GET /calls/current": (10, 20),
    "PUT /presence": (10, 40),
    "GET /tickets": (10, 20),
    "GET /tickets/{ticket_id}/recording": (5, 10),
    "POST /tickets/{ticket_id}/status": (2, 20),
    "POST /tickets/{ticket_id}/notes": (2, 20),
    "GET /tickets/{ticket_id}/calls": (0.5, 40),
    "GET /calls.csv": (0.5, 5),
    "POST /logout": (5, 10),
    "POST /conference/{agent_id}/call": (5, 10),
    "POST /calls/{call_id}/{action}": (5, 20),
}

# Reserved concurrency of each function, and the seconds one request may take when things are
# slow (a DynamoDB or Twilio call near its timeout; argon2 at 1024 MB): at its routes' full rate
# and that duration, a function must still fit in its reservation.
RESERVED = {
    # Twilio webhooks: a generous share.
    "conference-connect-client": (60, 1.0),
    "conference-wait": (100, 1.0),
    "conference-events": (80, 1.0),
    "conference-connect-agent": (40, 1.0),
    "call-connect": (50, 1.0),
    "voicemail": (50, 1.0),
    # The agents' and the pages': moderate.
    "presence": (40, 1.0),
    "tickets": (30, 1.0),
    "token": (20, 0.2),
    "pages": (20, 0.1),
    "conference-call-agent": (10, 1.0),
    # argon2id at 1024 MB: small, a cap on what a flood of sign-ins can burn.
    "session": (15, 0.5),
}
TWILIO_FUNCTIONS = (
    "conference-connect-client",
    "conference-wait",
    "conference-events",
    "conference-connect-agent",
    "call-connect",
    "voicemail",
)
# A new account's default regional limit; Lambda keeps 100 of it for unreserved functions.
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100


def _route_settings(template):
    return {
        route: (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"])
        for route, settings in _api(template)["RouteSettings"].items()
    }


def test_every_route_has_its_own_throttle_and_only_routes_do(template):
    routed = {f"{method} {path}" for function_routes in ROUTES.values() for method, path in function_routes}
    # A key that is no route would be silently ignored by API Gateway.
    assert set(_api(template)["RouteSettings"]) == routed
    assert set(PEAKS) == routed, "every route needs its peak in the sizing"


def test_route_limits_are_the_sizing(template):
    assert _route_settings(template) == ROUTE_LIMITS


@pytest.mark.parametrize("route", sorted(PEAKS))
def test_route_limits_carry_the_peak_twice(route):
    requests, seconds = PEAKS[route]
    rate, burst = ROUTE_LIMITS[route]
    assert burst >= rate
    # The token bucket: the burst at once, then the rate every second.
    assert burst + rate * seconds >= 2 * requests, f"{route} would throttle the real peak"
    assert rate >= requests / seconds


def test_anonymous_routes_are_bounded_but_not_by_one_persons_clicks():
    # A few requests a second from one browser or one script must not take a route away from
    # everyone (POST /login was 2/s: three tries a second locked every agent out); per-client
    # limits are the application's, or a WAF's in front of CloudFront.
    for route in ANONYMOUS_ROUTES:
        rate, burst = ROUTE_LIMITS[route]
        assert 10 <= rate <= 100 and 20 <= burst <= 200, route


def test_the_twilio_webhooks_have_generous_limits():
    for route in TWILIO_ROUTES:
        rate, burst = ROUTE_LIMITS[route]
        assert rate >= 5 and burst >= 20, route


def test_a_route_added_without_limits_gets_a_tight_default(template):
    default = _api(template)["DefaultRouteSettings"]
    assert default == {"ThrottlingBurstLimit": 20, "ThrottlingRateLimit": 10}


def _reservation(resource):
    value = resource["Properties"]["ReservedConcurrentExecutions"]
    assert value.tag == "!If", "the reservation can be switched off for an account at a low limit"
    condition, reserved, otherwise = value.value
    assert condition == "ReservesConcurrency"
    assert otherwise.tag == "!Ref" and otherwise.value == "AWS::NoValue"
    return reserved


@pytest.mark.parametrize("folder", sorted(RESERVED))
def test_every_function_reserves_its_share(template, folder):
    _, resource = _function_for(template, folder)
    assert _reservation(resource) == RESERVED[folder][0]


def test_reservations_leave_the_account_room_and_are_on_by_default(template):
    assert set(RESERVED) == set(ROUTES)
    total = sum(reserved for reserved, _ in RESERVED.values())
    assert total <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM
    parameter = template["Parameters"]["ReserveConcurrency"]
    assert parameter["Default"] == "true" and parameter["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["ReservesConcurrency"].tag == "!Equals"
    # What an operator reads before deploying names the sum and the limit it needs.
    assert f"({total} in all" in parameter["Description"]
    assert f"at least {total + UNRESERVED_MINIMUM}" in parameter["Description"]


def test_the_webhooks_get_the_largest_shares_and_sign_in_a_small_one():
    others = [reserved for folder, (reserved, _) in RESERVED.items() if folder not in TWILIO_FUNCTIONS]
    for folder in TWILIO_FUNCTIONS:
        assert RESERVED[folder][0] >= max(others), folder
    assert RESERVED["session"][0] <= 20


@pytest.mark.parametrize("folder", sorted(RESERVED))
def test_each_function_serves_its_routes_full_rate_within_its_reservation(folder):
    reserved, seconds = RESERVED[folder]
    routes = [f"{method} {path}" for method, path in ROUTES[folder]]
    busy = sum(ROUTE_LIMITS[route][0] for route in routes) * seconds
    assert busy <= reserved, f"{folder}: {busy:g} executions at its routes' limits, {reserved} reserved"


# --- Logs -----------------------------------------------------------------------------------

# What CloudWatch Logs accepts as RetentionInDays.
CLOUDWATCH_RETENTION_DAYS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
]


def test_log_retention_is_a_parameter(template):
    parameter = template["Parameters"]["LogRetentionDays"]
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == 30
    assert parameter["AllowedValues"] == CLOUDWATCH_RETENTION_DAYS


def test_every_log_group_expires_its_logs(template):
    groups = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    # One per function, the API's access logs and the fallback writer's; none without retention.
    assert len(groups) == len(ROUTES) + 2
    for name, group in groups.items():
        assert create_tables.ref_target(group["Properties"]["RetentionInDays"]) == "LogRetentionDays", name


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_every_function_logs_to_its_own_group(template, translated, folder):
    logical_id, resource = _function_for(template, folder)
    group_id = create_tables.ref_target(resource["Properties"]["LoggingConfig"]["LogGroup"])
    group = template["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    name = group["Properties"]["LogGroupName"]
    assert name.tag == "!Sub" and name.value == f"/aws/lambda/${{AWS::StackName}}-{folder}"
    # Globals' JSON format and the function's own group, merged.
    assert translated["Resources"][logical_id]["Properties"]["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": group_id},
    }


def test_the_api_writes_access_logs(template):
    settings = _api(template)["AccessLogSettings"]
    destination = settings["DestinationArn"]
    assert destination.tag == "!GetAtt" and destination.value == "ApiAccessLogs.Arn"
    group = template["Resources"]["ApiAccessLogs"]["Properties"]
    assert create_tables.ref_target(group["RetentionInDays"]) == "LogRetentionDays"
    fields = json.loads(settings["Format"])
    assert {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
    }.items() <= fields.items()
    # Nothing the client writes freely (it could break the line's JSON), and not the path, which
    # names calls and agents.
    for variable in ("$context.path", "$context.identity.userAgent", "$context.identity.caller"):
        assert variable not in settings["Format"]


def test_cors_is_off(template):
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi")
    assert "CorsConfiguration" not in api.get("Properties", {})
    assert "Cors" not in template.get("Globals", {}).get("HttpApi", {})


def test_globals(template):
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "provided.al2023"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "bootstrap"
    assert function["LoggingConfig"] == {"LogFormat": "JSON"}


def test_environment_variables_reference_parameters_and_resources(template):
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    expected = {
        "TWILIO_ACCOUNT_SID": "TwilioAccountSid",
        "TWILIO_NUMBER": "TwilioNumber",
        "TWILIO_TWIML_APP_SID": "TwilioTwimlAppSid",
        "TWILIO_AGENT_TWIML_APP_SID": "TwilioAgentTwimlAppSid",
        "PUBLIC_BASE_URL": "PublicBaseUrl",
        "CALLS_TABLE": "CallsTable",
        "TICKETS_TABLE": "TicketsTable",
        "AGENTS_TABLE": "AgentsTable",
        "LEDGER_TABLE": "LedgerTable",
        "LEDGER_RETENTION_DAYS": "LedgerRetentionDays",
        "HOLD_MUSIC_URL": "HoldMusicUrl",
        "QUEUE_MAX_WAIT_SECONDS": "QueueMaxWaitSeconds",
        "BUSINESS_HOURS": "BusinessHours",
        "DIAL_COUNTRIES": "DialCountries",
        "BROWSER_CALLS_PER_IDENTITY": "BrowserCallsPerIdentity",
        "BROWSER_CALLS_PER_ADDRESS": "BrowserCallsPerAddress",
    }
    # The metrics' namespace is the stack's own, so two stacks in one account keep theirs apart.
    namespace = variables.pop("METRICS_NAMESPACE")
    assert namespace.tag == "!Sub" and namespace.value == "Warmline/${AWS::StackName}"
    assert {name: create_tables.ref_target(value) for name, value in variables.items()} == expected
    known = set(template["Parameters"]) | set(template["Resources"])
    assert set(expected.values()) <= known


# The TwiML Apps' SIDs are filled in by `make deploy` once it has created the apps.
WIRED_PARAMETERS = ("TwilioTwimlAppSid", "TwilioAgentTwimlAppSid")


@pytest.mark.parametrize("name", ACCOUNT_PARAMETERS)
def test_twilio_parameters_have_no_default(template, name):
    if name in WIRED_PARAMETERS:
        assert template["Parameters"][name]["Default"] == ""
        assert re.fullmatch(template["Parameters"][name]["AllowedPattern"], "")
    else:
        assert "Default" not in template["Parameters"][name]


def test_secrets_are_no_parameters_and_no_environment_variables(template):
    # A NoEcho parameter still lands in samconfig.toml and the function's plain environment.
    assert not [name for name in template["Parameters"] if "Secret" in name or "Token" in name]
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in _functions(template).values():
        variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
    assert not set(SECRET_NAMES) & set(variables)
    assert "resolve:secretsmanager" not in TEMPLATE.read_text(), "a dynamic reference would land in plain text"


# --- Secrets: one Secrets Manager secret per kind, read by the functions that use it ---------
#
# shared/src/secret.rs (`SecretKind`) names each kind's keys and the variable holding its ARN.

SECRET_KINDS = {
    # resource: (the variable naming it, its keys)
    "TwilioAuthTokenSecret": ("TWILIO_AUTH_TOKEN_SECRET_ARN", ["TWILIO_AUTH_TOKEN"]),
    "TwilioApiKeySecret": ("TWILIO_API_KEY_SECRET_ARN", ["TWILIO_API_KEY", "TWILIO_API_SECRET"]),
    "SessionSecret": ("SESSION_SECRET_ARN", ["SESSION_SECRET"]),
}

# The secrets each function's code uses: the Auth Token where it checks webhook signatures (its
# routes are Twilio's), the API key where it calls Twilio's REST API (the router rings agents,
# cancels rings, redirects callers; tickets fetch recordings) or signs Access Tokens, the session
# key where it reads or issues sessions (its routes are agents', or sign-in and tokens).
SECRETS_OF = {
    "conference-connect-client": {"TwilioAuthTokenSecret"},
    "conference-wait": {"TwilioAuthTokenSecret", "TwilioApiKeySecret"},
    "conference-connect-agent": {"TwilioAuthTokenSecret"},
    "conference-events": {"TwilioAuthTokenSecret", "TwilioApiKeySecret"},
    "call-connect": {"TwilioAuthTokenSecret", "TwilioApiKeySecret"},
    "voicemail": {"TwilioAuthTokenSecret"},
    "presence": {"TwilioApiKeySecret", "SessionSecret"},
    "tickets": {"TwilioApiKeySecret", "SessionSecret"},
    "token": {"TwilioApiKeySecret", "SessionSecret"},
    "pages": {"SessionSecret"},
    "conference-call-agent": {"TwilioApiKeySecret", "SessionSecret"},
    "session": {"SessionSecret"},
}


def _secret_reads(folder):
    return _grant(["secretsmanager:GetSecretValue"], sorted(SECRETS_OF[folder]))


def test_the_secrets_are_the_kinds_the_code_reads(template):
    secrets = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::SecretsManager::Secret"}
    assert set(secrets) == set(SECRET_KINDS)
    source = (ROOT / "shared" / "src" / "secret.rs").read_text()
    for name, (variable, keys) in SECRET_KINDS.items():
        assert f'"{variable}"' in source, variable
        assert "&[" + ", ".join(f'"{key}"' for key in keys) + "]" in source, keys
        properties = secrets[name]["Properties"]
        if name == "SessionSecret":
            # Generated by Secrets Manager when the stack is created; nobody ever sees it.
            generated = properties["GenerateSecretString"]
            assert generated["GenerateStringKey"] == "SESSION_SECRET"
            assert generated["PasswordLength"] >= 32
            assert json.loads(generated["SecretStringTemplate"]) == {}
            assert "SecretString" not in properties
        else:
            # The Twilio values start empty: nothing secret is in the template; the operator
            # fills them in, and functions that started before pick them up.
            assert json.loads(properties["SecretString"]) == dict.fromkeys(keys, "")


def test_the_secrets_have_outputs_to_fill_them_in(template):
    outputs = template["Outputs"]
    for name in SECRET_KINDS:
        assert create_tables.ref_target(outputs[f"{name}Arn"]["Value"]) == name
    assert "set-twilio-secrets --auth-token-secret-id" in outputs["TwilioAuthTokenSecretArn"]["Description"]
    assert "set-twilio-secrets --api-key-secret-id" in outputs["TwilioApiKeySecretArn"]["Description"]
    assert "rotate-session-key --secret-id" in outputs["SessionSecretArn"]["Description"]


def test_the_declared_secrets_follow_the_routes():
    assert set(SECRETS_OF) == set(ROUTES)
    session_routes = set(AGENT_ROUTES) | {"POST /token", "GET /login", "POST /login"}
    for folder, secrets in SECRETS_OF.items():
        routes = {f"{method} {path}" for method, path in ROUTES[folder]}
        assert ("TwilioAuthTokenSecret" in secrets) == bool(routes & set(TWILIO_ROUTES)), folder
        assert ("SessionSecret" in secrets) == bool(routes & session_routes), folder


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_every_function_is_given_the_secrets_it_uses_and_no_other(template, translated, folder):
    access = _effective_access(template, translated, folder)
    secret_grants = {grant for grant in access if grant[0].startswith("secretsmanager:")}
    assert secret_grants == _secret_reads(folder)
    # And told where they are: a variable per secret, set on this function alone.
    _, resource = _function_for(template, folder)
    variables = resource["Properties"].get("Environment", {}).get("Variables", {})
    given = {name: create_tables.ref_target(value) for name, value in variables.items() if name.endswith("_SECRET_ARN")}
    assert given == {SECRET_KINDS[secret][0]: secret for secret in SECRETS_OF[folder]}
    assert not [name for name in template["Globals"]["Function"]["Environment"]["Variables"] if "SECRET" in name]


def test_sign_in_has_memory_for_argon2(template):
    _, resource = _function_for(template, "session")
    # The CPU share grows with memory; at 128 MB argon2id (19 MiB, t=2) takes over a second.
    assert resource["Properties"]["MemorySize"] >= 1024


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("TwilioAccountSid", "AC" + "0" * 32, "AC123"),
        ("TwilioTwimlAppSid", "AP" + "A" * 32, "AP" + "g" * 32),
        ("TwilioAgentTwimlAppSid", "AP" + "b" * 32, "SK" + "b" * 32),
        ("TwilioNumber", "+15551234567", "5551234567"),
        ("BusinessHours", "Mon-Fri 09:00-17:00, Sat 10:00-14:00 Europe/Berlin", "weekdays 9 to 5"),
    ],
)
def test_parameter_patterns(template, name, good, bad):
    pattern = re.compile(template["Parameters"][name]["AllowedPattern"])
    # CloudFormation matches the whole value, like fullmatch.
    assert pattern.fullmatch(good)
    assert not pattern.fullmatch(bad)


def test_optional_parameter_defaults(template):
    params = template["Parameters"]
    assert params["PublicBaseUrl"]["Default"] == ""
    # The Agents table is the roster: no list of agents is deployed.
    assert "AgentIds" not in params
    # Over HTTPS, path-style: the bucket's name has dots, so its virtual-hosted HTTPS name does
    # not match S3's certificate.
    assert params["HoldMusicUrl"]["Default"] == "https://s3.amazonaws.com/com.twilio.music.classical/BusyStrings.mp3"
    assert re.fullmatch(params["HoldMusicUrl"]["AllowedPattern"], params["HoldMusicUrl"]["Default"])
    # The same default when HOLD_MUSIC_URL is unset (make dev, the tests).
    config = (ROOT / "shared" / "src" / "config.rs").read_text()
    assert f'DEFAULT_HOLD_MUSIC_URL: &str = "{params["HoldMusicUrl"]["Default"]}";' in config
    assert params["QueueMaxWaitSeconds"]["Default"] == 300
    assert params["BusinessHours"]["Default"] == "", "always open unless told otherwise"


def test_no_key_shaped_strings_in_defaults_or_environment(template):
    values = [p.get("Default") for p in template["Parameters"].values()]
    values += list(template["Globals"]["Function"]["Environment"]["Variables"].values())
    for function in _functions(template).values():
        values += list(function["Properties"].get("Environment", {}).get("Variables", {}).values())
    leaks = [v for v in values if isinstance(v, str) and KEY_SHAPED.search(v)]
    assert leaks == []


def test_no_key_shaped_strings_anywhere_in_deploy_files():
    for path in (TEMPLATE, ROOT / "samconfig.toml"):
        assert not KEY_SHAPED.search(path.read_text()), path


def test_calls_table(template):
    tables = create_tables.table_definitions(template)
    assert set(tables) == {"CallsTable", "TicketsTable", "AgentsTable", "LedgerTable"}
    assert template["Resources"]["CallsTable"]["Type"] == "AWS::DynamoDB::Table"
    props = tables["CallsTable"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "queue", "queue_key", "pool", "pool_key", "team")
    ] + [{"AttributeName": "lease_until", "AttributeType": "N"}]
    # The router reads the line and the free agents from these, never from a scan.
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"waiting", "available", "online"}
    pairs = {"waiting": ("queue", "queue_key"), "available": ("pool", "pool_key"), "online": ("team", "lease_until")}
    for name, (partition, sort) in pairs.items():
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": sort, "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_tickets_table_keeps_customer_data_and_never_needs_a_scan(template):
    resource = template["Resources"]["TicketsTable"]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = resource["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert indexes["newest_first"]["KeySchema"] == [
        {"AttributeName": "feed", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ]
    assert indexes["newest_first"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["by_phone_number"]["KeySchema"] == [{"AttributeName": "phone_number", "KeyType": "HASH"}]
    assert indexes["by_name"]["KeySchema"] == [
        {"AttributeName": "names", "KeyType": "HASH"},
        {"AttributeName": "name_key", "KeyType": "RANGE"},
    ]
    # CloudFormation adds at most one index per table per stack update.
    assert set(indexes) == {"newest_first", "by_phone_number", "by_name"}


def test_ledger_table_keeps_calls_for_the_retention_and_never_needs_a_scan(template):
    resource = template["Resources"]["LedgerTable"]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = resource["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    for name, partition in (("by_party", "party"), ("by_day", "day")):
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": "started", "KeyType": "RANGE"},
        ]
    # 13 months by default; the functions get it as LEDGER_RETENTION_DAYS.
    assert template["Parameters"]["LedgerRetentionDays"]["Default"] == 396
    ledger_store = (ROOT / "shared" / "src" / "store" / "dynamo" / "ledger.rs").read_text()
    assert ".scan()" not in ledger_store


def test_agents_table_keeps_accounts_and_expires_failed_sign_ins(template):
    resource = template["Resources"]["AgentsTable"]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = resource["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_no_function_may_scan_the_tickets_table():
    # The ports query indexes only; a Scan call in the store code would be a full-table read.
    tickets_store = (ROOT / "shared" / "src" / "store" / "dynamo" / "tickets.rs").read_text()
    assert ".scan()" not in tickets_store


# --- IAM: what each function may do, on what ------------------------------------------------
#
# Exactly the DynamoDB calls each function's code makes (its handler in shared/src/handlers, the
# call flow and the store methods they reach in shared/src/store/dynamo), on the tables, indexes
# and kinds of items it makes them on. Compared with what the roles SAM generates really grant,
# so any widening (an action, a table, an index, a dropped condition) fails here.

ITEMS_OF = "ForAllValues:StringLike"


def _grant(actions, resources, condition=None):
    """(action, resource, condition) triples; a resource is a logical id, or id/index/name."""
    return {(action, resource, _canonical(condition)) for action in actions for resource in resources}


def _canonical(condition):
    def sort_lists(value):
        if isinstance(value, dict):
            return {key: sort_lists(item) for key, item in value.items()}
        if isinstance(value, list):
            return sorted(sort_lists(item) for item in value)
        return value

    return None if condition is None else json.dumps(sort_lists(condition), sort_keys=True)


def _leading_keys(*patterns):
    return {ITEMS_OF: {"dynamodb:LeadingKeys": list(patterns)}}


CALLERS = _leading_keys("CONF#*")  # the Calls table's callers
# Browser-call slots of customers and addresses (LIMIT#), with callers or with agents' tokens.
CALLERS_AND_SLOTS = _leading_keys("CONF#*", "LIMIT#*")
TOKEN_RECORDS = _leading_keys("LIMIT#*", "TOKEN#*")
AGENT_RECORDS = _leading_keys("AGENT#*")  # the Agents table's agents (never failed sign-ins)
SIGN_IN_COUNTS = _leading_keys("LOGIN#*", "SOURCE#*")  # sign-in attempts per agent id and per address

# `App::warm_up` opens the DynamoDB connection during init with a DescribeTable of the Calls table.
WARM_UP = _grant(["dynamodb:DescribeTable"], ["CallsTable"])
# A session is checked against the agent's record; the router and outgoing calls read it too.
READ_AGENTS = _grant(["dynamodb:GetItem"], ["AgentsTable"], AGENT_RECORDS)
# Callers and agents' states: read consistently, written over the version read, by conditional
# puts and transactions of puts (TransactWriteItems needs the actions of its items).
CALL_STATE = _grant(["dynamodb:GetItem", "dynamodb:PutItem"], ["CallsTable"])
# Today's figures on the wallboard: a day's counters, added to in the transaction that marks the
# call's outcome counted (the mark is a put).
DAY_COUNTS = _grant(["dynamodb:UpdateItem"], ["CallsTable"], _leading_keys("STATS#*"))
# The router: the line and the free agents (enabled ones only).
ROUTER = _grant(["dynamodb:Query"], ["CallsTable/index/waiting", "CallsTable/index/available"]) | READ_AGENTS
# The call ledger: each event of a call, one conditional put (rings, answers, ends...).
LEDGER = _grant(["dynamodb:PutItem"], ["LedgerTable"], _leading_keys("CALL#*"))

ACCESS = {
    "conference-connect-client": WARM_UP | _grant(["dynamodb:PutItem"], ["CallsTable"], CALLERS) | LEDGER,
    "conference-wait": WARM_UP | CALL_STATE | ROUTER | LEDGER,
    # Joins an agent only while their account is enabled.
    "conference-connect-agent": WARM_UP | CALL_STATE | READ_AGENTS | DAY_COUNTS | LEDGER,
    "conference-call-agent": WARM_UP
    | LEDGER
    | CALL_STATE
    | _grant(["dynamodb:Query"], ["CallsTable/index/available"])
    | READ_AGENTS,
    # Deletes callers (a call that ended; call-connect too, a customer who never picked up), and
    # asks who is online.
    "conference-events": WARM_UP
    | CALL_STATE
    | _grant(["dynamodb:DeleteItem"], ["CallsTable"])
    | ROUTER
    | _grant(["dynamodb:Query"], ["CallsTable/index/online"])
    | DAY_COUNTS
    | LEDGER,
    # The wallboard reads the whole team by the `online` index; the current call, an offered
    # caller's tickets by their number.
    "presence": WARM_UP
    | CALL_STATE
    | ROUTER
    | _grant(["dynamodb:Query"], ["CallsTable/index/online"])
    | _grant(["dynamodb:Query"], ["TicketsTable/index/by_phone_number"])
    | _grant(["dynamodb:GetItem"], ["TicketsTable"])
    | LEDGER,
    # Each token's new record: a customer's address, an agent's session epoch.
    "token": WARM_UP | READ_AGENTS | _grant(["dynamodb:PutItem"], ["CallsTable"], TOKEN_RECORDS),
    "pages": WARM_UP | READ_AGENTS,
    # Files, reads, closes, reopens and notes tickets (conditional updates); never deletes or scans them.
    "tickets": WARM_UP
    | READ_AGENTS
    | _grant(["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"], ["TicketsTable"])
    | _grant(
        ["dynamodb:Query"],
        ["TicketsTable/index/newest_first", "TicketsTable/index/by_phone_number", "TicketsTable/index/by_name"],
    )
    # A ticket's calls and the CSV export: the ledger's indexes, then each call's events.
    | _grant(["dynamodb:Query"], ["LedgerTable", "LedgerTable/index/by_party", "LedgerTable/index/by_day"]),
    # A customer's call takes its slots and puts them in line; an agent's asks whether the number
    # is on a ticket, by counting in the keys-only index (no ticket is read), then writes the
    # customer it calls and the agent busy with them.
    "call-connect": WARM_UP
    | LEDGER
    | READ_AGENTS
    | _grant(["dynamodb:PutItem"], ["CallsTable"], _leading_keys("CONF#*", "LIMIT#*", "AGENT#*"))
    | _grant(["dynamodb:GetItem"], ["CallsTable"], _leading_keys("CONF#*", "LIMIT#*", "AGENT#*", "TOKEN#*"))
    # A customer an agent called who never picked up.
    | _grant(["dynamodb:DeleteItem"], ["CallsTable"], CALLERS)
    | _grant(
        ["dynamodb:Query"],
        ["TicketsTable/index/by_phone_number"],
        {"StringEquals": {"dynamodb:Select": "COUNT"}},
    ),
    "voicemail": WARM_UP
    | LEDGER
    | _grant(["dynamodb:GetItem", "dynamodb:PutItem"], ["CallsTable"], CALLERS_AND_SLOTS)
    | _grant(["dynamodb:PutItem"], ["TicketsTable"])
    | _grant(["dynamodb:PutItem"], ["CallsTable"], _leading_keys("COUNTED#*"))
    | DAY_COUNTS,
    # Reads agents; of an agent, writes only session_epoch (signing out): never a password hash,
    # never a new agent. Counts sign-in attempts per id (`LOGIN#`) and per address (`SOURCE#`):
    # one conditional update each, a put to start an expired count over, and a success takes an
    # address's attempt back (an update) and clears an id's (a delete).
    "session": WARM_UP
    | READ_AGENTS
    | _grant(
        ["dynamodb:UpdateItem"],
        ["AgentsTable"],
        {**AGENT_RECORDS, "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "session_epoch"]}},
    )
    | _grant(["dynamodb:UpdateItem", "dynamodb:PutItem"], ["AgentsTable"], SIGN_IN_COUNTS)
    | _grant(["dynamodb:DeleteItem"], ["AgentsTable"], _leading_keys("LOGIN#*")),
}

# What shared/src/store/dynamo calls, per file: the SDK operations (and transaction items) and
# the partition key prefixes. ACCESS was written from these; when they change, so must it.
STORE_CALLS = {
    # `scan` is list_agents, for the admin tool only: no function is granted it.
    "agents.rs": ({"get_item", "put_item", "update_item", "delete_item", "scan"}, {"AGENT#", "LOGIN#", "SOURCE#"}),
    "calls.rs": (
        {"get_item", "put_item", "query", "transact_write_items", "Put", "Delete", "Update"},
        {"CONF#", "AGENT#", "LIMIT#", "TOKEN#", "STATS#", "COUNTED#"},
    ),
    "tickets.rs": ({"get_item", "put_item", "update_item", "query"}, set()),
    "ledger.rs": ({"put_item", "query"}, {"CALL#", "EVENT#"}),
}
SDK_CALL = re.compile(
    r"\.(get_item|put_item|update_item|delete_item|query|scan|transact_write_items|transact_get_items"
    r"|batch_write_item|batch_get_item|execute_statement|batch_execute_statement|execute_transaction)\(\)"
    r"|\b(Put|Delete|Update|ConditionCheck|Get)::builder\(\)"
)
KEY_PREFIX = re.compile(r'"([A-Za-z][A-Za-z0-9_]*#)')
DYNAMODB_TABLE_ARN = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"


def _resource_name(value):
    """A policy resource as `CallsTable` or `CallsTable/index/waiting`, from the intrinsics of
    the translated template."""
    if isinstance(value, str):
        return value.removeprefix(DYNAMODB_TABLE_ARN)
    ((function, argument),) = value.items()
    if function == "Ref":
        return argument
    if function == "Fn::GetAtt":
        assert argument[1] == "Arn", value
        return argument[0]
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match):
            name = match.group(1)
            if name in variables:
                return _resource_name(variables[name])
            if name.startswith("AWS::"):
                return match.group(0)
            return name.removesuffix(".Arn")

        return re.sub(r"\$\{([^}]+)\}", substitute, text).removeprefix(DYNAMODB_TABLE_ARN)
    raise AssertionError(f"unexpected resource form {value!r}")


def _role(template, translated, folder):
    logical_id, _ = _function_for(template, folder)
    role = translated["Resources"][logical_id]["Properties"]["Role"]
    assert role == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}, "the role SAM makes for the function"
    return translated["Resources"][f"{logical_id}Role"]["Properties"]


def _effective_access(template, translated, folder):
    """What the function's role grants, as (action, resource, condition) triples."""
    grants = set()
    for policy in _role(template, translated, folder).get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            grants |= _grant(actions, [_resource_name(r) for r in resources], statement.get("Condition"))
    return grants


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_each_function_has_the_narrowest_policy(template, translated, folder):
    _, resource = _function_for(template, folder)
    assert "Role" not in resource["Properties"]
    effective = _effective_access(template, translated, folder)
    expected = _secret_reads(folder) | ACCESS[folder]
    assert sorted(effective - expected) == [], "wider than declared"
    assert sorted(expected - effective) == [], "narrower than declared: update ACCESS"


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_no_wildcards_and_only_the_logging_managed_policy(template, translated, folder):
    role = _role(template, translated, folder)
    # Logs only (CreateLogGroup, CreateLogStream, PutLogEvents): SAM's default for every role.
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    for action, resource, _ in _effective_access(template, translated, folder):
        assert "*" not in action and "*" not in resource, (action, resource)
        assert action not in {"dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem"}


def test_the_declared_access_covers_every_function():
    assert set(ACCESS) == set(ROUTES)


def test_the_store_makes_the_calls_the_policies_were_written_for():
    # A new DynamoDB call or kind of item in a store is refused in AWS (AccessDenied) until the
    # policies of the functions that reach it allow it, and no local test would notice.
    store = ROOT / "shared" / "src" / "store" / "dynamo"
    files = {path.name for path in store.glob("*.rs")} - {"mod.rs"}
    assert files == set(STORE_CALLS)
    for name, (calls, prefixes) in STORE_CALLS.items():
        # What the store does, not its tests (which scan to look at the table).
        source = (store / name).read_text().split("#[cfg(test)]", 1)[0]
        found_calls = {a or b for a, b in SDK_CALL.findall(source)}
        found_prefixes = set(KEY_PREFIX.findall(source))
        assert (found_calls, found_prefixes) == (calls, prefixes), (
            f"shared/src/store/dynamo/{name} changed its DynamoDB calls or key prefixes: widen the "
            "statements of exactly the functions that reach the changed store methods in "
            "template.yaml and ACCESS (tests/template), then STORE_CALLS"
        )
    app = (ROOT / "shared" / "src" / "app.rs").read_text()
    assert re.search(r"describe_table\(\)\s*\.table_name\(&self\.config\.calls_table\)", app), "WARM_UP"


def test_globals_grant_no_policies(template):
    assert "Policies" not in template["Globals"]["Function"]
    assert "Role" not in template["Globals"]["Function"]


@pytest.mark.parametrize(
    ("output", "suffix"),
    [
        ("ApiUrl", ""),
        ("PhoneNumberVoiceUrl", "/conference/connect/client"),
        ("TwimlAppVoiceUrl", "/call/connect"),
        ("AgentTwimlAppVoiceUrl", "/call/agent"),
        ("TokenUrl", "/token"),
        ("DashboardUrl", "/dashboard"),
    ],
)
def test_url_outputs(template, output, suffix):
    out = template["Outputs"][output]
    value = out["Value"]
    assert value.tag == "!Sub"
    assert value.value == "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}" + suffix
    assert out["Description"].strip()


def test_url_outputs_point_at_routes_or_say_they_are_pending(template):
    routed = {path for routes in ROUTES.values() for _, path in routes}
    for name, out in template["Outputs"].items():
        value = out["Value"]
        api_url = getattr(value, "tag", None) == "!Sub" and value.value.startswith("https://${Api}.")
        if name == "ApiUrl" or not api_url:
            continue
        path = value.value.split("${AWS::URLSuffix}", 1)[1]
        assert path in routed or "later release" in out["Description"], name


def test_paste_instructions(template):
    outputs = template["Outputs"]
    assert "Phone Numbers" in outputs["PhoneNumberVoiceUrl"]["Description"]
    assert "A call comes in" in outputs["PhoneNumberVoiceUrl"]["Description"]
    assert "TwiML Apps" in outputs["TwimlAppVoiceUrl"]["Description"]
    assert create_tables.ref_target(outputs["CallsTableName"]["Value"]) == "CallsTable"


def test_samconfig():
    with open(ROOT / "samconfig.toml", "rb") as f:
        config = tomllib.load(f)
    default = config["default"]
    assert config["version"] == 0.1
    assert default["global"]["parameters"]["stack_name"] == "warmline"
    # A cached build keyed on lambda/ (the CodeUri) would miss changes in shared/.
    assert default["build"]["parameters"]["cached"] is False
    assert default["build"]["parameters"]["parallel"] is False
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    assert "region" not in deploy
    assert "parameter_overrides" not in deploy
    assert default["validate"]["parameters"]["lint"] is True


def test_create_table_request_copies_keys_and_indexes():
    props = {
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_created_at",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "ContributorInsightsSpecification": {"Enabled": True},
            }
        ],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
    }
    request = create_tables.create_table_request("t", props)
    assert request == {
        "TableName": "t",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_created_at",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def test_table_env_vars(template):
    assert create_tables.table_env_vars(template) == {
        "CALLS_TABLE": "CallsTable",
        "TICKETS_TABLE": "TicketsTable",
        "AGENTS_TABLE": "AgentsTable",
        "LEDGER_TABLE": "LedgerTable",
    }


# --- tools ----------------------------------------------------------------------------------


def _run(args, **kwargs):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs)


def test_cfn_lint_is_clean():
    result = _run([str(VENV_BIN / "cfn-lint"), "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_is_clean():
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    result = _run([str(VENV_BIN / "sam"), "validate", "--lint", "--template", "template.yaml"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr


# --- create_tables.py against the moto server -----------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _create_tables_cli(endpoint, *extra):
    return _run([sys.executable, "scripts/create_tables.py", "--endpoint", endpoint, *extra])


def test_create_tables_against_moto(moto_endpoint):
    prefix = "test-"
    first = _create_tables_cli(moto_endpoint, "--prefix", prefix)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "AgentsTable=test-AgentsTable",
        "CallsTable=test-CallsTable",
        "TicketsTable=test-TicketsTable",
        "LedgerTable=test-LedgerTable",
    ]

    # Idempotent: `make dev` runs it on every start.
    second = _create_tables_cli(moto_endpoint, "--prefix", prefix, "--print-env")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "CALLS_TABLE=test-CallsTable",
        "TICKETS_TABLE=test-TicketsTable",
        "AGENTS_TABLE=test-AgentsTable",
        "LEDGER_TABLE=test-LedgerTable",
    ]

    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = client.describe_table(TableName="test-CallsTable")["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName="test-CallsTable")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    tickets = client.describe_table(TableName="test-TicketsTable")["Table"]
    assert sorted(index["IndexName"] for index in tickets["GlobalSecondaryIndexes"]) == [
        "by_name",
        "by_phone_number",
        "newest_first",
    ]


def test_create_tables_default_prefix(moto_endpoint):
    result = _create_tables_cli(moto_endpoint, "--print-env")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "CALLS_TABLE=warmline-local-CallsTable",
        "TICKETS_TABLE=warmline-local-TicketsTable",
        "AGENTS_TABLE=warmline-local-AgentsTable",
        "LEDGER_TABLE=warmline-local-LedgerTable",
    ]
