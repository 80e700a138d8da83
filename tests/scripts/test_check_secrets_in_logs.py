"""scripts/check_secrets_in_logs.py finds a stack's secrets in logs, and passes clean logs."""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_secrets_in_logs.py"


@pytest.fixture
def tmp_path():
    # Not pytest's own tmp_path: `make test` searches everything under pytest's base directory
    # for secrets, and these fixtures plant some on purpose.
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True)


def stack(tmp_path, log_text):
    state = tmp_path / "stack"
    state.mkdir()
    (state / "functions.env").write_text(
        "TWILIO_AUTH_TOKEN=auth-token-value-1\nTWILIO_API_SECRET=api-secret-value-2\nSESSION_SECRET=session-key-3\n"
        "TWILIO_NUMBER=+15550000000\nTWILIO_API_KEY=\n"
    )
    (state / "dev.log").write_text(log_text)
    return state


def test_clean_logs_pass(tmp_path):
    result = run(stack(tmp_path, "INFO signed in agent=agent1\nINFO auth token ***\n"))
    assert result.returncode == 0, result.stderr
    assert "3 secret values, 1 logs (2 lines), 0 hits" in result.stdout


def test_a_secret_in_any_log_fails_and_is_not_repeated(tmp_path):
    state = stack(tmp_path, "fine\nDEBUG config session=session-key-3\n")
    other = tmp_path / "other.log"
    other.write_text("token api-secret-value-2 leaked\n")
    result = run(state, other)
    assert result.returncode == 1
    assert "dev.log:2: contains the secret se" in result.stderr
    assert "other.log:1: contains the secret ap" in result.stderr
    assert "session-key-3" not in result.stderr + result.stdout, "the report masks what it found"


def test_extra_secrets_and_nothing_to_look_for(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("browser-auth-token\n")
    assert run(log, "--secret", "browser-auth-token").returncode == 1
    assert run(log).returncode == 1, "finding no secrets to look for is a broken check, not a pass"
