#!/usr/bin/env python3
"""Create the DynamoDB tables of template.yaml in a local emulator (the moto server).

template.yaml stays the single source of truth: every AWS::DynamoDB::Table resource becomes a
table named <prefix><LogicalId> with the same keys, billing mode, indexes and TTL.

    python scripts/create_tables.py --endpoint http://127.0.0.1:8000
    python scripts/create_tables.py --endpoint http://127.0.0.1:8000 --print-env   # CALLS_TABLE=...

The parsing functions (load_template, table_definitions, table_env_vars) are importable, so tests
can assert on the template without a second YAML loader.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
DEFAULT_PREFIX = "warmline-local-"
TABLE_TYPE = "AWS::DynamoDB::Table"
WAIT_SECONDS = 10.0

# Properties create_table takes in the same shape as CloudFormation. The rest (SSE, PITR, streams,
# tags) change nothing the code can observe locally; TTL needs its own call, made below.
COPIED_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
)
GSI_API_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")


class CfnTag:
    """A CloudFormation short-form intrinsic (!Ref X, !Sub ..., !GetAtt a.b), kept unevaluated."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CfnTag) and (self.tag, self.value) == (other.tag, other.value)

    def __hash__(self) -> int:
        return hash((self.tag, repr(self.value)))

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation's '!' tags instead of refusing the whole file."""


def _construct_cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> CfnTag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return CfnTag("!" + suffix, value)


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: str | os.PathLike[str] = DEFAULT_TEMPLATE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader


def ref_target(value: Any) -> str | None:
    """The logical id named by `!Ref X` or `{Ref: X}`, else None."""
    if isinstance(value, CfnTag):
        return value.value if value.tag == "!Ref" else None
    if isinstance(value, dict) and list(value) == ["Ref"]:
        return value["Ref"]
    return None


def table_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of every AWS::DynamoDB::Table in the template."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") == TABLE_TYPE
    }


def table_env_vars(template: dict[str, Any]) -> dict[str, str]:
    """Env var name -> table logical id, for the Globals variables that `!Ref` a table."""
    tables = table_definitions(template)
    variables = (
        ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    ).get("Variables") or {}
    return {
        name: ref_target(value)
        for name, value in variables.items()
        if ref_target(value) in tables
    }


def create_table_request(table_name: str, properties: dict[str, Any]) -> dict[str, Any]:
    request = {key: properties[key] for key in COPIED_PROPERTIES if key in properties}
    if "GlobalSecondaryIndexes" in request:
        # CloudFormation-only index settings (ContributorInsightsSpecification) fail create_table.
        request["GlobalSecondaryIndexes"] = [
            {key: value for key, value in index.items() if key in GSI_API_KEYS}
            for index in request["GlobalSecondaryIndexes"]
        ]
    if _contains_tag(request):
        raise ValueError(f"{table_name}: intrinsic functions in table keys/indexes are not supported")
    request["TableName"] = table_name
    return request


def _contains_tag(value: Any) -> bool:
    if isinstance(value, CfnTag):
        return True
    if isinstance(value, dict):
        return any(_contains_tag(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_tag(v) for v in value)
    return False


def emulator_client(endpoint: str):
    import boto3  # imported late: the parsing functions above must work without boto3
    from botocore.config import Config

    # Always dummy credentials: an endpoint typo then fails instead of creating tables in a real
    # AWS account with the developer's own keys.
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        # wait_for_endpoint does the retrying; botocore's own backoff would stretch its deadline.
        config=Config(connect_timeout=1, read_timeout=10, retries={"mode": "standard", "max_attempts": 1}),
    )


class EmulatorUnavailable(RuntimeError):
    pass


def wait_for_endpoint(client, endpoint: str, timeout: float = WAIT_SECONDS) -> None:
    # `make dev` starts the emulator and this script together; give it time to listen.
    from botocore.exceptions import EndpointConnectionError

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_tables(Limit=1)
            return
        except EndpointConnectionError as err:
            if time.monotonic() >= deadline:
                raise EmulatorUnavailable(
                    f"no DynamoDB endpoint answered at {endpoint} within {timeout:.0f} s"
                ) from err
            time.sleep(0.2)


def create_tables(
    endpoint: str,
    template: dict[str, Any],
    prefix: str = DEFAULT_PREFIX,
) -> dict[str, str]:
    """Create every table (leaving existing ones alone); return logical id -> table name."""
    client = emulator_client(endpoint)
    wait_for_endpoint(client, endpoint)
    names: dict[str, str] = {}
    for logical_id, properties in table_definitions(template).items():
        table_name = f"{prefix}{logical_id}"
        try:
            client.create_table(**create_table_request(table_name, properties))
            client.get_waiter("table_exists").wait(
                TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        except client.exceptions.ResourceInUseException:
            pass
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            current = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
            # Real DynamoDB rejects re-enabling TTL that is already on, so check first.
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                client.update_time_to_live(
                    TableName=table_name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
        names[logical_id] = table_name
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="SAM template (default: %(default)s)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="table name prefix (default: %(default)s)")
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="print ENV_VAR=table-name lines for the Globals variables that !Ref a table",
    )
    args = parser.parse_args(argv)

    template = load_template(args.template)
    try:
        names = create_tables(args.endpoint, template, args.prefix)
    except EmulatorUnavailable as err:
        print(f"create_tables: {err}", file=sys.stderr)
        return 1
    if args.print_env:
        for env_var, logical_id in table_env_vars(template).items():
            print(f"{env_var}={names[logical_id]}")
    else:
        for logical_id, table_name in names.items():
            print(f"{logical_id}={table_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
