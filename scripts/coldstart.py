"""Cold starts, measured: a Lambda Runtime API stand-in on loopback spawns each function's release
binary and times

- init: process spawn until its first `GET /runtime/invocation/next` (what Lambda bills as Init),
  including the connection warm-up, against upstreams that answer at once (a fake DynamoDB and a
  fake Twilio), so the figure is Warmline's own cost, not the emulator's latency;
- first invocation: handing over the first event until its response arrives, the request doing
  real work against the DynamoDB emulator (moto, itself slow: most of this figure is moto's);
- peak RSS: the process's VmHWM after that response, the larger of the two runs.

    python scripts/coldstart.py [--runs 10] [--binaries target/release] [--ca-layout both]

Each function runs once per CA layout, as a TLS client that read the system's CA store would find
it: `debian`, a bundle file and the directory /etc/ssl/certs of 292 links (this machine's own);
`lambda`, provided.al2023's single bundle at /etc/pki/tls/certs/ca-bundle.crt (modelled with a
copy of that bundle, named by SSL_CERT_FILE, and SSL_CERT_DIR naming an empty directory).

`--instructions` counts, instead of timing, the instructions of one init per function under
callgrind (spawn until the process asks for its first event, which is never handed over): a
figure that does not move with the machine's load, for scripts/budgets.py.

The binaries are the host's (x86_64 here), not the arm64 ones Lambda runs; the figures compare
functions and track regressions. Budgets: init median ≤ 10 ms, peak RSS ≤ 12 MB.
"""

import argparse
import base64
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from create_tables import create_tables, emulator_client, load_template  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
BASE = f"https://{DOMAIN}"
AUTH_TOKEN = "coldstart-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
# The customers' TwiML App: browser calls from the customer page come through it.
CUSTOMER_APP_SID = "AP" + "0" * 32
SESSION_SECRET = "coldstart-session-secret-of-32-chars-or-more"
# The signed-in agent whose session conference-call-agent's first request carries.
AGENT = "agent1"
INIT_BUDGET_MS = 10.0
RSS_BUDGET_MB = 12.0
API = "/2018-06-01/runtime"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event(method, path, body=b"", headers=None):
    raw_path, _, raw_query = path.partition("?")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {"host": DOMAIN, **(headers or {})},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "abc123",
            "domainName": DOMAIN,
            "domainPrefix": "abc123",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "coldstart"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:11:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def webhook(path, params):
    # Twilio names the account in every webhook, and Warmline refuses another account's.
    params = {"AccountSid": ACCOUNT_SID, **params}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return event("POST", path, urllib.parse.urlencode(params).encode(), headers)


def json_post(path, body, headers=None):
    # From a page on the site: browsers send Origin with every POST, and Warmline checks it.
    headers = {"content-type": "application/json", "origin": BASE, **(headers or {})}
    return event("POST", path, json.dumps(body).encode(), headers)


def seed_agent(endpoint, table):
    """The agent record a session is checked against (its hash is never read on that path)."""
    emulator_client(endpoint).put_item(
        TableName=table,
        Item={
            "pk": {"S": f"AGENT#{AGENT}"},
            "id": {"S": AGENT},
            "display_name": {"S": "Cold Start"},
            "password_hash": {"S": "$argon2id$not-used-by-session-checks"},
            "created_at": {"N": str(int(time.time()))},
            "session_epoch": {"N": "0"},
        },
    )


def session_cookie():
    """A session as POST /login issues it, for the HTTPS origin (hence `__Host-`)."""
    now = int(time.time())
    claims = {"sub": AGENT, "epoch": 0, "iat": now, "exp": now + 3600, "aud": "warmline-session"}
    return f"__Host-warmline_session={jwt.encode(claims, SESSION_SECRET, algorithm='HS256')}"


def call_sid():
    return "CA" + uuid.uuid4().hex


# One representative request per function, doing its real work.
FIRST_REQUESTS = {
    "conference-connect-client": lambda: webhook("/conference/connect/client", {"CallSid": call_sid(), "From": "+15557654321"}),
    "conference-wait": lambda: webhook("/conference/wait", {"CallSid": call_sid()}),
    "conference-connect-agent": lambda: webhook(f"/conference/{call_sid()}/connect/agent1", {"CallSid": call_sid()}),
    # The signed-in agent, not in a conference: the session check and the conference lookup, 409.
    "conference-call-agent": lambda: json_post(f"/conference/{AGENT}/call", {}, {"cookie": session_cookie()}),
    "conference-events": lambda: webhook(
        f"/conference/{call_sid()}/events", {"StatusCallbackEvent": "participant-leave", "CallSid": call_sid()}
    ),
    # A customer's token: an agent's would need a session, and checking it is one more read.
    "token": lambda: json_post("/token", {}),
    "tickets": lambda: json_post("/tickets", {"name": "Ada", "phone_number": "+15551234567", "description": "Broken mallet"}),
    "call-connect": lambda: webhook(
        "/call/connect", {"ApplicationSid": CUSTOMER_APP_SID, "CallSid": call_sid(), "From": "client:customer_0a1b2c3d"}
    ),
    "pages": lambda: event("GET", "/"),
    "session": lambda: event("GET", "/login"),
    # The signed-in agent's presence: the session check and the agent's record.
    "presence": lambda: event("GET", "/presence", headers={"cookie": session_cookie()}),
    # A caller who was offered voicemail pressed 2 (back in line): one read of their call.
    "voicemail": lambda: webhook(f"/voicemail/{call_sid()}/choice", {"CallSid": call_sid(), "Digits": "2"}),
}

# Where a TLS client reading the system's CA store would find it (rustls-native-certs through
# openssl-probe): with no variable set, Debian's bundle and /etc/ssl/certs; else what they name.
DEBIAN_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_LAYOUTS = ("debian", "lambda")


def ca_layout_env(layout, scratch):
    """The variables that make a process see `layout`'s CA store."""
    if layout == "debian":
        return {}
    certs = scratch / "etc" / "pki" / "tls" / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    bundle = certs / "ca-bundle.crt"
    if not bundle.exists():
        shutil.copyfile(DEBIAN_BUNDLE, bundle)
    empty = scratch / "empty"
    empty.mkdir(exist_ok=True)
    return {"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": str(empty)}


class RuntimeApi(ThreadingHTTPServer):
    """Hands one event to one process and records when it asked and when it answered. A new one
    per run, so a killed process's late request cannot take the next run's event."""

    daemon_threads = True

    def __init__(self, payload, hold_first=False):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.payload = payload
        self.first_next_at = None
        self.answers = queue.Queue()
        self.handed_over = False
        # For counting init alone: the first request for an event is held, never answered.
        self.hold_first = hold_first
        self.asked = threading.Event()

    def handle_error(self, request, client_address):
        # The killed function drops its held connection; that is the end of a run, not an error.
        pass


class RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        if self.path != f"{API}/invocation/next":
            return send_json(self, 404, b"{}")
        if server.handed_over:
            # The function asks for its second event: hold it until the process is killed.
            time.sleep(30)
            return send_json(self, 500, b"{}")
        server.first_next_at = time.perf_counter()
        server.handed_over = True
        server.asked.set()
        if server.hold_first:
            time.sleep(120)
            return send_json(self, 500, b"{}")
        body = json.dumps(server.payload).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:coldstart")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        answered_at = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.answers.put((answered_at, self.path, body))
        send_json(self, 202, b'{"status":"OK"}')

    def log_message(self, *args):
        pass


class InstantDynamoDb(ThreadingHTTPServer):
    """Answers every DynamoDB call at once with "no such table": a stand-in with no latency."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), InstantDynamoDbHandler)


class InstantDynamoDbHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}'
        send_json(self, 400, body, "application/x-amz-json-1.0")

    def log_message(self, *args):
        pass


class FakeTwilio(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeTwilioHandler)


class FakeTwilioHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_HEAD(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"sid": call_sid(), "status": "queued"}).encode()
        send_json(self, 201, body)

    def log_message(self, *args):
        pass


def send_json(handler, status, body, content_type="application/json"):
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"127.0.0.1:{server.server_address[1]}"


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_emulator():
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    endpoint = f"http://127.0.0.1:{port}"
    names = create_tables(endpoint, load_template(ROOT / "template.yaml"), prefix="coldstart-")
    seed_agent(endpoint, names["AgentsTable"])
    return process, endpoint, names


def measure(binary, payload, env, expect_success=True):
    runtime = RuntimeApi(payload)
    env = {**env, "AWS_LAMBDA_RUNTIME_API": serve(runtime)}
    spawned_at = time.perf_counter()
    process = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        answered_at, path, body = runtime.answers.get(timeout=20)
        rss = peak_rss_mb(process.pid)
    except queue.Empty:
        answered_at = None
    finally:
        process.kill()
        _, stderr = process.communicate()
        runtime.shutdown()
        runtime.server_close()
    if answered_at is None:
        raise RuntimeError(f"{binary.name} did not answer within 20 s: {stderr[-800:]!r}")
    if not path.endswith("/response") or runtime.first_next_at is None:
        raise RuntimeError(f"{binary.name} failed: {path} {body[:300]!r} {stderr[-600:]!r}")
    status = json.loads(body).get("statusCode")
    if expect_success and status not in (200, 201, 409):
        raise RuntimeError(f"{binary.name} answered {status}: {body[:300]!r}")
    return (runtime.first_next_at - spawned_at) * 1000, (answered_at - runtime.first_next_at) * 1000, rss


def init_instructions(binary, env):
    """Instructions from spawn until the first `GET /runtime/invocation/next`, under callgrind.
    The request is held, so the process sits blocked (executing nothing) until SIGTERM, on which
    callgrind writes its totals."""
    runtime = RuntimeApi(None, hold_first=True)
    env = {**env, "AWS_LAMBDA_RUNTIME_API": serve(runtime)}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            asked = runtime.asked.wait(timeout=120)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate()
            runtime.shutdown()
            runtime.server_close()
        if not asked:
            raise RuntimeError(f"{binary.name} never asked for an event: {stderr[-800:]!r}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"{binary.name}: callgrind wrote no totals: {stderr[-800:]!r}")


def function_env(dynamodb_endpoint, twilio_address, tables):
    """What Lambda and the template give every function, aimed at `dynamodb_endpoint` and a
    fake Twilio; the CA layout is added per run."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/coldstart",
        "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_KEY": "SK" + "0" * 32,
        "TWILIO_API_SECRET": "coldstart-secret",
        "TWILIO_NUMBER": "+15550000000",
        "TWILIO_TWIML_APP_SID": CUSTOMER_APP_SID,
        "TWILIO_AGENT_TWIML_APP_SID": "AP" + "0" * 31 + "1",
        "TWILIO_API_BASE_URL": f"http://{twilio_address}",
        "CALLS_TABLE": tables["CallsTable"],
        "TICKETS_TABLE": tables["TicketsTable"],
        "AGENTS_TABLE": tables["AgentsTable"],
        "LEDGER_TABLE": tables["LedgerTable"],
        "SESSION_SECRET": SESSION_SECRET,
    }


def count_init_instructions(binaries, layouts):
    """{layout: {function: instructions}} for `binaries` ({function: path}), one init each, against
    upstreams that answer at once."""
    twilio_address = serve(FakeTwilio())
    instant_dynamodb = f"http://{serve(InstantDynamoDb())}"
    tables = {"CallsTable": "calls", "TicketsTable": "tickets", "AgentsTable": "agents", "LedgerTable": "ledger"}
    env = function_env(instant_dynamodb, twilio_address, tables)
    counts = {}
    with tempfile.TemporaryDirectory() as scratch:
        for layout in layouts:
            layout_env = {**env, **ca_layout_env(layout, Path(scratch))}
            counts[layout] = {name: init_instructions(binary, layout_env) for name, binary in binaries.items()}
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--binaries", type=Path, default=ROOT / "target" / "release")
    parser.add_argument("--ca-layout", choices=(*CA_LAYOUTS, "both"), default="both")
    parser.add_argument("--only", help="one function")
    parser.add_argument("--instructions", action="store_true", help="count init instructions under callgrind")
    args = parser.parse_args()
    layouts = CA_LAYOUTS if args.ca_layout == "both" else (args.ca_layout,)
    names = [args.only] if args.only else list(FIRST_REQUESTS)
    for name in names:
        if name not in FIRST_REQUESTS:
            sys.exit(f"--only takes one of: {', '.join(FIRST_REQUESTS)}")
        if not (args.binaries / name).is_file():
            sys.exit(f"{args.binaries / name} is missing: cargo build --release -p {name}")

    if args.instructions:
        counts = count_init_instructions({name: args.binaries / name for name in names}, layouts)
        print(f"{'function':<28} " + " ".join(f"{layout + ' layout':>16}" for layout in layouts))
        for name in names:
            print(f"{name:<28} " + " ".join(f"{counts[layout][name]:>16,}" for layout in layouts))
        return

    emulator, endpoint, tables = start_emulator()
    scratch = tempfile.TemporaryDirectory()
    try:
        twilio_address = serve(FakeTwilio())
        instant_dynamodb = f"http://{serve(InstantDynamoDb())}"
        env = function_env(endpoint, twilio_address, tables)
        failures = []
        for layout in layouts:
            layout_env = {**env, **ca_layout_env(layout, Path(scratch.name))}
            print(f"\n{layout} CA layout: {args.runs} + {args.runs} cold starts per function, binaries from {args.binaries}")
            print(f"{'function':<28} {'init p50':>9} {'init max':>9} {'1st req p50':>12} {'peak RSS':>9}  budgets")
            for name in names:
                first_request, binary = FIRST_REQUESTS[name], args.binaries / name
                instant = {**layout_env, "AWS_ENDPOINT_URL_DYNAMODB": instant_dynamodb}
                inits, _, init_rss = zip(*[measure(binary, first_request(), instant, False) for _ in range(args.runs)])
                _, firsts, real_rss = zip(*[measure(binary, first_request(), layout_env) for _ in range(args.runs)])
                init_p50, peak = statistics.median(inits), max(init_rss + real_rss)
                verdicts = []
                if init_p50 > INIT_BUDGET_MS:
                    verdicts.append("init OVER")
                if peak > RSS_BUDGET_MB:
                    verdicts.append("RSS OVER")
                failures += [f"{name} ({layout}): {v}" for v in verdicts]
                print(
                    f"{name:<28} {init_p50:>7.2f}ms {max(inits):>7.2f}ms {statistics.median(firsts):>10.2f}ms "
                    f"{peak:>7.2f}MB  {', '.join(verdicts) or 'within'}"
                )
        if failures:
            print("over budget: " + "; ".join(failures))
    finally:
        emulator.kill()
        scratch.cleanup()


if __name__ == "__main__":
    main()
