"""The stack's operating parts in template.yaml: the fallback Twilio plays when Warmline cannot
answer, the alarms and their topic, the dashboard, and the outputs `make deploy` wires Twilio
with.

The fallback's writer (a few lines of Python inside the template) runs here against the moto
emulator's S3, and the document it writes is checked against the official `twilio` package's
TwiML.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
from twilio.twiml.voice_response import VoiceResponse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
sys.path.insert(0, str(ROOT / "scripts"))
import create_tables  # noqa: E402

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
ALARM = "AWS::CloudWatch::Alarm"
# What shared/src/telemetry.rs writes; the alarms and the dashboard read these.
METRICS = (
    "CallsOffered",
    "CallsAnswered",
    "QueueWait",
    "CallsAbandoned",
    "AbandonedWait",
    "Voicemails",
    "Transfers",
    "TalkTime",
    "WebhookLatency",
    "Errors",
)
NAMESPACE = "Warmline/${AWS::StackName}"


@pytest.fixture(scope="module")
def template():
    return create_tables.load_template(TEMPLATE)


def _resources(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """The emulator `make test` runs (moto serves S3 too), or one of our own."""
    running = os.environ.get("WARMLINE_TEST_DYNAMODB_ENDPOINT")
    if running:
        yield running
        return
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    venv_bin = Path(sys.executable).parent
    process = subprocess.Popen(
        [str(venv_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
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
        process.wait(timeout=5)


def _s3(endpoint):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


class _CloudFormation:
    """Where the custom resource answers: the pre-signed ResponseURL CloudFormation waits on."""

    def __init__(self):
        answers = self.answers = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 - the stdlib's name
                answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/answer"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _writer(template, s3_endpoint, monkeypatch):
    """The custom resource's function, loaded as Lambda loads its inline code."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    code = template["Resources"]["FallbackWriterFunction"]["Properties"]["Code"]["ZipFile"]
    module = types.ModuleType("index")
    exec(compile(code, "index.py", "exec"), module.__dict__)  # noqa: S102 - the template's own code
    return module


def _invoke(module, request_type, properties):
    cloudformation = _CloudFormation()
    try:
        event = {
            "RequestType": request_type,
            "ResponseURL": cloudformation.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/warmline/x",
            "RequestId": "req-1",
            "LogicalResourceId": "FallbackTwiml",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", **properties},
        }
        module.handler(event, None)
        return cloudformation.answers
    finally:
        cloudformation.close()


def _tree(xml_text):
    """A TwiML document as (tag, attributes, text) nested tuples: the oracle writes attributes
    in its own order, so compare parsed trees, not bytes."""

    def walk(element):
        return (element.tag, dict(element.attrib), (element.text or "").strip(), [walk(child) for child in element])

    return walk(ET.fromstring(xml_text.encode()))


def _default_message(template):
    return template["Parameters"]["FallbackMessage"]["Default"]


# --- the fallback ----------------------------------------------------------------------------


def test_the_fallback_is_twiml_the_caller_hears(template, s3_endpoint, monkeypatch):
    s3 = _s3(s3_endpoint)
    bucket = f"fallback-test-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    writer = _writer(template, s3_endpoint, monkeypatch)
    message = _default_message(template)

    answers = _invoke(writer, "Create", {"Bucket": bucket, "Key": "fallback.xml", "Message": message})
    assert [(a["Status"], a["PhysicalResourceId"], a["LogicalResourceId"], a["RequestId"]) for a in answers] == [
        ("SUCCESS", f"{bucket}/fallback.xml", "FallbackTwiml", "req-1")
    ]
    stored = s3.get_object(Bucket=bucket, Key="fallback.xml")
    assert stored["ContentType"] == "text/xml; charset=utf-8"
    document = stored["Body"].read().decode()
    oracle = VoiceResponse()
    oracle.say(message)
    oracle.hangup()
    assert _tree(document) == _tree(str(oracle))
    # Something to hear, then the end of the call.
    (say, hangup) = ET.fromstring(document)
    assert say.tag == "Say" and "try again in a few minutes" in say.text and hangup.tag == "Hangup"

    # A message of the operator's, with characters XML reserves, still parses and says them.
    tricky = 'Sorry <all> of "us" & co. are out: call 9 < 10.'
    _invoke(writer, "Update", {"Bucket": bucket, "Key": "fallback.xml", "Message": tricky})
    updated = s3.get_object(Bucket=bucket, Key="fallback.xml")["Body"].read().decode()
    oracle = VoiceResponse()
    oracle.say(tricky)
    oracle.hangup()
    assert _tree(updated) == _tree(str(oracle))

    # Deleting the stack removes the document, so the bucket can go; twice is fine.
    for _ in range(2):
        answers = _invoke(writer, "Delete", {"Bucket": bucket, "Key": "fallback.xml", "Message": message})
        assert [a["Status"] for a in answers] == ["SUCCESS"]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_fallback_that_cannot_be_written_fails_the_deploy_but_never_a_delete(template, s3_endpoint, monkeypatch):
    writer = _writer(template, s3_endpoint, monkeypatch)
    properties = {"Bucket": f"no-such-bucket-{os.getpid()}", "Key": "fallback.xml", "Message": "x"}
    (answer,) = _invoke(writer, "Create", properties)
    assert answer["Status"] == "FAILED" and "NoSuchBucket" in answer["Reason"]
    (answer,) = _invoke(writer, "Delete", properties)
    assert answer["Status"] == "SUCCESS", "a stack whose document is gone must still be deletable"


def test_the_fallback_says_what_warmline_says_when_it_fails(template):
    error_rs = (ROOT / "shared" / "src" / "error.rs").read_text()
    apology = re.search(r'pub const APOLOGY: &str =\s*"([^"]+)";', error_rs).group(1)
    assert _default_message(template) == apology
    parameter = template["Parameters"]["FallbackMessage"]
    assert parameter["MinLength"] >= 1


def test_twilio_may_read_the_fallback_and_nothing_else_in_its_bucket(template):
    resources = template["Resources"]
    bucket = resources["FallbackBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (statement,) = resources["FallbackBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Allow", "*", "s3:GetObject")
    assert statement["Resource"].value == "${FallbackBucket.Arn}/fallback.xml"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "true"}}
    # The writer may write and delete that one object, and log.
    role = resources["FallbackWriterRole"]["Properties"]
    (policy,) = role["Policies"]
    grants = {(tuple(s["Action"]), getattr(s["Resource"], "value", None)) for s in policy["PolicyDocument"]["Statement"]}
    assert grants == {
        (("s3:PutObject", "s3:DeleteObject"), "${FallbackBucket.Arn}/fallback.xml"),
        (("logs:CreateLogStream", "logs:PutLogEvents"), "FallbackWriterLogs.Arn"),
    }
    assert create_tables.ref_target(resources["FallbackWriterLogs"]["Properties"]["RetentionInDays"]) == "LogRetentionDays"


def test_the_url_the_stack_outputs_is_the_document_it_writes(template):
    resource = template["Resources"]["FallbackTwiml"]
    assert resource["Type"] == "Custom::FallbackTwiml"
    properties = resource["Properties"]
    assert properties["ServiceToken"].value == "FallbackWriterFunction.Arn"
    assert create_tables.ref_target(properties["Bucket"]) == "FallbackBucket"
    assert create_tables.ref_target(properties["Message"]) == "FallbackMessage"
    url = template["Outputs"]["FallbackTwimlUrl"]["Value"]
    assert url.tag == "!Sub" and url.value == "https://${FallbackBucket.RegionalDomainName}/" + properties["Key"]
    # The document is public once its policy is: written after it.
    assert resource["DependsOn"] == "FallbackBucketPolicy"


def _rust_strings(path, constant):
    source = (ROOT / path).read_text()
    body = re.search(rf"pub const {constant}: \[&str; \d+\] =\s*\[([^\]]*)\]", source).group(1)
    return re.findall(r'"([^"]+)"', body)


def test_wiring_reads_outputs_the_stack_has(template):
    outputs = template["Outputs"]
    for name in _rust_strings("tools/admin/src/outputs.rs", "WIRING_OUTPUTS"):
        assert name in outputs, name
    assert any(name in outputs for name in _rust_strings("tools/admin/src/outputs.rs", "API_KEY_SECRET_OUTPUTS"))
    wire = (ROOT / "tools" / "admin" / "src" / "wire.rs").read_text()
    for parameter in ("TwilioTwimlAppSid", "TwilioAgentTwimlAppSid"):
        assert f'"{parameter}"' in wire
        # wire-twilio finds the apps the stack runs with, and make deploy sets them.
        assert create_tables.ref_target(outputs[parameter]["Value"]) == parameter
        assert template["Parameters"][parameter]["Default"] == ""
    assert create_tables.ref_target(outputs["StackName"]["Value"]) == "AWS::StackName"


def test_twilio_reaches_the_public_base_url_when_there_is_one(template):
    value = template["Outputs"]["WebhookBaseUrl"]["Value"]
    assert value.tag == "!If"
    condition, when_set, otherwise = value.value
    assert condition == "HasPublicBaseUrl"
    assert create_tables.ref_target(when_set) == "PublicBaseUrl"
    assert otherwise.value == "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    assert template["Conditions"]["HasPublicBaseUrl"].value[0].value == [create_tables.CfnTag("!Ref", "PublicBaseUrl"), ""]


# --- alarms ----------------------------------------------------------------------------------


def test_every_alarm_tells_the_topic_and_an_email_only_if_given(template):
    alarms = _resources(template, ALARM)
    assert set(alarms) == {
        "Api5xxAlarm",
        "TwilioFunctionErrorsAlarm",
        "PageFunctionErrorsAlarm",
        "TwilioFunctionThrottlesAlarm",
        "PageFunctionThrottlesAlarm",
        "WebhookLatencyAlarm",
        "AbandonedCallsAlarm",
        "DynamoDbThrottlesAlarm",
    }
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        assert [create_tables.ref_target(a) for a in properties["AlarmActions"]] == ["AlarmTopic"], name
        assert [create_tables.ref_target(a) for a in properties["OKActions"]] == ["AlarmTopic"], name
        # A quiet line is no alarm.
        assert properties["TreatMissingData"] == "notBreaching", name
        assert "docs/OPERATIONS.md" in properties["AlarmDescription"], name
        assert properties["AlarmName"].value.startswith("${AWS::StackName}-"), name
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert create_tables.ref_target(subscription["Properties"]["Endpoint"]) == "AlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    pattern = re.compile(template["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("ops@example.com")
    assert not pattern.fullmatch("ops at example") and not pattern.fullmatch("a@b@c.d")
    assert create_tables.ref_target(template["Outputs"]["AlarmTopicArn"]["Value"]) == "AlarmTopic"


def _lambda_metrics(alarm, metric_name):
    found = []
    for query in alarm["Properties"].get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric", {})
        if metric.get("Namespace") == "AWS/Lambda" and metric.get("MetricName") == metric_name:
            (dimension,) = metric["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            found.append(create_tables.ref_target(dimension["Value"]))
    return found


@pytest.mark.parametrize("metric_name", ["Errors", "Throttles"])
def test_every_function_is_watched_once_for_errors_and_throttles(template, metric_name):
    functions = set(_resources(template, SERVERLESS_FUNCTION))
    watched = []
    for name, alarm in _resources(template, ALARM).items():
        in_alarm = _lambda_metrics(alarm, metric_name)
        if in_alarm:
            # An alarm reads at most 10 metrics; the sum is what it watches.
            assert len(alarm["Properties"]["Metrics"]) - 1 == len(in_alarm) <= 10, name
            (total,) = [q for q in alarm["Properties"]["Metrics"] if q.get("ReturnData")]
            assert total["Expression"] == "SUM(METRICS())", name
            assert alarm["Properties"]["Threshold"] == 1, name
            watched.extend(in_alarm)
    assert sorted(watched) == sorted(functions), "each function in exactly one group"


def test_the_alarms_watch_what_goes_wrong(template):
    resources = template["Resources"]
    api = resources["Api5xxAlarm"]["Properties"]
    assert (api["Namespace"], api["MetricName"], api["Statistic"], api["Threshold"]) == ("AWS/ApiGateway", "5xx", "Sum", 1)
    dimensions = {d["Name"]: d["Value"] for d in api["Dimensions"]}
    assert create_tables.ref_target(dimensions["ApiId"]) == "Api" and dimensions["Stage"] == "$default"

    latency = resources["WebhookLatencyAlarm"]["Properties"]
    assert latency["Namespace"].value == NAMESPACE and latency["MetricName"] == "WebhookLatency"
    assert (latency["ExtendedStatistic"], latency["Threshold"], latency["ComparisonOperator"]) == (
        "p99",
        2000,
        "GreaterThanThreshold",
    )
    assert "Dimensions" not in latency, "all routes together: the metric's dimensionless set"

    abandoned = resources["AbandonedCallsAlarm"]["Properties"]
    assert abandoned["Namespace"].value == NAMESPACE and abandoned["MetricName"] == "CallsAbandoned"
    assert create_tables.ref_target(abandoned["Threshold"]) == "AbandonedCallsThreshold"
    assert (abandoned["Statistic"], abandoned["Period"]) == ("Sum", 900)

    tables = {name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    throttles = resources["DynamoDbThrottlesAlarm"]["Properties"]["Metrics"]
    watched = {
        (q["MetricStat"]["Metric"]["MetricName"], create_tables.ref_target(q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]))
        for q in throttles
        if "MetricStat" in q
    }
    assert watched == {(kind, table) for kind in ("ReadThrottleEvents", "WriteThrottleEvents") for table in tables}


def test_the_metrics_are_the_ones_the_functions_write(template):
    telemetry = (ROOT / "shared" / "src" / "telemetry.rs").read_text()
    for metric in METRICS:
        assert re.search(rf'\("{metric}", Unit::', telemetry), metric
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["METRICS_NAMESPACE"].value == NAMESPACE
    assert 'std::env::var("METRICS_NAMESPACE")' in telemetry


def _dashboard(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    assert body.tag == "!Sub"
    # What CloudFormation substitutes, with stand-ins.
    text = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: "X-" + m.group(1).replace(":", "-"), body.value)
    return json.loads(text), body.value


def test_the_dashboard_shows_the_calls_the_requests_the_errors_and_the_alarms(template):
    dashboard, source = _dashboard(template)
    titles = [w["properties"].get("title") for w in dashboard["widgets"]]
    assert titles[1:] == [
        "Calls (per 5 minutes)",
        "Waiting and talking (seconds)",
        "Twilio's requests: p99 by route (ms)",
        "Errors by kind (per 5 minutes)",
        "HTTP API",
        "Lambda errors and throttles",
        "DynamoDB throttles",
        "Alarms",
    ]
    for metric in METRICS:
        assert f'"{metric}"' in source or f'MetricName=\\"{metric}\\"' in source, metric
    (alarm_widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"X-{name}.Arn" for name in _resources(template, ALARM))
    url = template["Outputs"]["MetricsDashboardUrl"]["Value"]
    assert url.tag == "!Sub" and url.value.endswith("#dashboards:name=${Dashboard}")
    # SAM names a function <stack>-<LogicalId>-<suffix>: a quoted SEARCH term matches a value
    # exactly and would find none of them; the stack's name unquoted matches them by token.
    searches = re.findall(r"SEARCH\('([^']*)'", source)
    assert searches and all("FunctionName=${AWS::StackName}" in term for term in searches if "AWS/Lambda" in term)
    assert not any('FunctionName=\\"' in term for term in searches), searches
