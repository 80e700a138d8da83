#!/usr/bin/env python3
"""The routes as each copy of the route table states them (shared/src/routes.rs is the table).

    python scripts/routes.py --copies          # JSON: {"template": [...], "watch": [...], "readme": [...]}
    python scripts/routes.py --print BASE_URL  # what `make dev` prints, from the watch router

Each route is [METHOD, path, function]. The Rust test `every_copy_of_the_route_table_agrees`
holds every copy against the table, so what `--print` shows is checked too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import create_tables  # noqa: E402

README_ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE)` \| `([^`]+)` \| `([a-z0-9-]+)` \|")


def template_routes(path: Path = ROOT / "template.yaml") -> list[list[str]]:
    template = create_tables.load_template(path)
    routes = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        # Every function is the one binary; WARMLINE_FUNCTION names which function it serves.
        function = resource["Properties"]["Environment"]["Variables"]["WARMLINE_FUNCTION"]
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                props = event["Properties"]
                routes.append([props["Method"].upper(), props["Path"], function])
    return sorted(routes)


def throttled_routes(path: Path = ROOT / "template.yaml") -> list[str]:
    """The "METHOD /path" keys of the API's RouteSettings."""
    template = create_tables.load_template(path)
    keys = []
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::HttpApi":
            keys.extend(resource.get("Properties", {}).get("RouteSettings", {}))
    return sorted(keys)


def watch_routes(path: Path = ROOT / "Cargo.toml") -> list[list[str]]:
    with open(path, "rb") as f:
        cargo = tomllib.load(f)
    router = cargo["workspace"]["metadata"]["lambda"]["watch"]["router"]
    return [[entry["method"].upper(), route, entry["function"]] for route, entries in router.items() for entry in entries]


def readme_routes(path: Path = ROOT / "README.md") -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = README_ROW.match(line)
        if match:
            rows.append(list(match.groups()))
    return sorted(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--copies", action="store_true", help="every copy's routes, as JSON")
    group.add_argument("--print", metavar="BASE_URL", help="the routes as make dev lists them")
    args = parser.parse_args()
    if args.copies:
        copies = {
            "template": template_routes(),
            "throttled": throttled_routes(),
            "watch": sorted(watch_routes()),
            "readme": readme_routes(),
        }
        print(json.dumps(copies))
        return 0
    for method, route, function in watch_routes():
        print(f"    {method:<4} {args.print}{route:<52} {function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
