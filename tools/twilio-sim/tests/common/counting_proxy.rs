//! A pass-through in front of the DynamoDB emulator that counts the functions' requests by
//! function, operation (`X-Amz-Target`) and table: what the load test reports per handled call.
//! Requests and answers go through unchanged; the emulator checks no signatures, so the changed
//! `Host` does not matter. Which function sent a request is the program holding the other end
//! of its connection (Linux's /proc), looked up once per connection.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Requests counted per (function, operation, tables it touches).
pub type Counts = BTreeMap<(String, String, String), u64>;

pub struct CountingProxy {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
    counts: Arc<Mutex<Counts>>,
    /// Where this proxy listens, and which program holds each connection to it.
    addr: SocketAddr,
    programs: Arc<Mutex<HashMap<SocketAddr, String>>>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`), which
    /// need not be up yet: each request connects when it comes.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let counts = Arc::new(Mutex::new(Counts::new()));
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().build().unwrap(),
            counts: counts.clone(),
            addr,
            programs: Arc::default(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        Self { url, counts, task }
    }

    /// What was counted so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }

    /// Forgets what was counted so far (the stack's own start, say).
    pub fn reset(&self) {
        self.counts.lock().unwrap().clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one connection, not to the request or answer passed on; the length is
/// set again from the body.
const HOP_BY_HOP: [&str; 6] = ["host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"];

async fn forward(
    State(upstream): State<Upstream>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let known = upstream.programs.lock().unwrap().get(&peer).cloned();
    let function = match known {
        Some(program) => program,
        None => {
            let program = program_on(peer, upstream.addr).unwrap_or_else(|| "(unknown)".to_owned());
            upstream.programs.lock().unwrap().insert(peer, program.clone());
            program
        }
    };
    let operation = headers
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or("(no X-Amz-Target)")
        .to_owned();
    let tables = tables_of(&body).into_iter().collect::<Vec<_>>().join("+");
    *upstream.counts.lock().unwrap().entry((function, operation, tables)).or_default() += 1;

    let mut outgoing = headers;
    for name in HOP_BY_HOP {
        outgoing.remove(name);
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let answer =
        upstream.http.request(method, format!("{}{path}", upstream.base)).headers(outgoing).body(body).send().await;
    let Ok(answer) = answer else {
        return (StatusCode::BAD_GATEWAY, "the emulator is unreachable").into_response();
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    match answer.bytes().await {
        Ok(bytes) => (status, headers, bytes).into_response(),
        Err(_) => (StatusCode::BAD_GATEWAY, "the emulator's answer broke off").into_response(),
    }
}

/// The tables a DynamoDB request names: `TableName`, each of a transaction's items, a batch's.
fn tables_of(body: &[u8]) -> BTreeSet<String> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else { return BTreeSet::new() };
    let mut tables = BTreeSet::new();
    if let Some(table) = request["TableName"].as_str() {
        tables.insert(table.to_owned());
    }
    for item in request["TransactItems"].as_array().into_iter().flatten() {
        for action in item.as_object().into_iter().flat_map(|actions| actions.values()) {
            if let Some(table) = action["TableName"].as_str() {
                tables.insert(table.to_owned());
            }
        }
    }
    for table in request["RequestItems"].as_object().into_iter().flat_map(|items| items.keys()) {
        tables.insert(table.clone());
    }
    tables
}

/// The program holding the other end of the loopback connection from `peer` to `proxy`: the
/// socket's inode from /proc/net/tcp, then the process with that socket among its files.
fn program_on(peer: SocketAddr, proxy: SocketAddr) -> Option<String> {
    let (local, remote) = (format!(":{:04X}", peer.port()), format!(":{:04X}", proxy.port()));
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = tcp.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ours = fields.get(1)?.ends_with(&local) && fields.get(2)?.ends_with(&remote);
        ours.then(|| fields.get(9).map(|inode| (*inode).to_owned()))?
    })?;
    let socket = format!("socket:[{inode}]");
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(files) = std::fs::read_dir(process.path().join("fd")) else { continue };
        let holds = files
            .flatten()
            .any(|file| std::fs::read_link(file.path()).is_ok_and(|link| link.as_os_str() == socket.as_str()));
        if holds {
            let cmdline = std::fs::read(process.path().join("cmdline")).ok()?;
            let program = cmdline.split(|byte| *byte == 0).next()?;
            return String::from_utf8_lossy(program).rsplit('/').next().map(str::to_owned);
        }
    }
    None
}
