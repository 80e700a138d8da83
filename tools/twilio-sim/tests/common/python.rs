//! The venv's Python, for tests that use the official `twilio` package as an oracle. `make test`
//! creates the venv; without it these tests fail, loudly, rather than skip.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> Command {
    let path =
        std::env::var_os("WARMLINE_PYTHON").map_or_else(|| workspace_root().join(".venv/bin/python"), PathBuf::from);
    assert!(path.exists(), "{} is missing: run `make test` (it installs the test tools)", path.display());
    let mut command = Command::new(path);
    command.current_dir(workspace_root());
    command
}

/// Runs a Python snippet and returns its stdout, failing on any error.
pub fn run(script: &str) -> String {
    let mut command = python();
    command.args(["-c", script]);
    run_command_with_input(command, "")
}

pub fn run_command_with_input(mut command: Command, input: &str) -> String {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}
