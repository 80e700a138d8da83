//! `scripts/dev.sh`, started as `make dev` starts it, for the tests that drive the real functions
//! through the simulator: on a free port, with the given settings, its state kept under
//! `target/tmp/<name>` after the run (dev.log there tells what the stack did).

#![allow(dead_code)]

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::python::workspace_root;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The stack's processes lead their own group; the wrapper shell takes the group down when
/// dev.sh exits or when our end of its stdin closes (this test process ended, however).
const WRAPPER: &str = r#"
    exec 3<&0
    bash scripts/dev.sh </dev/null &
    dev=$!
    { read -r _ <&3; kill -TERM 0; } &
    wait "$dev"
    echo "dev.sh exited with $?" >&2
    kill -TERM 0
"#;

pub struct DevStack {
    pub base: String,
    pub state: PathBuf,
    process: Child,
    _stdin: ChildStdin,
}

impl DevStack {
    /// Starts dev.sh on `port` with `settings` (lines of a `.env`) and `env` for dev.sh itself.
    pub fn start(name: &str, port: u16, settings: &str, env: &[(&str, &str)]) -> Self {
        let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let settings_path = state.join("settings.env");
        std::fs::write(&settings_path, settings).unwrap();
        let log = std::fs::File::create(state.join("dev.log")).unwrap();
        let mut child = Command::new("bash")
            .args(["-c", WRAPPER])
            .current_dir(workspace_root())
            .env("WARMLINE_PORT", port.to_string())
            .env("WARMLINE_DYNAMODB_PORT", free_port().to_string())
            .env("WARMLINE_ENV_FILE", &settings_path)
            .env("WARMLINE_STATE_DIR", &state)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        Self { base: format!("http://127.0.0.1:{port}"), state, process: child, _stdin: stdin }
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.state.join("dev.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// A setting as dev.sh handed it to the functions.
    pub fn setting(&self, name: &str) -> String {
        let env = std::fs::read_to_string(self.state.join("functions.env")).unwrap();
        env.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .next_back()
            .unwrap_or_else(|| panic!("dev.sh set no {name}"))
            .to_owned()
    }

    /// Until the router answers; a first start on a fresh clone compiles the workspace.
    pub async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(900);
        let http = reqwest::Client::new();
        while http.post(format!("{}/token", self.base)).send().await.is_err() {
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!("dev.sh exited ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "dev.sh did not serve in time:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
