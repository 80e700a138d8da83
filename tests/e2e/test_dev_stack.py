"""The `make dev` stack end to end: scripts/dev.sh (DynamoDB emulator + cargo lambda watch) with a
fake Twilio REST API, driven by webhooks signed by the official `twilio` package.

Checks what unit tests cannot: the watch router serves the production paths, form and JSON bodies
survive the API Gateway event encoding, signatures are checked against PUBLIC_BASE_URL, and state
lands in the emulator's tables created from template.yaml. Then the queue as the stack plays it:
agents say they are available (`PUT /presence`), a caller is offered once they have joined their
conference (its `participant-join`), a missed offer sets the agent away and rings the next, a
warm transfer dials an available colleague, and the end of a call frees everyone. Then the
lockdown of issue 5, endpoint by endpoint: each test asserts the refusal and that nothing
happened (no call placed, no state written, no data or session given out). Tests run in file
order and share the stack; each says the presence it needs first (a presence is a 90 s lease),
and the two that lock out and disable agents come last.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]
AUTH_TOKEN = "e2e-auth-token"
ACCOUNT_SID = "AC" + "1" * 32
# The two TwiML Apps: an agent's token grants the agents', anyone else's the customers'.
CUSTOMER_APP_SID = "AP" + "c" * 32
AGENT_APP_SID = "AP" + "a" * 32
NUMBER = "+15551110000"
CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"
CUSTOMER_SID = "CA" + "ab" * 16
SECOND_CUSTOMER_SID = "CA" + "ef" * 16
THIRD_CUSTOMER_SID = "CA" + "cd" * 16
WAITING_CUSTOMER_SID = "CA" + "12" * 16
MISSED_CUSTOMER_SID = "CA" + "34" * 16
ALONE_CUSTOMER_SID = "CA" + "56" * 16
BUSY_CUSTOMER_SID = "CA" + "78" * 16
# dev.sh gives every agent it seeds (agent1, agent2) this password.
PASSWORD = "e2e-agent-password"
COOKIE_NAME = "warmline_session"
LOGIN_FOR_DASHBOARD = "/login?next=%2Fdashboard"
INVALID_CREDENTIALS = "Unknown agent or wrong password."
# A sign-in refused while the id (or the address) must wait; `{}` is the wait in seconds.
LOCKED_OUT = "Too many failed attempts. Try again in {} seconds."
# What a customer hears whose agent left with nobody else in the call (call_flow::BACK_IN_LINE).
BACK_IN_LINE = "Your agent has left the call. Please stay on the line: you are first in line for the next agent."
# The `since` of an agent who has never said anything.
EPOCH = "1970-01-01T00:00:00Z"
SAY_AVAILABLE_OR_AWAY = {"error": "invalid input", "fields": {"status": 'must be "available" or "away"'}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeTwilio(ThreadingHTTPServer):
    """Answers Calls.json (and Calls/{sid}.json) like Twilio and remembers every request, with the
    call SID it answered."""

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
            n = len(self.server.requests) + 1
            sid = f"CA{n:032x}"
            self.server.requests.append(
                {
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "form": urllib.parse.parse_qs(body),
                    "sid": sid,
                }
            )
        payload = json.dumps({"sid": sid, "status": "queued"}).encode()
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
                f"TWILIO_NUMBER={NUMBER}",
                f"TWILIO_TWIML_APP_SID={CUSTOMER_APP_SID}",
                f"TWILIO_AGENT_TWIML_APP_SID={AGENT_APP_SID}",
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
        WARMLINE_DEV_AGENT_PASSWORD=PASSWORD,
        # The functions dev.sh built, for the whole run: an edit elsewhere in the tree while the
        # tests run must not rebuild and restart them mid-call.
        WARMLINE_NO_RELOAD="1",
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
        yield {
            "base": base,
            "fake": fake,
            "dynamodb": dynamodb,
            "dynamodb_port": dynamodb_port,
            "state": state,
            "table": "warmline-local-CallsTable",
        }
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
            request(base, "GET", "/login")
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dev.sh did not serve within {timeout}s:\n{log_path.read_text()}")


def post(base, path, params, signed=True, signature=None):
    """A webhook as Twilio sends it, which names the account in every one."""
    params = {"AccountSid": ACCOUNT_SID, **params}
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


def request(base, method, path, form=None, *, json_body=None, cookie=None, origin="same", headers=None):
    """One HTTP request as a browser on the site would make it: `Origin` is the site's own unless
    `origin` says otherwise (None leaves it out), the session `cookie` when given, redirects not
    followed. Returns (status, headers, body)."""
    url = urllib.parse.urlsplit(base)
    all_headers = dict(headers or {})
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    if origin is not None:
        all_headers["Origin"] = base if origin == "same" else origin
    if cookie is not None:
        all_headers["Cookie"] = cookie
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def sign_in(base, agent_id, password=PASSWORD, next_path="/dashboard", **kwargs):
    return request(base, "POST", "/login", {"agent_id": agent_id, "password": password, "next": next_path}, **kwargs)


def session_of(base, agent_id):
    """The `Cookie:` value of a fresh session for `agent_id`."""
    status, headers, body = sign_in(base, agent_id)
    assert status == 303, f"{agent_id} could not sign in: {status} {body[:300]}"
    cookie = SimpleCookie(headers["Set-Cookie"])
    return f"{COOKIE_NAME}={cookie[COOKIE_NAME].value}"


def location(headers, base):
    target = urllib.parse.urlsplit(urllib.parse.urljoin(base + "/", headers["Location"]))
    assert (target.scheme, target.netloc) == tuple(urllib.parse.urlsplit(base)[:2]), "same site"
    return target.path + (f"?{target.query}" if target.query else "")


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def token_for(base, cookie=None, body=None):
    """`POST /token`; returns (status, identity, voice grant)."""
    status, _, text = request(base, "POST", "/token", json_body=body or {}, cookie=cookie)
    if status != 200:
        return status, None, None
    answer = json.loads(text)
    grants = claims(answer["token"])["grants"]
    assert grants["identity"] == answer["identity"]
    return status, answer["identity"], grants["voice"]


def error_text(page):
    """The message in the sign-in page's error element."""
    match = re.search(r'<p id="login-error"[^>]*>(.*?)</p>', page, re.S)
    assert match, "the sign-in page has its error element"
    return match.group(1).strip()


def set_cookies(headers):
    return headers.get_all("Set-Cookie") or []


def sessions_set(headers):
    """The session cookies a response sets (clearing one does not count)."""
    return [c for c in set_cookies(headers) if c.startswith(f"{COOKIE_NAME}=") and not c.startswith(f"{COOKIE_NAME}=;")]


def admin(stack, *args):
    """The admin command line against the stack's Agents table in the emulator."""
    functions_env = (stack["state"] / "functions.env").read_text()
    table = re.search(r"^AGENTS?_TABLE=(.+)$", functions_env, re.M)
    assert table, "dev.sh gives the functions the Agents table"
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{stack['dynamodb_port']}",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
    )
    # The binary dev.sh built and seeded the agents with: no build races the running stack.
    binary = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "warmline-admin"
    endpoint = ["--endpoint-url", env["AWS_ENDPOINT_URL_DYNAMODB"]]
    command = [str(binary), *endpoint, "--table", table.group(1).strip(), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def calls_items(stack):
    """The Calls table's call state. `POST /token` writes records these tests do not watch: the
    agent tokens it issues (`TOKEN#`) and the browser-call limits of customers (`LIMIT#`); and
    the wallboard's day counters (`STATS#`) and the marks that count each call once (`COUNTED#`)
    outlive the calls by design."""
    scan = stack["dynamodb"].scan(TableName=stack["table"], ConsistentRead=True)
    kept = ("TOKEN#", "LIMIT#", "STATS#", "COUNTED#")
    return [item for item in scan["Items"] if not item["pk"]["S"].startswith(kept)]


def items(stack):
    return sorted((item["pk"]["S"], item["sk"]["S"]) for item in calls_items(stack))


def table(stack):
    """Every call-state item, attributes and all: what "nothing was written" compares."""
    return sorted(calls_items(stack), key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def record(stack, pk, sk):
    """One item of the Calls table, or None."""
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    return stack["dynamodb"].get_item(TableName=stack["table"], Key=key, ConsistentRead=True).get("Item")


def caller_state(stack, customer):
    item = record(stack, f"CONF#{customer}", "CONF")
    assert item is not None, f"{customer} is not in the Calls table"
    return item["state"]["S"]


AGENTS_ONLY = [("AGENT#agent1", "STATE"), ("AGENT#agent2", "STATE")]
XML = '<?xml version="1.0" encoding="UTF-8"?>'
EMPTY_TWIML = f"{XML}<Response></Response>"


def customer_twiml(base, customer):
    """The customer's side of their own conference (conference-connect-client)."""
    return (
        f'{XML}<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" '
        f'waitUrl="{base}/conference/wait" waitMethod="POST" '
        f'statusCallback="{base}/conference/{customer}/events" statusCallbackEvent="join leave end" '
        f'statusCallbackMethod="POST">{customer}</Conference></Dial></Response>'
    )


def agent_twiml(customer):
    """Every agent's side of the conference, the first or a colleague: their leaving never ends it."""
    return (
        f'{XML}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">'
        f"{customer}</Conference></Dial></Response>"
    )


def agent_call(base, customer, agent, dialed_in_by=None):
    """The form of the Calls.json that rings `agent` for `customer`; the ring's custom parameters
    name the customer's call, and the colleague who dialed `agent` in (a warm transfer)."""
    handed_over = f"&transferFrom={dialed_in_by}&transferKind=warm" if dialed_in_by else ""
    return {
        "To": [f"client:{agent}?conference={customer}{handed_over}"],
        "From": [NUMBER],
        "Url": [f"{base}/conference/{customer}/connect/{agent}"],
        "Timeout": ["20"],
        "StatusCallback": [f"{base}/conference/{customer}/agents/{agent}/status"],
        "StatusCallbackEvent": ["completed"],
        "StatusCallbackMethod": ["POST"],
    }


def rest(calls):
    """(path, form) of each REST request, the way the assertions compare them."""
    return [(call["path"], call["form"]) for call in calls]


def canceled(sids):
    return sorted((f"{CALLS_PATH}/{sid}.json", {"Status": ["canceled"]}) for sid in sids)


def conference_of(customer, run=1):
    """Twilio's id (CF…) of run `run` of the conference named after `customer`."""
    return "CF" + customer[2:-1] + str(run)


def arrives(base, customer, number="+15557654321"):
    """The customer's call reaches the support number; the TwiML Twilio gets."""
    inbound = {"CallSid": customer, "From": number, "To": NUMBER, "Direction": "inbound"}
    status, content_type, body = post(base, "/conference/connect/client", inbound)
    assert (status, content_type) == (200, "text/xml; charset=utf-8"), body
    return body


def event(base, customer, name, participant=None, run=1):
    """A status callback of the customer's conference, as Twilio sends it, acknowledged."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ConferenceSid": conference_of(customer, run),
        "FriendlyName": customer,
        "StatusCallbackEvent": name,
        "SequenceNumber": "1",
    }
    if participant is not None:
        params.update(CallSid=participant, EndConferenceOnExit=str(participant == customer).lower())
    answer = post(base, f"/conference/{customer}/events", params)
    assert answer == (200, "text/xml; charset=utf-8", EMPTY_TWIML), (name, participant, answer)


def call_status(base, customer, agent, call, status):
    """How the call Warmline placed to `agent` for `customer` ended, as Twilio reports it."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call,
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": NUMBER,
        "To": f"client:{agent}",
    }
    answer = post(base, f"/conference/{customer}/agents/{agent}/status", params)
    assert answer == (200, "text/xml; charset=utf-8", EMPTY_TWIML), (status, answer)


def answers(base, customer, agent, call):
    """`agent` picks up `call`, which rang them for `customer`; the TwiML Twilio gets."""
    params = {"CallSid": call, "From": NUMBER, "To": f"client:{agent}", "Direction": "outbound-api"}
    status, content_type, body = post(base, f"/conference/{customer}/connect/{agent}", params)
    assert (status, content_type) == (200, "text/xml; charset=utf-8"), body
    return body


def say(base, cookie, status):
    """The agent's dashboard says they are `status` (`PUT /presence`); the presence it answers."""
    code, headers, body = request(base, "PUT", "/presence", json_body={"status": status}, cookie=cookie)
    assert (code, headers["Content-Type"]) == (200, "application/json"), body
    return json.loads(body)


def presence(base, cookie):
    """`GET /presence` as the agent's dashboard."""
    code, headers, body = request(base, "GET", "/presence", origin=None, cookie=cookie)
    assert (code, headers["Content-Type"]) == (200, "application/json"), body
    return json.loads(body)


def epoch(text):
    return datetime.fromisoformat(text).timestamp()


def within(text, start, end):
    """`text`, an RFC 3339 time in whole seconds, falls between the wall-clock `start` and `end`."""
    return int(start) <= epoch(text) <= end


def test_tokens_and_a_transfer_without_a_call(stack):
    # Runs first (pytest keeps file order): no agent has joined a conference yet.
    base = stack["base"]
    stack["agent1"] = session_of(base, "agent1")
    status, _, body = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert (status, json.loads(body)) == (409, {"error": "agent1 is not in a call right now"})
    assert stack["fake"].calls() == []

    # The session decides whose token it is; what the request names does not.
    stack["agent2"] = agent2 = session_of(base, "agent2")
    for body in [{}, {"agent": "agent1"}, {"identity": "agent1"}]:
        status, identity, voice = token_for(base, agent2, body)
        assert (status, identity) == (200, "agent2")
        assert voice["incoming"] == {"allow": True}
        assert voice["outgoing"]["application_sid"] == AGENT_APP_SID


# ---- Presence and the queue ------------------------------------------------------------------


def test_presence_is_the_signed_in_agents_own_and_refusals_write_nothing(stack):
    base, fake = stack["base"], stack["fake"]
    before_calls = len(fake.calls())
    assert items(stack) == [], "nobody has said anything yet"
    # An agent who has never said anything is offline.
    for agent in ["agent1", "agent2"]:
        offline = {"agent": agent, "status": "offline", "since": EPOCH, "missed_call_at": None}
        assert presence(base, stack[agent]) == offline

    # What an agent may not say: busy and offline are derived, never said.
    for body in [{"status": "busy"}, {"status": "offline"}, {"status": "Available"}, {"status": ""}, {}]:
        status, _, text = request(base, "PUT", "/presence", json_body=body, cookie=stack["agent1"])
        assert (status, json.loads(text)) == (400, SAY_AVAILABLE_OR_AWAY), body
    status, _, text = request(base, "PUT", "/presence", json_body={"status": 1}, cookie=stack["agent1"])
    assert (status, json.loads(text)["fields"]) == (400, {"status": "must be a string"})
    # Without a session (none, or a forged one): whose presence would it be?
    for cookie in [None, f"{COOKIE_NAME}=forged", f"{COOKIE_NAME}=a.b.c"]:
        status, _, text = request(base, "PUT", "/presence", json_body={"status": "available"}, cookie=cookie)
        assert (status, json.loads(text)) == (401, {"error": "sign in first"}), cookie
        status, _, text = request(base, "GET", "/presence", origin=None, cookie=cookie)
        assert (status, json.loads(text)) == (401, {"error": "sign in first"}), cookie
    # From another site, or with no Origin at all, even riding on the agent's cookie.
    for origin in ["https://evil.example", "null", base.replace("127.0.0.1", "localhost"), None]:
        status, _, text = request(
            base, "PUT", "/presence", json_body={"status": "available"}, cookie=stack["agent1"], origin=origin
        )
        assert (status, json.loads(text)) == (403, {"error": "forbidden"}), origin
    assert table(stack) == [], "no refused request wrote anything"
    assert presence(base, stack["agent1"])["status"] == "offline"

    # Available, then away, each read back; nothing in the body names whose presence it is.
    started = time.time()
    status, headers, text = request(
        base, "PUT", "/presence", json_body={"status": "available", "agent": "agent2"}, cookie=stack["agent1"]
    )
    assert (status, headers["Content-Type"]) == (200, "application/json"), text
    available = json.loads(text)
    assert available == {"agent": "agent1", "status": "available", "since": available["since"], "missed_call_at": None}
    assert within(available["since"], started, time.time()), available
    assert presence(base, stack["agent1"]) == available
    assert presence(base, stack["agent2"])["status"] == "offline", "agent2 said nothing"
    assert items(stack) == [("AGENT#agent1", "STATE")]

    away = say(base, stack["agent1"], "away")
    assert away == {"agent": "agent1", "status": "away", "since": away["since"], "missed_call_at": None}
    assert epoch(available["since"]) <= epoch(away["since"]) <= time.time()
    assert presence(base, stack["agent1"]) == away
    # The dashboard renews what the agent said: the same presence, since the same moment.
    time.sleep(1.1)
    assert say(base, stack["agent1"], "away") == away
    assert len(fake.calls()) == before_calls, "presence alone calls nobody"


def test_warm_transfer_through_the_local_stack(stack):
    base, fake = stack["base"], stack["fake"]
    # agent1 takes calls; agent2 is away for now.
    assert say(base, stack["agent2"], "away")["status"] == "away"
    assert say(base, stack["agent1"], "available")["status"] == "available"
    before = len(fake.calls())

    # The customer calls: their own conference on hold music, and a place in line. Nothing
    # slow stands before that answer: no REST call.
    body = arrives(base, CUSTOMER_SID)
    assert body == customer_twiml(base, CUSTOMER_SID)
    assert len(fake.calls()) == before, "the caller's TwiML waits on no call to Twilio"
    assert items(stack) == sorted(AGENTS_ONLY + [(f"CONF#{CUSTOMER_SID}", "CONF")])
    assert caller_state(stack, CUSTOMER_SID) == "waiting"
    # Twilio retries the webhook: same answer, nothing more.
    assert arrives(base, CUSTOMER_SID) == body
    assert len(fake.calls()) == before

    status, _, body = post(base, "/conference/wait", {"CallSid": CUSTOMER_SID})
    # Hold music (how often it loops before Twilio comes back is conference-wait's own business).
    assert status == 200 and re.search(r'<Play loop="\d+">', body), body

    # They joined their conference: the router rings agent1, once.
    event(base, CUSTOMER_SID, "participant-join", CUSTOMER_SID)
    offers = fake.calls()[before:]
    assert rest(offers) == [(f"{CALLS_PATH}.json", agent_call(base, CUSTOMER_SID, "agent1"))]
    agent1_call = offers[0]["sid"]
    assert caller_state(stack, CUSTOMER_SID) == "ringing"
    assert presence(base, stack["agent1"])["status"] == "busy"
    event(base, CUSTOMER_SID, "participant-join", CUSTOMER_SID)
    assert len(fake.calls()) == before + 1, "a repeated report rings nobody else"

    assert answers(base, CUSTOMER_SID, "agent1", agent1_call) == agent_twiml(CUSTOMER_SID)
    assert caller_state(stack, CUSTOMER_SID) == "answered"
    assert presence(base, stack["agent1"])["status"] == "busy"

    # A colleague must be available to be dialed in.
    for body, error in [({}, "no colleague is available"), ({"to": "agent2"}, "agent2 is not available")]:
        status, _, text = request(base, "POST", "/conference/agent1/call", json_body=body, cookie=stack["agent1"])
        assert (status, json.loads(text)) == (409, {"error": error}), body
    assert len(fake.calls()) == before + 1

    # agent2 becomes available: nobody waits in line, so nobody rings them yet.
    assert say(base, stack["agent2"], "available")["status"] == "available"
    assert len(fake.calls()) == before + 1
    status, headers, text = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert (status, headers["Content-Type"]) == (201, "application/json"), text
    transfer = fake.calls()[before + 1 :]
    assert rest(transfer) == [(f"{CALLS_PATH}.json", agent_call(base, CUSTOMER_SID, "agent2", "agent1"))]
    agent2_call = transfer[0]["sid"]
    assert json.loads(text) == {"conference_id": CUSTOMER_SID, "agent": "agent2", "call_sid": agent2_call}
    assert presence(base, stack["agent2"])["status"] == "busy"

    assert answers(base, CUSTOMER_SID, "agent2", agent2_call) == agent_twiml(CUSTOMER_SID)
    assert items(stack) == sorted(AGENTS_ONLY + [(f"CONF#{CUSTOMER_SID}", "CONF")])
    caller = record(stack, f"CONF#{CUSTOMER_SID}", "CONF")
    assert caller["state"]["S"] == "answered"
    assert sorted(caller["joined"]["SS"]) == ["agent1", "agent2"]
    assert "ringing" not in caller
    stack["transfer"] = (agent1_call, agent2_call)


def test_the_end_of_the_call_clears_up(stack):
    # Continues the warm transfer above: agent1 hands over and leaves, then the customer hangs up.
    base, fake = stack["base"], stack["fake"]
    agent1_call, agent2_call = stack["transfer"]
    before = len(fake.calls())
    event(base, CUSTOMER_SID, "participant-leave", agent1_call)
    assert len(fake.calls()) == before, "the customer stays with agent2: not sent back into line"
    assert presence(base, stack["agent1"])["status"] == "available"
    assert presence(base, stack["agent2"])["status"] == "busy"
    assert record(stack, f"CONF#{CUSTOMER_SID}", "CONF")["joined"]["SS"] == ["agent2"]

    event(base, CUSTOMER_SID, "participant-leave", CUSTOMER_SID)
    event(base, CUSTOMER_SID, "conference-end")
    assert items(stack) == AGENTS_ONLY, "the caller's record is gone"
    # Both agent calls were answered: they end with the conference, nothing is canceled or dialed.
    assert rest(fake.calls()[before:]) == []
    for agent in ["agent1", "agent2"]:
        assert presence(base, stack[agent])["status"] == "available", agent
    status, _, body = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert (status, json.loads(body)) == (409, {"error": "agent1 is not in a call right now"})
    # Reported twice: nothing more.
    event(base, CUSTOMER_SID, "conference-end")
    assert len(fake.calls()) == before
    # The wallboard: nobody in line, both agents free, and the call counted as answered.
    status, _, body = request(base, "GET", "/wallboard", cookie=stack["agent1"])
    board = json.loads(body)
    assert (status, board["waiting"], board["agents"]["available"]) == (200, 0, 2), body
    assert board["today"]["answered"] >= 1, body
    marks = [item["pk"]["S"] for item in stack["dynamodb"].scan(TableName=stack["table"])["Items"]]
    assert f"COUNTED#answered#{CUSTOMER_SID}" in marks


def test_a_waiting_caller_is_offered_to_an_agent_within_their_put(stack):
    base, fake = stack["base"], stack["fake"]
    # Every agent is busy: agent2 is on a call, agent1 away.
    assert say(base, stack["agent1"], "away")["status"] == "away"
    assert say(base, stack["agent2"], "available")["status"] == "available"
    before = len(fake.calls())
    arrives(base, BUSY_CUSTOMER_SID)
    event(base, BUSY_CUSTOMER_SID, "participant-join", BUSY_CUSTOMER_SID)
    [busy_call] = fake.calls()[before:]
    assert rest([busy_call]) == [(f"{CALLS_PATH}.json", agent_call(base, BUSY_CUSTOMER_SID, "agent2"))]
    assert answers(base, BUSY_CUSTOMER_SID, "agent2", busy_call["sid"]) == agent_twiml(BUSY_CUSTOMER_SID)

    # Another caller joins their conference: nobody is free, they wait in line.
    arrives(base, WAITING_CUSTOMER_SID)
    event(base, WAITING_CUSTOMER_SID, "participant-join", WAITING_CUSTOMER_SID)
    assert len(fake.calls()) == before + 1, "nobody is free: the caller waits"
    assert caller_state(stack, WAITING_CUSTOMER_SID) == "waiting"

    # agent1 becomes available: by the time the PUT answers, Twilio was asked to ring them.
    answer = say(base, stack["agent1"], "available")
    offers = fake.calls()[before + 1 :]
    assert rest(offers) == [(f"{CALLS_PATH}.json", agent_call(base, WAITING_CUSTOMER_SID, "agent1"))]
    assert (answer["agent"], answer["status"], answer["missed_call_at"]) == ("agent1", "busy", None)
    assert caller_state(stack, WAITING_CUSTOMER_SID) == "ringing"

    # The caller hangs up while agent1 rings: the ring is canceled, and Twilio's `canceled`
    # report is no missed call.
    event(base, WAITING_CUSTOMER_SID, "participant-leave", WAITING_CUSTOMER_SID)
    event(base, WAITING_CUSTOMER_SID, "conference-end")
    assert sorted(rest(fake.calls()[before + 2 :])) == canceled([offers[0]["sid"]])
    call_status(base, WAITING_CUSTOMER_SID, "agent1", offers[0]["sid"], "canceled")
    answer = presence(base, stack["agent1"])
    assert (answer["status"], answer["missed_call_at"]) == ("available", None)
    assert len(fake.calls()) == before + 3

    event(base, BUSY_CUSTOMER_SID, "conference-end")
    assert rest(fake.calls()[before + 3 :]) == [], "an answered agent call ends with its conference"
    assert items(stack) == AGENTS_ONLY
    assert presence(base, stack["agent2"])["status"] == "available"


def test_a_missed_offer_sets_the_agent_away_and_rings_the_next(stack):
    base, fake = stack["base"], stack["fake"]
    assert say(base, stack["agent2"], "away")["status"] == "away"
    assert say(base, stack["agent1"], "available")["status"] == "available"
    before = len(fake.calls())
    arrives(base, MISSED_CUSTOMER_SID)
    event(base, MISSED_CUSTOMER_SID, "participant-join", MISSED_CUSTOMER_SID)
    [offer] = fake.calls()[before:]
    assert rest([offer]) == [(f"{CALLS_PATH}.json", agent_call(base, MISSED_CUSTOMER_SID, "agent1"))]
    # agent2 comes back while agent1 rings: the one caller is taken, nobody else waits.
    assert say(base, stack["agent2"], "available")["status"] == "available"
    assert len(fake.calls()) == before + 1

    # agent1's browser rang out.
    started = time.time()
    call_status(base, MISSED_CUSTOMER_SID, "agent1", offer["sid"], "no-answer")
    finished = time.time()
    missed = presence(base, stack["agent1"])
    assert missed["status"] == "away", missed
    assert missed["missed_call_at"] is not None and within(missed["missed_call_at"], started, finished), missed
    assert missed["since"] == missed["missed_call_at"], "away since the call they missed"
    # ... and the caller is offered to agent2.
    next_offer = fake.calls()[before + 1 :]
    assert rest(next_offer) == [(f"{CALLS_PATH}.json", agent_call(base, MISSED_CUSTOMER_SID, "agent2"))]
    assert presence(base, stack["agent2"])["status"] == "busy"
    assert caller_state(stack, MISSED_CUSTOMER_SID) == "ringing"
    # The report again, or late: nothing more.
    call_status(base, MISSED_CUSTOMER_SID, "agent1", offer["sid"], "no-answer")
    call_status(base, MISSED_CUSTOMER_SID, "agent1", offer["sid"], "completed")
    assert len(fake.calls()) == before + 2
    assert presence(base, stack["agent1"]) == missed

    # The notice goes when agent1 says they are available again.
    assert say(base, stack["agent1"], "available")["missed_call_at"] is None
    event(base, MISSED_CUSTOMER_SID, "participant-leave", MISSED_CUSTOMER_SID)
    event(base, MISSED_CUSTOMER_SID, "conference-end")
    assert sorted(rest(fake.calls()[before + 2 :])) == canceled([next_offer[0]["sid"]])
    assert items(stack) == AGENTS_ONLY
    assert presence(base, stack["agent2"])["status"] == "available"


def test_a_customer_left_alone_goes_back_into_line(stack):
    base, fake = stack["base"], stack["fake"]
    assert say(base, stack["agent2"], "away")["status"] == "away"
    assert say(base, stack["agent1"], "available")["status"] == "available"
    before = len(fake.calls())
    arrives(base, ALONE_CUSTOMER_SID)
    event(base, ALONE_CUSTOMER_SID, "participant-join", ALONE_CUSTOMER_SID)
    [offer] = fake.calls()[before:]
    assert answers(base, ALONE_CUSTOMER_SID, "agent1", offer["sid"]) == agent_twiml(ALONE_CUSTOMER_SID)

    # agent1 leaves with nobody else in the call: the customer hears why, and is taken into a
    # new conference of the same name, back in line.
    event(base, ALONE_CUSTOMER_SID, "participant-leave", offer["sid"])
    back = customer_twiml(base, ALONE_CUSTOMER_SID).replace("<Response>", f"<Response><Say>{BACK_IN_LINE}</Say>")
    assert rest(fake.calls()[before + 1 :]) == [(f"{CALLS_PATH}/{ALONE_CUSTOMER_SID}.json", {"Twiml": [back]})]
    assert caller_state(stack, ALONE_CUSTOMER_SID) == "waiting"
    assert presence(base, stack["agent1"])["status"] == "available", "free, but not offered the caller in transit"
    # The conference they left ends: not the end of their call.
    event(base, ALONE_CUSTOMER_SID, "conference-end")
    assert (f"CONF#{ALONE_CUSTOMER_SID}", "CONF") in items(stack)
    assert len(fake.calls()) == before + 2

    # They join the new conference: first in line, offered again.
    event(base, ALONE_CUSTOMER_SID, "participant-join", ALONE_CUSTOMER_SID, run=2)
    [again] = fake.calls()[before + 2 :]
    assert rest([again]) == [(f"{CALLS_PATH}.json", agent_call(base, ALONE_CUSTOMER_SID, "agent1"))]
    # They hang up: that conference's end is the end of their call.
    event(base, ALONE_CUSTOMER_SID, "participant-leave", ALONE_CUSTOMER_SID, run=2)
    event(base, ALONE_CUSTOMER_SID, "conference-end", run=2)
    assert sorted(rest(fake.calls()[before + 3 :])) == canceled([again["sid"]])
    assert items(stack) == AGENTS_ONLY
    assert presence(base, stack["agent1"])["status"] == "available"


def test_forged_webhooks_change_nothing(stack):
    base, fake = stack["base"], stack["fake"]
    # agent1 rings for a caller: a forged end would cancel it, a forged no-answer set them away.
    assert say(base, stack["agent1"], "away")["status"] == "away"
    before = len(fake.calls())
    assert arrives(base, SECOND_CUSTOMER_SID) == customer_twiml(base, SECOND_CUSTOMER_SID)
    assert say(base, stack["agent1"], "available")["status"] == "busy"
    [offer] = fake.calls()[before:]
    assert rest([offer]) == [(f"{CALLS_PATH}.json", agent_call(base, SECOND_CUSTOMER_SID, "agent1"))]
    before_calls, before_table = len(fake.calls()), table(stack)

    params = {"CallSid": THIRD_CUSTOMER_SID}
    wrong_url = RequestValidator(AUTH_TOKEN).compute_signature("https://example.com/conference/connect/client", params)
    for kwargs in [{"signed": False}, {"signature": "Zm9yZ2Vk"}, {"signature": wrong_url}]:
        status, _, body = post(base, "/conference/connect/client", params, **kwargs)
        assert (status, body) == (403, "forbidden")
    # Reports nobody signed: an end, a leave, a missed call, the customer's hang-up.
    events = f"/conference/{SECOND_CUSTOMER_SID}/events"
    end = {"ConferenceSid": conference_of(SECOND_CUSTOMER_SID), "StatusCallbackEvent": "conference-end"}
    missed = {"CallSid": offer["sid"], "CallStatus": "no-answer"}
    signed_elsewhere = RequestValidator(AUTH_TOKEN).compute_signature(base + events, missed)
    forged = [
        (events, end, {"signed": False}),
        (events, end, {"signature": "Zm9yZ2Vk"}),
        (events, {**end, "StatusCallbackEvent": "participant-join", "CallSid": SECOND_CUSTOMER_SID}, {"signed": False}),
        (f"/conference/{SECOND_CUSTOMER_SID}/agents/agent1/status", missed, {"signed": False}),
        (f"/conference/{SECOND_CUSTOMER_SID}/agents/agent1/status", missed, {"signature": signed_elsewhere}),
    ]
    for path, params, kwargs in forged:
        assert post(base, path, params, **kwargs)[0] == 403, (path, params)
    assert len(fake.calls()) == before_calls
    assert table(stack) == before_table
    assert presence(base, stack["agent1"])["status"] == "busy"

    event(base, SECOND_CUSTOMER_SID, "conference-end")
    assert sorted(rest(fake.calls()[before_calls:])) == canceled([offer["sid"]])
    assert items(stack) == AGENTS_ONLY


def test_each_twiml_app_serves_its_own_callers_only(stack):
    """The watch router serves both Voice URLs, and neither takes a caller for what it is not."""
    base, fake = stack["base"], stack["fake"]
    before_calls, before_table = len(fake.calls()), table(stack)
    refusal = f"{XML}<Response><Say>Sorry, this call cannot be placed. Goodbye.</Say><Hangup/></Response>"

    def browser(path, app, sid, caller, **extra):
        params = {"ApplicationSid": app, "CallSid": sid, "From": caller, "Caller": caller, **extra}
        return post(base, path, params)

    # Whatever From says, the customers' app serves no agent, the agents' app no customer.
    status, _, body = browser("/call/connect", CUSTOMER_APP_SID, THIRD_CUSTOMER_SID, "client:agent1", phoneNumber=NUMBER)
    assert (status, body) == (200, refusal)
    status, _, body = browser("/call/agent", AGENT_APP_SID, THIRD_CUSTOMER_SID, "client:customer_0a1b2c3d4e5f6a7b")
    assert (status, body) == (200, refusal)
    # The other app's calls, and a second From, are not ours to answer.
    for path, app, caller in [
        ("/call/agent", CUSTOMER_APP_SID, "client:agent1"),
        ("/call/connect", AGENT_APP_SID, "client:customer_0a1b2c3d4e5f6a7b"),
    ]:
        assert browser(path, app, THIRD_CUSTOMER_SID, caller)[:3:2] == (403, "forbidden"), (path, app)
    # A page's `From` after Twilio's own, as Twilio signs it (the helper library reads repeated
    # names through getlist, as from Django's QueryDict).
    url = base + "/call/connect"
    smuggled = [
        ("AccountSid", ACCOUNT_SID),
        ("ApplicationSid", CUSTOMER_APP_SID),
        ("CallSid", THIRD_CUSTOMER_SID),
        ("From", "client:customer_0a1b2c3d4e5f6a7b"),
        ("From", "client:agent1"),
    ]

    class Params(dict):
        def getlist(self, name):
            return self[name]

    params = Params()
    for name, value in smuggled:
        params.setdefault(name, []).append(value)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(smuggled).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert len(fake.calls()) == before_calls
    assert table(stack) == before_table


# ---- Lockdown: who may use what (issue 5) ----------------------------------------------------


def test_the_dashboard_and_the_ticket_list_are_for_signed_in_agents(stack):
    base = stack["base"]
    ticket = {"name": "Lin", "phone_number": "+15550001111", "description": "x"}
    status, _, body = request(base, "POST", "/tickets", ticket)
    assert status == 201, body
    for cookie in [None, f"{COOKIE_NAME}=not-a-session", f"{COOKIE_NAME}=a.b.c"]:
        status, headers, body = request(base, "GET", "/dashboard", origin=None, cookie=cookie)
        assert (status, location(headers, base)) == (303, LOGIN_FOR_DASHBOARD)
        assert "agent1" not in body and "Tickets" not in body
        status, headers, body = request(base, "GET", "/tickets?limit=100", origin=None, cookie=cookie)
        assert (status, json.loads(body)) == (401, {"error": "sign in first"})
        assert "+15550001111" not in body
    # The same requests with a session: the refusals above were about the session.
    status, _, body = request(base, "GET", "/tickets?limit=100", origin=None, cookie=stack["agent1"])
    assert status == 200 and "+15550001111" in body
    status, _, body = request(base, "GET", "/dashboard", origin=None, cookie=stack["agent1"])
    assert status == 200 and '<span id="agent-id">agent1</span>' in body


def test_without_a_session_a_token_is_a_customers_and_can_only_call_out(stack):
    base = stack["base"]
    for body in [{}, {"agent": "agent1"}, {"identity": "agent1"}, {"agent": "agent1", "identity": "agent1"}]:
        status, identity, voice = token_for(base, None, body)
        assert status == 200
        assert re.fullmatch(r"customer_[0-9a-f]{16}", identity), identity
        assert "incoming" not in voice or voice["incoming"] != {"allow": True}
        assert voice["outgoing"]["application_sid"] == CUSTOMER_APP_SID
    # A form body too, and a cookie that opens nothing.
    status, _, text = request(base, "POST", "/token", {"agent": "agent1"}, cookie=f"{COOKIE_NAME}=forged")
    assert status == 200 and json.loads(text)["identity"].startswith("customer_")


def test_only_the_agent_in_the_path_may_dial_a_colleague_in(stack):
    base, fake = stack["base"], stack["fake"]
    assert say(base, stack["agent2"], "away")["status"] == "away"
    assert say(base, stack["agent1"], "available")["status"] == "available"
    before = len(fake.calls())
    assert arrives(base, THIRD_CUSTOMER_SID, "+15557654399") == customer_twiml(base, THIRD_CUSTOMER_SID)
    event(base, THIRD_CUSTOMER_SID, "participant-join", THIRD_CUSTOMER_SID)
    [offer] = fake.calls()[before:]
    assert answers(base, THIRD_CUSTOMER_SID, "agent1", offer["sid"]) == agent_twiml(THIRD_CUSTOMER_SID)
    # agent2 is available: a transfer would ring them.
    assert say(base, stack["agent2"], "available")["status"] == "available"
    before_calls, before_table = len(fake.calls()), table(stack)

    agent2 = session_of(base, "agent2")
    refusals = [
        (None, {}, 401),
        (f"{COOKIE_NAME}=forged", {}, 401),
        (agent2, {}, 403),
        (agent2, {"to": "agent2"}, 403),
    ]
    for cookie, body, expected in refusals:
        status, _, text = request(base, "POST", "/conference/agent1/call", json_body=body, cookie=cookie)
        assert status == expected, (cookie, body, status, text)
        assert THIRD_CUSTOMER_SID not in text
    assert len(fake.calls()) == before_calls, "nobody was dialed"
    assert table(stack) == before_table, "nothing was written"

    # agent1 may: what was refused above is who asked.
    status, _, text = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert status == 201, text
    [transfer] = fake.calls()[before_calls:]
    assert rest([transfer]) == [(f"{CALLS_PATH}.json", agent_call(base, THIRD_CUSTOMER_SID, "agent2", "agent1"))]

    event(base, THIRD_CUSTOMER_SID, "conference-end")
    assert items(stack) == AGENTS_ONLY
    assert sorted(rest(fake.calls()[before_calls + 1 :])) == canceled([transfer["sid"]])


def test_cross_origin_posts_are_refused_and_change_nothing(stack):
    base, fake = stack["base"], stack["fake"]
    before_table = table(stack)
    assert presence(base, stack["agent1"])["status"] == "available"
    for origin in ["https://evil.example", "null", base.replace("127.0.0.1", "localhost")]:
        # Signing in from another site: no session, even with the right password.
        status, headers, body = sign_in(base, "agent1", origin=origin)
        assert status == 403, (origin, status)
        assert not sessions_set(headers)

        # A token from another site, even riding on the agent's cookie: none at all.
        status, _, text = request(base, "POST", "/token", json_body={}, cookie=stack["agent1"], origin=origin)
        assert status == 403, (origin, status)
        assert "token" not in json.loads(text)

        # Signing the agent out from another site: the session still works.
        status, _, _ = request(base, "POST", "/logout", {}, cookie=stack["agent1"], origin=origin)
        assert status == 403
        before = len(fake.calls())
        status, _, _ = request(
            base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"], origin=origin
        )
        assert status == 403
        assert len(fake.calls()) == before, "nobody was dialed"

        # Setting the agent's presence from another site: refused, whatever it says.
        for say_what in ["away", "available"]:
            status, _, _ = request(
                base, "PUT", "/presence", json_body={"status": say_what}, cookie=stack["agent1"], origin=origin
            )
            assert status == 403, (origin, say_what, status)
    assert token_for(base, stack["agent1"])[1] == "agent1", "the session survived every forged request"
    assert table(stack) == before_table, "no presence changed"
    assert presence(base, stack["agent1"])["status"] == "available"


def test_the_session_cookie_is_httponly_strict_and_not_secure_on_http_loopback(stack):
    base = stack["base"]
    status, headers, _ = sign_in(base, "agent2", next_path="/dashboard")
    assert (status, location(headers, base)) == (303, "/dashboard")
    [header] = [c for c in set_cookies(headers) if c.startswith(f"{COOKIE_NAME}=")]
    name_value, *attributes = [part.strip() for part in header.split(";")]
    flags = {a.split("=", 1)[0].lower(): (a.split("=", 1)[1] if "=" in a else True) for a in attributes}
    assert len(name_value) > len(COOKIE_NAME) + 20, "a signed token, not an id"
    assert flags.get("httponly") is True
    assert flags.get("samesite") == "Strict"
    assert flags.get("path") == "/"
    assert "secure" not in flags, "plain HTTP on loopback: a browser would drop a Secure cookie"
    assert "domain" not in flags
    assert 0 < int(flags["max-age"]) <= 12 * 3600

    # Where it sends the agent is always on this site.
    for next_path in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]:
        status, headers, _ = sign_in(base, "agent2", next_path=next_path)
        assert (status, location(headers, base)) == (303, "/dashboard"), next_path
    status, _, page = request(base, "GET", "/login?next=" + urllib.parse.quote("//evil.example"), origin=None)
    assert status == 200 and 'name="next" value="/dashboard"' in page


def test_signing_out_ends_every_session_of_the_agent(stack):
    base = stack["base"]
    first, second = session_of(base, "agent2"), session_of(base, "agent2")
    assert token_for(base, second)[1] == "agent2"

    status, headers, _ = request(base, "POST", "/logout", {}, cookie=first)
    assert (status, location(headers, base)) == (303, "/login")
    [cleared] = [c for c in set_cookies(headers) if c.startswith(f"{COOKIE_NAME}=")]
    assert cleared.startswith(f"{COOKIE_NAME}=;") and "Max-Age=0" in cleared

    for cookie in [first, second]:
        status, identity, _ = token_for(base, cookie)
        assert status == 200 and identity.startswith("customer_")
        status, _, body = request(base, "GET", "/tickets", origin=None, cookie=cookie)
        assert (status, json.loads(body)) == (401, {"error": "sign in first"})
        status, headers, _ = request(base, "GET", "/dashboard", origin=None, cookie=cookie)
        assert (status, location(headers, base)) == (303, LOGIN_FOR_DASHBOARD)
    # The other agent's session is untouched.
    assert token_for(base, stack["agent1"])[1] == "agent1"


def test_a_wrong_password_and_an_unknown_agent_get_the_same_answer(stack):
    base = stack["base"]
    answers = [sign_in(base, agent_id, password) for agent_id, password in [("agent1", "wrong"), ("nobody", "wrong")]]
    for status, headers, body in answers:
        assert status == 401
        assert error_text(body) == INVALID_CREDENTIALS
        assert not sessions_set(headers)
    assert answers[0][2] == answers[1][2], "the pages are identical"


def test_failures_slow_an_id_down_whether_or_not_it_exists(stack):
    base = stack["base"]
    # agent2 signed in before keeps working: the wait is about signing in.
    kept = session_of(base, "agent2")
    refusals = {}
    for agent_id in ["agent2", "ghost"]:
        # Three failures are free; then each makes the id wait twice as long (1 s, 2 s...), and
        # attempts during the wait are refused unchecked. Wrong passwords until a wait of 2 s
        # shows, which takes a second whatever argon2 costs on this machine.
        assert [sign_in(base, agent_id, "wrong")[0] for _ in range(3)] == [401] * 3, agent_id
        deadline = time.monotonic() + 15
        while True:
            status, headers, body = sign_in(base, agent_id, "wrong")
            assert status in (401, 429), (agent_id, status)
            if status == 429 and headers["Retry-After"] != "1":
                break
            assert time.monotonic() < deadline, f"{agent_id} was never made to wait 2 s"
        assert (headers["Retry-After"], error_text(body)) == ("2", LOCKED_OUT.format(2)), agent_id
        # The right password (or, for the id nobody has, any password) is refused all the same.
        status, headers, body = sign_in(base, agent_id, PASSWORD)
        assert (status, error_text(body)) == (429, LOCKED_OUT.format(headers["Retry-After"])), agent_id
        assert not sessions_set(headers)
        refusals[agent_id] = status, error_text(body)
    assert refusals["ghost"] == refusals["agent2"], "nothing tells an existing id from another"
    assert token_for(base, kept)[1] == "agent2"
    # Once the wait has passed, the agent signs in, and that starts the id over.
    time.sleep(2)
    assert sign_in(base, "agent2")[0] == 303


def test_a_disabled_agent_is_signed_out_at_the_next_request(stack):
    base = stack["base"]
    cookie = session_of(base, "agent1")
    assert token_for(base, cookie)[1] == "agent1"
    admin(stack, "disable", "agent1")
    status, identity, _ = token_for(base, cookie)
    assert status == 200 and identity.startswith("customer_")
    status, _, body = request(base, "GET", "/tickets", origin=None, cookie=cookie)
    assert (status, json.loads(body)) == (401, {"error": "sign in first"})
    status, headers, _ = request(base, "GET", "/dashboard", origin=None, cookie=cookie)
    assert (status, location(headers, base)) == (303, LOGIN_FOR_DASHBOARD)
    for method, body in [("GET", None), ("PUT", {"status": "available"})]:
        status, _, text = request(base, method, "/presence", json_body=body, cookie=cookie)
        assert (status, json.loads(text)) == (401, {"error": "sign in first"}), method
    # And cannot sign in again: the same answer as a wrong password.
    status, headers, body = sign_in(base, "agent1")
    assert (status, error_text(body)) == (401, INVALID_CREDENTIALS)
    assert not sessions_set(headers)
