"""The `make dev` stack end to end: scripts/dev.sh (DynamoDB emulator + cargo lambda watch) with a
fake Twilio REST API, driven by webhooks signed by the official `twilio` package.

Checks what unit tests cannot: the watch router serves the production paths, form bodies survive
the API Gateway event encoding, signatures are checked against PUBLIC_BASE_URL, and state lands
in the emulator's tables created from template.yaml. Then the lockdown of issue 5, endpoint by
endpoint: each test asserts the refusal and that nothing happened (no call placed, no state
written, no data or session given out). Tests run in file order and share the stack; the two that
lock out and disable agents come last.
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
from http.cookies import SimpleCookie
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
THIRD_CUSTOMER_SID = "CA" + "cd" * 16
# dev.sh gives every agent it seeds (the roster: agent1, agent2) this password.
PASSWORD = "e2e-agent-password"
COOKIE_NAME = "warmline_session"
LOGIN_FOR_DASHBOARD = "/login?next=%2Fdashboard"
INVALID_CREDENTIALS = "Unknown agent or wrong password."
LOCKED_OUT = "Too many failed attempts. Try again in 15 minutes."


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
        WARMLINE_DEV_AGENT_PASSWORD=PASSWORD,
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


def items(stack):
    scan = stack["dynamodb"].scan(TableName=stack["table"], ConsistentRead=True)
    return sorted((item["pk"]["S"], item["sk"]["S"]) for item in scan["Items"])


XML = '<?xml version="1.0" encoding="UTF-8"?>'


def test_tokens_and_a_transfer_without_a_call(stack):
    # Runs first (pytest keeps file order): no agent has joined a conference yet.
    base = stack["base"]
    stack["agent1"] = session_of(base, "agent1")
    status, _, body = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert (status, json.loads(body)) == (409, {"error": "agent1 is not in a call right now"})
    assert stack["fake"].calls() == []

    # The session decides whose token it is; what the request names does not.
    agent2 = session_of(base, "agent2")
    for body in [{}, {"agent": "agent1"}, {"identity": "agent1"}]:
        status, identity, voice = token_for(base, agent2, body)
        assert (status, identity) == (200, "agent2")
        assert voice["incoming"] == {"allow": True}


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
    # Hold music (how often it loops before Twilio comes back is conference-wait's own business).
    assert status == 200 and re.search(r'<Play loop="\d+">', body), body

    status, _, body = post(base, f"/conference/{CUSTOMER_SID}/connect/agent1", {"CallSid": "CA" + "01" * 16})
    assert body == (
        f'{XML}<Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">'
        f"{CUSTOMER_SID}</Conference></Dial></Response>"
    )
    assert ("AGENT#agent1", "CONF") in items(stack)

    status, headers, body = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert (status, headers["Content-Type"]) == (201, "application/json")
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
    status, _, body = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
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
        assert voice["outgoing"]["application_sid"].startswith("AP")
    # A form body too, and a cookie that opens nothing.
    status, _, text = request(base, "POST", "/token", {"agent": "agent1"}, cookie=f"{COOKIE_NAME}=forged")
    assert status == 200 and json.loads(text)["identity"].startswith("customer_")


def test_only_the_agent_in_the_path_may_dial_a_colleague_in(stack):
    base, fake = stack["base"], stack["fake"]
    inbound = {"CallSid": THIRD_CUSTOMER_SID, "From": "+15557654399", "To": "+15551110000", "Direction": "inbound"}
    assert post(base, "/conference/connect/client", inbound)[0] == 200
    assert post(base, f"/conference/{THIRD_CUSTOMER_SID}/connect/agent1", {"CallSid": "CA" + "03" * 16})[0] == 200
    before_calls, before_items = len(fake.calls()), items(stack)
    assert ("AGENT#agent1", "CONF") in before_items

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
    assert items(stack) == before_items, "nothing was written"

    # agent1 may: what was refused above is who asked.
    status, _, text = request(base, "POST", "/conference/agent1/call", json_body={}, cookie=stack["agent1"])
    assert status == 201, text
    assert len(fake.calls()) == before_calls + 1
    assert fake.calls()[-1]["form"]["To"] == ["client:agent2"]

    event = {
        "ConferenceSid": "CF" + "3" * 32,
        "FriendlyName": THIRD_CUSTOMER_SID,
        "StatusCallbackEvent": "conference-end",
    }
    assert post(base, f"/conference/{THIRD_CUSTOMER_SID}/events", event)[0] == 200
    assert items(stack) == []


def test_cross_origin_posts_are_refused_and_change_nothing(stack):
    base, fake = stack["base"], stack["fake"]
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
    assert token_for(base, stack["agent1"])[1] == "agent1", "the session survived every forged request"


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


def test_five_failures_lock_an_id_out_whether_or_not_it_exists(stack):
    base = stack["base"]
    # agent2 signed in before the lockout keeps working: the lockout is about signing in.
    kept = session_of(base, "agent2")
    transcripts = {}
    for agent_id in ["agent2", "ghost"]:
        transcript = []
        for _ in range(5):
            status, headers, body = sign_in(base, agent_id, "wrong")
            transcript.append((status, error_text(body), headers.get("Retry-After")))
        # The right password (or, for the id nobody has, any password) no longer helps.
        status, headers, body = sign_in(base, agent_id, PASSWORD)
        transcript.append((status, error_text(body), headers.get("Retry-After") is not None))
        assert not sessions_set(headers)
        transcripts[agent_id] = transcript
    assert transcripts["agent2"][:5] == [(401, INVALID_CREDENTIALS, None)] * 5
    assert transcripts["agent2"][5] == (429, LOCKED_OUT, True)
    assert transcripts["ghost"] == transcripts["agent2"], "nothing tells an existing id from another"
    assert token_for(base, kept)[1] == "agent2"


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
    # And cannot sign in again: the same answer as a wrong password.
    status, headers, body = sign_in(base, "agent1")
    assert (status, error_text(body)) == (401, INVALID_CREDENTIALS)
    assert not sessions_set(headers)
