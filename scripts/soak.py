#!/usr/bin/env python3
"""`make soak`: the local stack under a steady load, to catch errors and leaks that one request
at a time never shows.

It starts scripts/dev.sh on free loopback ports (its own emulator, settings and state folder),
waits until every function answers, then for --duration seconds sends --rate requests a second,
open-loop (a slow answer does not slow the schedule), in a fixed mix: signed webhooks (a
customer calling, the hold music, an agent's status callback, a conference's end), customer
tokens (POST /token without a cookie) and tickets (POST /tickets). It reports errors, p50/p99
latency, and the RSS of every function process at 10 s and at the end, and exits non-zero on
any error, on a late schedule, or on RSS growth beyond the tolerance. The stack is stopped on
exit, Ctrl-C included.

    .venv/bin/python scripts/soak.py [--duration 60] [--rate 50]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "soak-auth-token"
FUNCTIONS = (
    "conference-connect-client",
    "conference-wait",
    "conference-events",
    "token",
    "tickets",
)
# RSS may grow this much from 10 s to the end. Allocators keep freed pages, and the first
# seconds do not reach every buffer size, so a few MiB of settling is not a leak; a leak of even
# 100 bytes per request (3 000 requests per function at 50 rps over 60 s) would exceed it in a
# longer run, and at 1 KiB per request it shows within this one.
RSS_TOLERANCE_KIB = 2048
RSS_TOLERANCE_RATIO = 0.10
STARTUP_TIMEOUT = 900.0
REQUEST_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


class Stack:
    """scripts/dev.sh in its own process group, so that stopping it stops everything it started."""

    def __init__(self, state: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = state
        settings = state / "settings.env"
        # An account id other than the placeholder and a Twilio URL of our own: dev.sh starts no
        # simulator, and the agent calls that webhooks place fail fast against a closed port,
        # which Warmline answers with fallback TwiML (still 200): the soak measures Warmline.
        settings.write_text(
            f"TWILIO_ACCOUNT_SID=AC{'50' * 16}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\n"
            f"TWILIO_API_BASE_URL=http://127.0.0.1:{free_port()}\nPUBLIC_BASE_URL={self.base}\n"
        )
        env = dict(
            os.environ,
            WARMLINE_PORT=str(self.port),
            WARMLINE_DYNAMODB_PORT=str(free_port()),
            WARMLINE_ENV_FILE=str(settings),
            WARMLINE_STATE_DIR=str(state),
            # A reload mid-run would restart the functions: new processes, no RSS trend.
            WARMLINE_NO_RELOAD="1",
        )
        self.log_path = state / "dev.log"
        self.process = subprocess.Popen(
            ["bash", "scripts/dev.sh"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"dev.sh exited ({self.process.returncode}):\n{self.log_path.read_text()}")
            try:
                urllib.request.urlopen(urllib.request.Request(f"{self.base}/", method="GET"), timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        sys.exit(f"dev.sh did not serve within {STARTUP_TIMEOUT:.0f} s:\n{self.log_path.read_text()}")


def signed(base: str, path: str, params: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    url = base + path
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return url, urllib.parse.urlencode(params).encode(), headers


def request_mix(base: str, n: int) -> tuple[str, str, bytes, dict[str, str], set[int]]:
    """The n-th request of the mix: (kind, url, body, headers, acceptable statuses)."""
    sid = f"CA{n:032x}"
    kind = ("client", "wait", "status", "end", "token", "ticket")[n % 6]
    if kind == "client":
        return (kind, *signed(base, "/conference/connect/client", {"CallSid": sid, "From": "+15557654321"}), {200})
    if kind == "wait":
        return (kind, *signed(base, "/conference/wait", {"CallSid": sid}), {200})
    if kind == "status":
        params = {"CallSid": f"CA{n + 1:032x}", "CallStatus": "completed"}
        return (kind, *signed(base, f"/conference/{sid}/agents/agent1/status", params), {200})
    if kind == "end":
        return (kind, *signed(base, f"/conference/{sid}/events", {"StatusCallbackEvent": "conference-end"}), {200})
    # The pages' own requests, as a browser sends them: with the page's Origin.
    if kind == "token":
        return (kind, f"{base}/token", b"", {"Origin": base}, {200})
    body = urllib.parse.urlencode(
        {"name": f"Soak {n}", "phone_number": f"+1555{n % 10_000_000:07d}", "description": "soak test"}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": base}
    return (kind, f"{base}/tickets", body, headers, {201})


def send(url: str, body: bytes, headers: dict[str, str], ok: set[int]) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        return time.perf_counter() - started, f"{type(err).__name__}: {err}"
    elapsed = time.perf_counter() - started
    return elapsed, None if status in ok else f"HTTP {status}"


def parent(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 0


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = parent(pid)
    return False


def function_pids(stack_pid: int) -> dict[str, int]:
    """The function processes cargo lambda watch runs for this stack: by binary name under
    target/, descended from dev.sh (other stacks may run the same binaries, and watch gives
    each function its own process group)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()
    pids: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = Path(os.readlink(entry / "exe"))
            if exe.name in FUNCTIONS and target in exe.parents and descends_from(int(entry.name), stack_pid):
                pids[exe.name] = int(entry.name)
        except OSError:
            continue
    return pids


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    args = parser.parse_args()
    if args.duration < 10.5:
        parser.error("--duration must be above 10 s: RSS is first sampled at 10 s")

    log("building the functions")
    subprocess.run(["cargo", "build", "--workspace", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="warmline-soak-") as state_dir:
        stack = Stack(Path(state_dir))
        # SIGINT (Ctrl-C) and SIGTERM raise, so the finally below always stops the stack.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            stack.wait_until_serving()
            return soak(stack, args.duration, args.rate)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            stack.stop()


def soak(stack: Stack, duration: float, rate: float) -> int:
    # Start every function, so RSS and latency are those of warm instances. cargo lambda watch
    # starts each with `cargo run` on its first request, which waits for any other cargo.
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        for n in range(6):
            _, url, body, headers, ok = request_mix(stack.base, n)
            send(url, body, headers, ok)
        pids = function_pids(stack.process.pid)
        missing = sorted(set(FUNCTIONS) - set(pids))
        if not missing:
            break
        if time.monotonic() > deadline:
            log(f"function processes not found: {', '.join(missing)}")
            return 1
        time.sleep(1)
    log(f"soak: {duration:.0f} s at {rate:.0f} requests/s against {stack.base}")

    results: list[tuple[str, float, str | None]] = []
    lock = threading.Lock()
    rss: dict[str, dict[str, int | None]] = {"10 s": {}, "end": {}}
    late = 0
    total = int(duration * rate)

    def record(kind: str, future: concurrent.futures.Future) -> None:
        elapsed, error = future.result()
        with lock:
            results.append((kind, elapsed, error))

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        started = time.monotonic()
        sampled_10s = False
        for n in range(total):
            due = started + n / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.5:
                late += 1
            if not sampled_10s and time.monotonic() - started >= 10:
                rss["10 s"] = {name: rss_kib(pid) for name, pid in pids.items()}
                sampled_10s = True
            kind, url, body, headers, ok = request_mix(stack.base, n + 6)
            future = pool.submit(send, url, body, headers, ok)
            future.add_done_callback(lambda f, kind=kind: record(kind, f))
    rss["end"] = {name: rss_kib(pid) for name, pid in pids.items()}
    elapsed = time.monotonic() - started

    latencies = [seconds * 1000 for _, seconds, _ in results]
    errors = [(kind, error) for kind, _, error in results if error]
    print(f"requests: {len(results)} in {elapsed:.1f} s ({len(results) / elapsed:.1f}/s), sent late: {late}")
    print(f"errors: {len(errors)}")
    for kind, error in errors[:10]:
        print(f"  {kind}: {error}")
    print(f"latency: p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
          f"max {max(latencies):.1f} ms")
    for kind in sorted({kind for kind, _, _ in results}):
        of_kind = [seconds * 1000 for k, seconds, _ in results if k == kind]
        print(f"  {kind:7} {len(of_kind):5}  p50 {percentile(of_kind, 50):6.1f} ms  p99 {percentile(of_kind, 99):6.1f} ms")

    grew = []
    print(f"RSS (KiB) at 10 s and at {duration:.0f} s; tolerance +{RSS_TOLERANCE_KIB} KiB or +{RSS_TOLERANCE_RATIO:.0%}:")
    for name in FUNCTIONS:
        early, final = rss["10 s"].get(name), rss["end"].get(name)
        if early is None or final is None:
            print(f"  {name:26} the process went away")
            grew.append(name)
            continue
        allowed = max(RSS_TOLERANCE_KIB, int(early * RSS_TOLERANCE_RATIO))
        verdict = "ok" if final - early <= allowed else "GREW"
        print(f"  {name:26} {early:8} {final:8}  {final - early:+6}  {verdict}")
        if verdict != "ok":
            grew.append(name)

    failed = bool(errors) or bool(grew) or late > 0 or len(results) != total
    print("soak: FAILED" if failed else "soak: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
