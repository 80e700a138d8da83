"""Deployment package sizes: zips each function's `bootstrap` from a `sam build` output as SAM
does and compares it with its budget. A function whose template grants it AWS access (DynamoDB,
or Secrets Manager, which every function reads its secrets from) links the AWS SDK and may use up
to 3.5 MB; any other, 1.5 MB.

    python scripts/sizes.py BUILD_DIR [--check]
"""

import argparse
import io
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from create_tables import load_template  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
WITH_SDK_BUDGET = 3.5 * MB
WITHOUT_SDK_BUDGET = 1.5 * MB


def zipped_size(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.write(path, "bootstrap")
    return buffer.tell()


def functions(template):
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        policies = resource["Properties"].get("Policies", [])
        uses_sdk = any(next(iter(policy)).startswith(("DynamoDB", "AWSSecretsManager")) for policy in policies)
        yield logical_id, resource["Properties"]["Environment"]["Variables"]["WARMLINE_FUNCTION"], uses_sdk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 when a function is over budget")
    args = parser.parse_args()

    over = []
    print(f"{'function':<28} {'binary':>10} {'zipped':>10} {'budget':>8}")
    for logical_id, name, uses_sdk in functions(load_template(ROOT / "template.yaml")):
        bootstrap = args.build_dir / logical_id / "bootstrap"
        if not bootstrap.is_file():
            sys.exit(f"{bootstrap} is missing: run sam build first")
        zipped = zipped_size(bootstrap)
        budget = WITH_SDK_BUDGET if uses_sdk else WITHOUT_SDK_BUDGET
        verdict = "" if zipped <= budget else "  OVER"
        if verdict:
            over.append(name)
        print(
            f"{name:<28} {bootstrap.stat().st_size / MB:>8.2f}MB {zipped / MB:>8.2f}MB {budget / MB:>6.1f}MB{verdict}"
        )
    if over and args.check:
        sys.exit(f"over the size budget: {', '.join(over)}")


if __name__ == "__main__":
    main()
