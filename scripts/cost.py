#!/usr/bin/env python3
"""`make cost`: what Warmline's calls cost on AWS, per 1,000 calls, beside what the same calls
cost on Amazon Connect and Twilio Flex.

It prices what `lambda-bench cost` measured on the local stack (target/cost.json): every
invocation with its billed duration, its DynamoDB read and write units and its log bytes, for
four calls and an agent's hour at the dashboard (tools/lambda-bench/src/cost.rs).

    python scripts/cost.py [--measured target/cost.json] [--detail]

Prices are US East (N. Virginia), list prices without free tiers, as `PRICES` cites them.
Twilio's voice minutes are left out everywhere: Warmline and Flex pay the same Twilio minutes
for the same calls, and Amazon Connect's telephony per minute comes on top of its price below.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each price with the page it is from and the day it was read there.
PRICES = {
    "lambda_request": (0.20 / 1e6, "AWS Lambda, per request", "https://aws.amazon.com/lambda/pricing/ (2026-09-20)"),
    "lambda_gb_second_arm": (
        0.0000133334,
        "AWS Lambda arm64, per GB-second (first 7.5 billion GB-s a month)",
        "https://aws.amazon.com/lambda/pricing/ (2026-09-20)",
    ),
    "http_api_request": (
        1.00 / 1e6,
        "API Gateway HTTP API, per request up to 512 KB (first 300 million a month)",
        "https://aws.amazon.com/api-gateway/pricing/ (2026-12-02)",
    ),
    "dynamodb_read_unit": (
        0.125 / 1e6,
        "DynamoDB on-demand, per read request unit",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/ (2026-12-02)",
    ),
    "dynamodb_write_unit": (
        0.625 / 1e6,
        "DynamoDB on-demand, per write request unit",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/ (2026-12-02)",
    ),
    "logs_ingested_gb": (
        0.50,
        "CloudWatch Logs, Lambda logs ingested, per GB (first 10 TB a month)",
        "https://aws.amazon.com/cloudwatch/pricing/ (2026-12-02)",
    ),
    "secret_month": (0.40, "Secrets Manager, per secret a month", "https://aws.amazon.com/secrets-manager/pricing/ (2026-12-02)"),
    "secret_api_call": (
        0.05 / 10_000,
        "Secrets Manager, per API call (GetSecretValue, at cold starts)",
        "https://aws.amazon.com/secrets-manager/pricing/ (2026-12-02)",
    ),
    "connect_voice_minute": (
        0.018,
        "Amazon Connect voice usage, per minute (telephony per minute on top)",
        "https://aws.amazon.com/connect/pricing/ (2026-12-02)",
    ),
    "connect_voice_minute_ai": (
        0.038,
        "Amazon Connect voice with its AI features included, per minute (telephony on top)",
        "https://aws.amazon.com/products/connect/customer/pricing/ (2026-10-07)",
    ),
    "flex_active_user_month": (
        35.0,
        "Twilio Flex User + Usage plan, per active user a month (Flex's own Twilio usage on top)",
        "https://support.twilio.com/hc/en-us/articles/47882410772123 (2026-12-02)",
    ),
}

# A full-time agent's month, to spread Flex's per-user fee over the hours they take calls.
AGENT_HOURS_A_MONTH = 160

# What Lambda itself writes to a function's log group for each invocation with LoggingConfig
# JSON: a platform.start and a platform.report record. Sized from records of this shape.
PLATFORM_RECORDS = (
    '{"time":"2026-12-02T21:06:04.123Z","type":"platform.start",'
    '"record":{"requestId":"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","version":"$LATEST"}}',
    '{"time":"2026-12-02T21:06:04.135Z","type":"platform.report",'
    '"record":{"requestId":"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","metrics":{"durationMs":11.512,'
    '"billedDurationMs":12,"memorySizeMB":128,"maxMemoryUsedMB":9},"status":"success"}}',
)
PLATFORM_BYTES = sum(len(record) for record in PLATFORM_RECORDS)
GB = 1024**3


def price(name: str) -> float:
    return PRICES[name][0]


def usage(scenario: dict) -> dict:
    """A scenario's totals for one call."""
    rows = scenario["invocations"]
    total = lambda pick: sum(row["count"] * pick(row) for row in rows)  # noqa: E731
    return {
        "invocations": total(lambda row: 1),
        "billed_ms": total(lambda row: row["billed_ms"]),
        "gb_seconds": total(lambda row: row["billed_ms"] / 1000 * row["memory_mb"] / 1024),
        "read_units": total(lambda row: row["read_units"]),
        "write_units": total(lambda row: row["write_units"]),
        "dynamodb_requests": total(lambda row: row["dynamodb_requests"]),
        "log_bytes": total(lambda row: row["log_bytes"] + PLATFORM_BYTES),
        "twilio_requests": sum(scenario["twilio_rest"].values()),
    }


def aws_cost(used: dict) -> dict:
    """Dollars for one call (or one agent-hour), by service."""
    return {
        "Lambda": used["invocations"] * price("lambda_request") + used["gb_seconds"] * price("lambda_gb_second_arm"),
        "HTTP API": used["invocations"] * price("http_api_request"),
        "DynamoDB": used["read_units"] * price("dynamodb_read_unit") + used["write_units"] * price("dynamodb_write_unit"),
        "Logs": used["log_bytes"] / GB * price("logs_ingested_gb"),
    }


def flex_per_agent_hour() -> float:
    return price("flex_active_user_month") / AGENT_HOURS_A_MONTH


def table(run: dict) -> str:
    lines = []
    header = (
        f"{'per 1,000 calls':<44} {'invoc.':>7} {'GB-s':>7} {'RRU':>7} {'WRU':>7} {'logs MB':>8}"
        f" {'Lambda':>8} {'HTTP API':>8} {'DynamoDB':>8} {'Logs':>7} {'AWS':>8} {'Connect':>9} {'Flex':>8}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for scenario in run["scenarios"]:
        used = usage(scenario)
        cost = aws_cost(used)
        minutes = scenario["minutes"]
        connect = minutes["customer"] * price("connect_voice_minute")
        flex = minutes["agents"] / 60 * flex_per_agent_hour()
        thousand = lambda value: value * 1000  # noqa: E731
        lines.append(
            f"{scenario['title']:<44} {thousand(used['invocations']):>7.0f} {thousand(used['gb_seconds']):>7.2f}"
            f" {thousand(used['read_units']):>7.0f} {thousand(used['write_units']):>7.0f}"
            f" {thousand(used['log_bytes']) / 1e6:>8.2f}"
            + "".join(f" ${thousand(cost[service]):>7.3f}" for service in ("Lambda", "HTTP API", "DynamoDB"))
            + f" ${thousand(cost['Logs']):>6.3f} ${thousand(sum(cost.values())):>7.3f}"
            f" ${thousand(connect):>8.2f} ${thousand(flex):>7.2f}"
        )
    hour = run["agent_hour"]
    used = usage(hour)
    cost = aws_cost(used)
    lines.append("-" * len(header))
    lines.append(
        f"{'one agent signed in, per hour (not per 1,000)':<44} {used['invocations']:>7.0f} {used['gb_seconds']:>7.3f}"
        f" {used['read_units']:>7.0f} {used['write_units']:>7.0f} {used['log_bytes'] / 1e6:>8.3f}"
        + "".join(f" ${cost[service]:>7.4f}" for service in ("Lambda", "HTTP API", "DynamoDB"))
        + f" ${cost['Logs']:>6.4f} ${sum(cost.values()):>7.4f} {'-':>9} ${flex_per_agent_hour():>7.3f}"
    )
    return "\n".join(lines)


def detail(run: dict) -> str:
    lines = []
    for scenario in [*run["scenarios"], run["agent_hour"]]:
        lines.append(f"\n{scenario['title']}: per call, by request ({'; '.join(scenario['notes']) or 'as measured'})")
        lines.append(
            f"  {'route':<56} {'kind':<28} {'count':>5} {'ms':>6} {'DDB req':>7} {'RRU':>5} {'WRU':>5}"
            f" {'log B':>6} {'$/1,000':>8}"
        )
        for row in sorted(scenario["invocations"], key=lambda row: -row["count"]):
            one = {
                "invocations": 1,
                "gb_seconds": row["billed_ms"] / 1000 * row["memory_mb"] / 1024,
                "read_units": row["read_units"],
                "write_units": row["write_units"],
                "log_bytes": row["log_bytes"] + PLATFORM_BYTES,
            }
            dollars = sum(aws_cost(one).values()) * row["count"] * 1000
            lines.append(
                f"  {row['route']:<56} {row['kind']:<28} {row['count']:>5.1f} {row['billed_ms']:>6.0f}"
                f" {row['dynamodb_requests']:>7.1f} {row['read_units']:>5.2f} {row['write_units']:>5.2f}"
                f" {row['log_bytes']:>6.0f} ${dollars:>7.4f}"
            )
        if scenario["twilio_rest"]:
            rest = ", ".join(f"{kind} {n:g}" for kind, n in scenario["twilio_rest"].items())
            lines.append(f"  Twilio REST requests: {rest}")
    return "\n".join(lines)


def cold_starts(run: dict) -> str:
    starts = run["cold_starts"]
    if not starts:
        return ""
    inits = sorted(start["init_ms_median"] for start in starts)
    median = inits[len(inits) // 2]
    # The stack keeps three secrets (Twilio auth token, Twilio API key, session key); a function
    # reads at most all three at its cold start (template.yaml, the *_SECRET_ARN variables).
    secrets = 3
    one = median / 1000 * 128 / 1024 * price("lambda_gb_second_arm") + secrets * price("secret_api_call")
    return (
        f"a cold start: init {median:.0f} ms median over the functions (billed, at 128 MB) and at most"
        f" {secrets} GetSecretValue: ${one * 1000:.4f} per 1,000 cold starts; the {secrets} secrets themselves"
        f" ${secrets * price('secret_month'):.2f} a month"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, default=ROOT / "target" / "cost.json")
    parser.add_argument("--detail", action="store_true", help="every kind of request of every call")
    args = parser.parse_args()
    if not args.measured.is_file():
        sys.exit(f"{args.measured} is missing: `make cost` measures it (lambda-bench cost)")
    run = json.loads(args.measured.read_text())
    print(
        f"Measured with {Path(run['binaries']).name} binaries; DynamoDB +{run['dynamodb_latency_ms']} ms,"
        f" Twilio REST +{run['twilio_latency_ms']} ms; Twilio's durations x {run['time_scale']}"
    )
    print(table(run))
    print(
        f"Connect: its voice service at ${price('connect_voice_minute')}/min for the customer's minutes"
        f" (${price('connect_voice_minute_ai')}/min with its AI features); Flex: ${price('flex_active_user_month'):.0f}"
        f" per active user a month over {AGENT_HOURS_A_MONTH} h, for the agents' minutes."
    )
    print("Twilio's voice minutes are the same for Warmline and Flex and are in no column; Connect's telephony is extra.")
    print(cold_starts(run))
    if args.detail:
        print(detail(run))
    print("\nPrices:")
    for value, what, source in PRICES.values():
        print(f"  {what}: ${value:.10g} ({source})")


if __name__ == "__main__":
    main()
