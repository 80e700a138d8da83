"""The `make dev` stack end to end: scripts/dev.sh (DynamoDB emulator + cargo lambda watch) with a
fake Twilio REST API, driven by webhooks signed by the official `twilio` package.

Checks what unit tests cannot: the watch router serves the production paths, form bodies survive
the API Gateway event encoding, signatures are checked against PUBLIC_BASE_URL, and state lands
in the emulator's tables created from template.yaml.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]
AUTH_TOKEN = "e2e-auth-token"
ACCOUNT_SID = "AC" + "1" * 32
CUSTOMER_SID = "CA" + "ab" * 16
SECOND_CUSTOMER_SID = "CA" + "ef" * 16


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeTwilio(ThreadingHTTPServer):
    """Answers Calls.json like Twilio and remembers every request."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeTwilioHandler)
        self.requests = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def calls(self):
        with self.lock:
            return list(self.requests)


class FakeTwilioHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "form": urllib.parse.parse_qs(body)}
            )
            n = len(self.server.requests)
        payload = json.dumps({"sid": f"CA{n:032x}", "status": "queued"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    fake = FakeTwilio()
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    port, dynamodb_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    state = tmp_path_factory.mktemp("dev")
    settings = state / "settings.env"
    settings.write_text(
        "\n".join(
            [
                f"TWILIO_ACCOUNT_SID={ACCOUNT_SID}",
                f"TWILIO_AUTH_TOKEN={AUTH_TOKEN}",
                f"TWILIO_API_BASE_URL={fake.url}",
                "TWILIO_NUMBER=+15551110000",
                f"PUBLIC_BASE_URL={base}",
            ]
        )
    )
    env = dict(
        os.environ,
        WARMLINE_PORT=str(port),
        WARMLINE_DYNAMODB_PORT=str(dynamodb_port),
        WARMLINE_ENV_FILE=str(settings),
        WARMLINE_STATE_DIR=str(state),
    )
    log = open(state / "dev.log", "w")
    process = subprocess.Popen(
        ["bash", "scripts/dev.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(base, process, state / "dev.log")
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{dynamodb_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        yield {"base": base, "fake": fake, "dynamodb": dynamodb, "table": "warmline-local-CallsTable"}
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        fake.shutdown()
        log.close()


def wait_for(base, process, log_path, timeout=600):
    """Until the router answers; the first start may compile the workspace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dev.sh exited early:\n{log_path.read_text()}")
        try:
            post(base, "/token", {}, signed=False)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dev.sh did not serve within {timeout}s:\n{log_path.read_text()}")


def post(base, path, params, signed=True, signature=None):
    url = base + path
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers["X-Twilio-Signature"] = signature or RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def items(stack):
    scan = stack["dynamodb"].scan(TableName=stack["table"], ConsistentRead=True)
    return sorted((item["pk"]["S"], item["sk"]["S"]) for item in scan["Items"])


XML = '<?xml version="1.0" encoding="UTF-8"?>'


def test_tokens_and_a_transfer_without_a_call(stack):
    # Runs first (pytest keeps file order): no agent has joined a conference yet.
    status, _, body = post(stack["base"], "/conference/agent1/call", {}, signed=False)
    assert (status, json.loads(body)) == (409, {"error": "agent1 is not in a call right now"})
    assert stack["fake"].calls() == []

    status, _, body = post(stack["base"], "/token", {"agent": "agent2"}, signed=False)
    assert status == 200 and json.loads(body)["identity"] == "agent2"
    status, _, body = post(stack["base"], "/token", {"agent": "mallory"}, signed=False)
    assert (status, json.loads(body)) == (403, {"error": "forbidden"})


def test_warm_transfer_through_the_local_stack(stack):
    base, fake = stack["base"], stack["fake"]
    inbound = {"CallSid": CUSTOMER_SID, "From": "+15557654321", "To": "+15551110000", "Direction": "inbound"}

    status, content_type, body = post(base, "/conference/connect/client", inbound)
    assert (status, content_type) == (200, "text/xml; charset=utf-8")
    assert body == (
        f'{XML}<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" '
        f'waitUrl="{base}/conference/wait" waitMethod="POST" '
        f'statusCallback="{base}/conference/{CUSTOMER_SID}/events" statusCallbackEvent="leave end" '
        f'statusCallbackMethod="POST">{CUSTOMER_SID}</Conference></Dial></Response>'
    )
    calls = fake.calls()
    assert len(calls) == 1
    assert calls[0]["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert calls[0]["form"] == {
        "To": ["client:agent1"],
        "From": ["+15551110000"],
        "Url": [f"{base}/conference/{CUSTOMER_SID}/connect/agent1"],
        "Timeout": ["20"],
        "StatusCallback": [f"{base}/conference/{CUSTOMER_SID}/agents/agent1/status"],
        "StatusCallbackEvent": ["completed"],
        "StatusCallbackMethod": ["POST"],
    }
    assert items(stack) == [(f"CONF#{CUSTOMER_SID}", "CONF")]

    # Twilio retries the webhook: same answer, no second dial.
    assert post(base, "/conference/connect/client", inbound)[2] == body
    assert len(fake.calls()) == 1

    status, _, body = post(base, "/conference/wait", {"CallSid": CUSTOMER_SID})
    assert status == 200 and '<Play loop="0">' in body

    status, _, body = post(base, f"/conference/{CUSTOMER_SID}/connect/agent1", {"CallSid": "CA" + "01" * 16})
    assert body == (
        f'{XML}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">'
        f"{CUSTOMER_SID}</Conference></Dial></Response>"
    )
    assert ("AGENT#agent1", "CONF") in items(stack)

    status, content_type, body = post(base, "/conference/agent1/call", {}, signed=False)
    assert (status, content_type) == (201, "application/json")
    assert json.loads(body)["agent"] == "agent2"
    assert fake.calls()[-1]["form"]["Url"] == [f"{base}/conference/{CUSTOMER_SID}/connect/agent2"]

    status, _, body = post(base, f"/conference/{CUSTOMER_SID}/connect/agent2", {"CallSid": "CA" + "02" * 16})
    assert 'endConferenceOnExit="true"' in body
    assert items(stack) == sorted(
        [
            ("AGENT#agent1", "CONF"),
            ("AGENT#agent2", "CONF"),
            (f"CONF#{CUSTOMER_SID}", "AGENT#agent1"),
            (f"CONF#{CUSTOMER_SID}", "AGENT#agent2"),
            (f"CONF#{CUSTOMER_SID}", "CONF"),
        ]
    )


def test_the_end_of_the_call_clears_up(stack):
    # Continues the warm transfer above: the customer hangs up, and Twilio reports the end.
    base, fake = stack["base"], stack["fake"]
    before = len(fake.calls())
    event = {"ConferenceSid": "CF" + "0" * 32, "FriendlyName": CUSTOMER_SID, "StatusCallbackEvent": "conference-end"}
    status, content_type, body = post(base, f"/conference/{CUSTOMER_SID}/events", event)
    assert (status, content_type, body) == (200, "text/xml; charset=utf-8", f"{XML}<Response></Response>")
    assert items(stack) == []
    # Both agent calls are canceled (Twilio ignores it for the answered ones), nothing dialed.
    updates = fake.calls()[before:]
    assert sorted(call["path"].rsplit("/", 1)[1] for call in updates) == [f"CA{1:032x}.json", f"CA{2:032x}.json"]
    assert all(call["form"] == {"Status": ["canceled"]} for call in updates)
    status, _, body = post(base, "/conference/agent1/call", {}, signed=False)
    assert (status, json.loads(body)) == (409, {"error": "agent1 is not in a call right now"})


def test_forged_webhooks_change_nothing(stack):
    base, fake = stack["base"], stack["fake"]
    before_calls, before_items = len(fake.calls()), items(stack)
    params = {"CallSid": SECOND_CUSTOMER_SID}
    wrong_url = RequestValidator(AUTH_TOKEN).compute_signature("https://example.com/conference/connect/client", params)
    for kwargs in [{"signed": False}, {"signature": "Zm9yZ2Vk"}, {"signature": wrong_url}]:
        status, _, body = post(base, "/conference/connect/client", params, **kwargs)
        assert (status, body) == (403, "forbidden")
    assert len(fake.calls()) == before_calls
    assert items(stack) == before_items
