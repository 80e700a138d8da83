"""Checks on template.yaml, samconfig.toml and scripts/create_tables.py.

The deployed stack cannot be exercised here (no AWS, no Docker), so these tests pin what can go
wrong silently: a function without a route, a route that differs between API Gateway and
`cargo lambda watch`, a policy wider than needed, a secret with a default.
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

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent
SERVERLESS_FUNCTION = "AWS::Serverless::Function"

# The secrets the functions read from Secrets Manager; none may be a parameter or a variable.
SECRET_NAMES = ("TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "SESSION_SECRET")
ACCOUNT_PARAMETERS = ("TwilioAccountSid", "TwilioApiKey", "TwilioNumber", "TwilioTwimlAppSid")
SECRET = ("AWSSecretsManagerGetSecretValuePolicy", "Secrets")
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


def _functions(template):
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == SERVERLESS_FUNCTION
    }


def _function_for(template, folder):
    matches = [
        (logical_id, resource)
        for logical_id, resource in _functions(template).items()
        if resource["Properties"].get("CodeUri") == f"functions/{folder}"
    ]
    assert len(matches) == 1, f"functions/{folder}: expected one function, found {[m[0] for m in matches]}"
    return matches[0]


def _function_folders():
    return sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").is_file())


def _policy_names(resource):
    names = []
    for policy in resource["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and len(policy) == 1, f"unexpected policy form: {policy!r}"
        (name, args), = policy.items()
        target = args.get("TableName", args.get("SecretArn"))
        names.append((name, create_tables.ref_target(target)))
    return names


def test_function_folders_match_the_route_table():
    assert _function_folders() == sorted(ROUTES)


@pytest.mark.parametrize("folder", _function_folders())
def test_each_function_folder_has_exactly_one_cargo_lambda_function(template, folder):
    _, resource = _function_for(template, folder)
    metadata = resource.get("Metadata", {})
    assert metadata.get("BuildMethod") == "rust-cargolambda"
    # Binary is optional for a workspace member; if someone adds it, it must name this package.
    assert metadata.get("BuildProperties", {}).get("Binary", folder) == folder


def test_no_function_points_at_a_missing_folder(template):
    code_uris = sorted(r["Properties"]["CodeUri"] for r in _functions(template).values())
    assert code_uris == [f"functions/{folder}" for folder in _function_folders()]


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_every_http_api_event_is_on_the_one_api(template, folder):
    _, resource = _function_for(template, folder)
    for event in resource["Properties"]["Events"].values():
        assert event["Type"] == "HttpApi"
        assert create_tables.ref_target(event["Properties"]["ApiId"]) == "Api"


def test_http_api_uses_default_stage_and_throttles(template):
    apis = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi"]
    assert len(apis) == 1
    props = apis[0].get("Properties", {})
    # A named stage would prefix every path, breaking the URLs pasted into Twilio.
    assert props.get("StageName", "$default") == "$default"
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50}
    # What anyone may call gets a tighter limit; sign-in the tightest (on top of its lockout).
    routes = props["RouteSettings"]
    assert set(routes) == {"GET /", "POST /tickets", "POST /token", "POST /login"}
    for route, settings in routes.items():
        assert settings["ThrottlingRateLimit"] < 50 and settings["ThrottlingBurstLimit"] < 100, route
    assert routes["POST /login"]["ThrottlingRateLimit"] <= 2
    routed = {f"{method} {path}" for function_routes in ROUTES.values() for method, path in function_routes}
    assert set(routes) <= routed, "a throttled route must exist"


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
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    expected = {
        "TWILIO_ACCOUNT_SID": "TwilioAccountSid",
        "TWILIO_API_KEY": "TwilioApiKey",
        "TWILIO_NUMBER": "TwilioNumber",
        "TWILIO_TWIML_APP_SID": "TwilioTwimlAppSid",
        "PUBLIC_BASE_URL": "PublicBaseUrl",
        "CALLS_TABLE": "CallsTable",
        "TICKETS_TABLE": "TicketsTable",
        "AGENTS_TABLE": "AgentsTable",
        "SECRETS_ARN": "Secrets",
        "HOLD_MUSIC_URL": "HoldMusicUrl",
        "QUEUE_MAX_WAIT_SECONDS": "QueueMaxWaitSeconds",
        "BUSINESS_HOURS": "BusinessHours",
    }
    assert {name: create_tables.ref_target(value) for name, value in variables.items()} == expected
    known = set(template["Parameters"]) | set(template["Resources"])
    assert set(expected.values()) <= known


@pytest.mark.parametrize("name", ACCOUNT_PARAMETERS)
def test_twilio_parameters_have_no_default(template, name):
    assert "Default" not in template["Parameters"][name]


def test_secrets_are_no_parameters_and_no_environment_variables(template):
    # A NoEcho parameter still lands in samconfig.toml and the function's plain environment.
    assert not [name for name in template["Parameters"] if "Secret" in name or "Token" in name]
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in _functions(template).values():
        variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
    assert not set(SECRET_NAMES) & set(variables)
    assert "resolve:secretsmanager" not in TEMPLATE.read_text(), "a dynamic reference would land in plain text"


def test_the_secret_is_created_with_a_generated_session_key(template):
    secret = template["Resources"]["Secrets"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "SESSION_SECRET"
    assert generated["PasswordLength"] >= 32
    # The Twilio values start empty: nothing secret is in the template; the operator fills them in.
    assert json.loads(generated["SecretStringTemplate"]) == {"TWILIO_AUTH_TOKEN": "", "TWILIO_API_SECRET": ""}
    assert "SecretString" not in secret["Properties"]


@pytest.mark.parametrize("folder", sorted(ROUTES))
def test_every_function_may_read_the_secret_and_nothing_else_of_secrets_manager(template, folder):
    _, resource = _function_for(template, folder)
    secret_policies = [p for p in _policy_names(resource) if "SecretsManager" in p[0]]
    assert secret_policies == [("AWSSecretsManagerGetSecretValuePolicy", "Secrets")]


def test_sign_in_has_memory_for_argon2(template):
    _, resource = _function_for(template, "session")
    # The CPU share grows with memory; at 128 MB argon2id (19 MiB, t=2) takes over a second.
    assert resource["Properties"]["MemorySize"] >= 1024


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("TwilioAccountSid", "AC" + "0" * 32, "AC123"),
        ("TwilioApiKey", "SK" + "f" * 32, "AC" + "f" * 32),
        ("TwilioTwimlAppSid", "AP" + "A" * 32, "AP" + "g" * 32),
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
    assert (
        params["HoldMusicUrl"]["Default"]
        == "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
    )
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
    assert set(tables) == {"CallsTable", "TicketsTable", "AgentsTable"}
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


@pytest.mark.parametrize(
    ("folder", "policies"),
    [
        ("conference-connect-client", [SECRET, ("DynamoDBCrudPolicy", "CallsTable")]),
        ("conference-wait", [SECRET, ("DynamoDBReadPolicy", "AgentsTable"), ("DynamoDBCrudPolicy", "CallsTable")]),
        ("conference-connect-agent", [SECRET, ("DynamoDBCrudPolicy", "CallsTable")]),
        (
            "conference-call-agent",
            [
                SECRET,
                ("DynamoDBReadPolicy", "AgentsTable"),
                ("DynamoDBReadPolicy", "CallsTable"),
                ("DynamoDBWritePolicy", "CallsTable"),
            ],
        ),
        ("conference-events", [SECRET, ("DynamoDBReadPolicy", "AgentsTable"), ("DynamoDBCrudPolicy", "CallsTable")]),
        ("presence", [SECRET, ("DynamoDBReadPolicy", "AgentsTable"), ("DynamoDBCrudPolicy", "CallsTable")]),
        ("voicemail", [SECRET, ("DynamoDBCrudPolicy", "CallsTable"), ("DynamoDBWritePolicy", "TicketsTable")]),
        ("token", [SECRET, ("DynamoDBReadPolicy", "AgentsTable")]),
        (
            "tickets",
            [
                SECRET,
                ("DynamoDBReadPolicy", "AgentsTable"),
                ("DynamoDBWritePolicy", "TicketsTable"),
                ("DynamoDBReadPolicy", "TicketsTable"),
            ],
        ),
        (
            "call-connect",
            [
                SECRET,
                ("DynamoDBReadPolicy", "AgentsTable"),
                ("DynamoDBReadPolicy", "TicketsTable"),
                ("DynamoDBCrudPolicy", "CallsTable"),
            ],
        ),
        ("pages", [SECRET, ("DynamoDBReadPolicy", "AgentsTable")]),
        # Reads agents, counts failed sign-ins, ends sessions; no calls, no tickets.
        ("session", [SECRET, ("DynamoDBCrudPolicy", "AgentsTable")]),
    ],
)
def test_each_function_has_the_narrowest_policy(template, folder, policies):
    _, resource = _function_for(template, folder)
    assert _policy_names(resource) == policies
    assert "Role" not in resource["Properties"]


def test_globals_grant_no_policies(template):
    assert "Policies" not in template["Globals"]["Function"]
    assert "Role" not in template["Globals"]["Function"]


@pytest.mark.parametrize(
    ("output", "suffix"),
    [
        ("ApiUrl", ""),
        ("PhoneNumberVoiceUrl", "/conference/connect/client"),
        ("TwimlAppVoiceUrl", "/call/connect"),
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
        if name == "ApiUrl" or getattr(value, "tag", None) != "!Sub":
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
    # A cached build keyed on functions/<name> would miss changes in shared/.
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
    ]

    # Idempotent: `make dev` runs it on every start.
    second = _create_tables_cli(moto_endpoint, "--prefix", prefix, "--print-env")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "CALLS_TABLE=test-CallsTable",
        "TICKETS_TABLE=test-TicketsTable",
        "AGENTS_TABLE=test-AgentsTable",
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
    assert sorted(index["IndexName"] for index in tickets["GlobalSecondaryIndexes"]) == ["by_phone_number", "newest_first"]


def test_create_tables_default_prefix(moto_endpoint):
    result = _create_tables_cli(moto_endpoint, "--print-env")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "CALLS_TABLE=warmline-local-CallsTable",
        "TICKETS_TABLE=warmline-local-TicketsTable",
        "AGENTS_TABLE=warmline-local-AgentsTable",
    ]
