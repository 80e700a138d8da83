"""Cargo.lock against deny.toml's [bans], offline.

`cargo deny check advisories` needs the RustSec database from GitHub, which the machines that run
`make test` cannot reach (docs/SECURITY.md, "Dependencies and advisories"). The crates known to
be unwanted are listed in deny.toml, each with its reason, and this test holds Cargo.lock to that
list on every run, with nothing to fetch. `cargo deny check bans` reads the same list.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def banned(deny: dict) -> list[tuple[str, str | None, str]]:
    """(crate, version requirement or None, reason) for every entry of [bans] deny."""
    entries = []
    for entry in deny.get("bans", {}).get("deny", []):
        spec = entry["crate"] if isinstance(entry, dict) else entry
        name, _, requirement = spec.partition("@")
        entries.append((name, requirement or None, entry.get("reason", "") if isinstance(entry, dict) else ""))
    return entries


def matches(version: str, requirement: str | None) -> bool:
    """cargo-deny reads `name@0.24` as the requirement ^0.24: the same major, or for 0.x the
    same minor."""
    if requirement is None:
        return True
    wanted = [int(part) for part in requirement.split(".")]
    have = [int(part) for part in version.split("-")[0].split(".")]
    significant = 2 if wanted[0] == 0 else 1
    return have[:significant] == wanted[:significant] and have[: len(wanted)] >= wanted


def violations(lock: dict, deny: dict) -> list[str]:
    found = []
    for package in lock.get("package", []):
        for name, requirement, reason in banned(deny):
            if package["name"] == name and matches(package["version"], requirement):
                found.append(f"{name} {package['version']}: {reason}")
    return found


def load(name: str) -> dict:
    with open(ROOT / name, "rb") as f:
        return tomllib.load(f)


def test_cargo_lock_has_no_banned_crate():
    assert violations(load("Cargo.lock"), load("deny.toml")) == []


def test_every_ban_and_accepted_advisory_says_why():
    deny = load("deny.toml")
    entries = banned(deny)
    assert "rsa" in [name for name, _, _ in entries], "RUSTSEC-2023-0071"
    for name, _, reason in entries:
        assert len(reason) > 20, f"{name}: say why it is banned"
    for advisory in deny.get("advisories", {}).get("ignore", []):
        assert isinstance(advisory, dict) and len(advisory.get("reason", "")) > 20, advisory


@pytest.mark.parametrize(
    ("version", "requirement", "hit"),
    [
        ("0.9.10", None, True),
        ("0.24.2", "0.24", True),
        ("0.24.0", "0.24", True),
        ("0.27.10", "0.24", False),
        ("0.23.9", "0.24", False),
        ("1.4.0", "1", True),
        ("2.0.0", "1", False),
        ("1.2.0", "1.3", False),
    ],
)
def test_requirements_read_as_cargo_deny_reads_them(version, requirement, hit):
    assert matches(version, requirement) == hit


def test_a_lock_with_a_banned_crate_fails():
    lock = {"package": [{"name": "rsa", "version": "0.9.10"}, {"name": "hyper-rustls", "version": "0.27.10"}]}
    deny = load("deny.toml")
    assert [v.split(":")[0] for v in violations(lock, deny)] == ["rsa 0.9.10"]
    lock["package"].append({"name": "hyper-rustls", "version": "0.24.2"})
    assert len(violations(lock, deny)) == 2
