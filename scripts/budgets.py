"""Budgets that fail the build: the instructions each endpoint's request costs, and each function's
init, counted by callgrind and held against the baseline committed in scripts/budgets.json.

    python scripts/budgets.py            # measure, compare, exit 1 on a regression
    python scripts/budgets.py --update   # measure and rewrite the baseline (commit it on purpose)

Why instructions: they do not move with the machine's load, where times move 2x between runs on a
shared 2-core machine. What still moves them is small and known: the hash seeds and allocator
state of a run move a request's count by well under 1 %; the order in which init's two warm-up
connections (DynamoDB, Twilio) complete moves init's by up to 4 %, and on a loaded machine a
warm-up that waits on a slow upstream adds polling (one init in a fresh-clone CI run counted
14.5 % over where the same commit's other CI run passed). A count may exceed its baseline by
TOLERANCE; an init over it is counted again, up to RECOUNTS times, and the smallest count stands,
since noise only ever adds work. A real regression (a CA store read again at init, a format! per
byte on the request path) is over on every count.

What is counted is the build `make test` has made by then: the benchmark binary of
`cargo test --workspace --all-targets --all-features` (shared/benches/handlers.rs, the requests as a
warm function serves them, logging on) and the functions' debug binaries (init, against upstreams
that answer at once, as `make coldstart` runs them). An optimised build of the same code would cost
CI minutes of compiling that nothing else in `make test` uses; unoptimised code costs more
instructions, so these figures are larger than `make bench`'s, but the same changes move them.
`make bench` holds the optimised counts to their absolute budget (120 k per Twilio webhook).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import coldstart  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scripts" / "budgets.json"
TOLERANCE = 0.05
# Requests per endpoint, all endpoints in one run of the benchmark: the count is per request, and
# the forged webhooks, thousands of parameters each, make more than a few take long unoptimised.
REQUESTS = 2
# Init for one function of each kind of `main`: both upstreams warmed (most), DynamoDB alone, and
# the pages with their assets compiled in. Every main runs the same `shared::functions::run`
# otherwise, and an unoptimised init under callgrind takes seconds.
INIT_FUNCTIONS = ("conference-wait", "conference-connect-agent", "pages")
RECOUNTS = 2
FEATURES = os.environ.get("WARMLINE_CARGO_FEATURES", "--all-features")


def cargo_json(*args):
    out = subprocess.run(
        ["cargo", *args, "--message-format=json", FEATURES], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def benchmark_binary():
    """The benchmark as `cargo test --workspace --all-targets` builds it (already built by then)."""
    for message in cargo_json("test", "--workspace", "--all-targets", "--no-run"):
        target = message.get("target", {})
        if message.get("reason") == "compiler-artifact" and target.get("name") == "handlers" and message.get("executable"):
            return Path(message["executable"])
    sys.exit("no benchmark binary: cargo test --workspace --all-targets built no `handlers` bench")


def function_binaries():
    """Every function's debug binary, as `make dev` and the end-to-end tests build them."""
    binaries = {}
    for message in cargo_json("build", "--workspace"):
        target = message.get("target", {})
        manifest = Path(message.get("manifest_path", ""))
        if message.get("reason") == "compiler-artifact" and "bin" in target.get("kind", []) and manifest.parent.parent.name == "functions":
            binaries[target["name"]] = Path(message["executable"])
    return binaries


def total(callgrind_out):
    for line in callgrind_out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"callgrind wrote no totals in {callgrind_out}")


def request_counts(binary):
    """{endpoint: instructions per request}: one run of the benchmark over every endpoint, counted
    inside its serving loop only (setup is not serving), one callgrind dump per endpoint."""
    names = subprocess.run([str(binary), "--list"], check=True, capture_output=True, text=True).stdout.splitlines()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        # The exact name: unoptimised, its closure is a function of its own, and a pattern that
        # matched both would switch counting off on entering it.
        loop = "handlers::serve_requests"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
            f"--toggle-collect={loop}", f"--dump-after={loop}",
            str(binary), "--iterations", str(REQUESTS), "--no-warmup",
        ]  # fmt: skip
        # Deployed, the functions log JSON lines; the requests pay for them here too.
        env = {**os.environ, "AWS_LAMBDA_LOG_FORMAT": "JSON"}
        subprocess.run(command, check=True, capture_output=True, env=env)
        dumps = sorted(Path(scratch).glob("callgrind.out.*"), key=lambda path: int(path.suffix[1:]))
        # The endpoints run in `--list` order; the list ends with loops of other names.
        if not 0 < len(dumps) <= len(names):
            sys.exit(f"{len(dumps)} serving loops for {len(names)} endpoints: has the benchmark changed its loop?")
        return {name: total(dump) // REQUESTS for name, dump in zip(names, dumps)}


def init_counts(binaries, baseline):
    """{function: instructions of init}; a count past its baseline's tolerance is taken again."""
    chosen = {name: binaries[name] for name in INIT_FUNCTIONS}
    counts = coldstart.count_init_instructions(chosen, ("debian",))["debian"]
    for _ in range(RECOUNTS):
        over = {name: chosen[name] for name, count in counts.items() if count > baseline.get(name, count) * (1 + TOLERANCE)}
        if not over:
            break
        print(f"init counted again (over its baseline): {', '.join(over)}")
        again = coldstart.count_init_instructions(over, ("debian",))["debian"]
        counts.update({name: min(counts[name], count) for name, count in again.items()})
    return counts


def compare(kind, baseline, measured):
    """Rows of (name, baseline, measured, verdict) and whether every count is within its limit."""
    rows, ok = [], True
    for name in sorted(set(baseline) | set(measured), key=lambda n: (n not in measured, n)):
        before, now = baseline.get(name), measured.get(name)
        if now is None:
            rows.append((name, before, None, "no longer measured"))
        elif before is None:
            rows.append((name, None, now, "NEW: no baseline (scripts/budgets.py --update)"))
            ok = False
        elif now > before * (1 + TOLERANCE):
            rows.append((name, before, now, f"OVER by {now / before - 1:.1%} (tolerance {TOLERANCE:.0%})"))
            ok = False
        else:
            rows.append((name, before, now, f"{now / before - 1:+.1%}"))
    print(f"\n{kind}")
    print(f"{'':<40} {'baseline':>12} {'now':>12}")
    for name, before, now, verdict in rows:
        print(f"{name:<40} {before or '-':>12} {now or '-':>12}  {verdict}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    args = parser.parse_args()

    baseline = {} if args.update else json.loads(BASELINE.read_text())
    init_kind = "instructions of init (test build, callgrind; Debian's CA layout)"
    measured = {
        "instructions per request (test build, callgrind)": request_counts(benchmark_binary()),
        init_kind: init_counts(function_binaries(), baseline.get(init_kind, {})),
    }
    if args.update:
        BASELINE.write_text(
            json.dumps(
                {
                    "about": "Written by `scripts/budgets.py --update`; `make test` fails when a count grows more "
                    f"than {TOLERANCE:.0%} past it. See docs/TESTING.md.",
                    **measured,
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
        print(f"baseline written: {BASELINE.relative_to(ROOT)}")
        for kind, counts in measured.items():
            compare(kind, counts, counts)
        return
    ok = all([compare(kind, baseline.get(kind, {}), counts) for kind, counts in measured.items()])
    if not ok:
        sys.exit(
            "\ninstruction budgets: a count grew past its baseline. If that is the price of a change you "
            "mean, run `scripts/budgets.py --update` and commit scripts/budgets.json with it."
        )
    print("\ninstruction budgets: every count within its baseline")


if __name__ == "__main__":
    main()
