#!/usr/bin/env python3
"""Fail if any secret a test stack ran with appears in any log the test suite wrote.

Every local stack (scripts/dev.sh) writes the settings its functions run with to
`functions.env` in its state directory. This collects the secret values from every such file
under the given directories (plus any --secret), then searches every *.log file under the given
directories, and the given log files, for them. Prints each hit masked, and exits 1 if any.

    python scripts/check_secrets_in_logs.py DIR_OR_LOG... [--secret VALUE]...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SECRET_NAMES = ("TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "SESSION_SECRET")
# Shorter values (placeholders, empty ones) would match by chance.
MIN_SECRET_LENGTH = 8


def secrets_in(env_file: Path) -> set[str]:
    found = set()
    for line in env_file.read_text(errors="replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip() in SECRET_NAMES and len(value.strip()) >= MIN_SECRET_LENGTH:
            found.add(value.strip())
    return found


def mask(secret: str) -> str:
    return secret[:2] + "*" * (len(secret) - 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--secret", action="append", default=[])
    args = parser.parse_args()

    secrets = {s for s in args.secret if len(s) >= MIN_SECRET_LENGTH}
    logs: list[Path] = []
    for path in args.paths:
        if path.is_dir():
            for env_file in path.rglob("functions.env"):
                secrets |= secrets_in(env_file)
            logs += sorted(path.rglob("*.log"))
        elif path.is_file():
            logs.append(path)
    if not secrets:
        print("check_secrets_in_logs: no secrets found to look for", file=sys.stderr)
        return 1

    hits = 0
    for log in logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), start=1):
            for secret in secrets:
                if secret in line:
                    hits += 1
                    print(f"{log}:{number}: contains the secret {mask(secret)}", file=sys.stderr)
    lines = sum(1 for log in logs for _ in log.open(errors="replace"))
    print(f"secrets in logs: {len(secrets)} secret values, {len(logs)} logs ({lines} lines), {hits} hits")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
