//! API Gateway's HTTP API and Lambda, on loopback, for Warmline's own binaries: a front door that
//! routes each request by `shared::routes::ENDPOINTS` to its function and hands it over as the
//! payload 2.0 event API Gateway sends, and the Lambda Runtime API that each function's process
//! polls (`AWS_LAMBDA_RUNTIME_API`, as `lambda_runtime` reads it on Lambda).
//!
//! Like Lambda, an instance serves one invocation at a time, and a function with none idle gets
//! a new instance (a cold start) up to a limit; the rest wait in line. Unlike `cargo lambda
//! watch`, nothing stands between the front door and the instance but a queue, so what it
//! measures is the function's own time: for each invocation, when the front door received it,
//! when an instance took it (`GET …/invocation/next` answered) and when the instance answered
//! (`POST …/response`), which is what Lambda bills. Every line an instance writes is kept, by
//! instance and time, as CloudWatch Logs would ingest it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use shared::routes::ENDPOINTS;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::taps::Taps;

/// Lambda's `Timeout` in template.yaml: an invocation still running after this is failed.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What every instance gets, and where it comes from.
pub struct HostConfig {
    /// The folder with one executable per function (`target/release`, `target/debug`).
    pub binaries: PathBuf,
    /// The functions' environment (the settings `template.yaml` gives them).
    pub env: Vec<(String, String)>,
    /// Instances per function at most, as reserved concurrency caps them.
    pub max_instances: usize,
    /// Where each function's log lines are written (`<function>.log`).
    pub log_dir: PathBuf,
    /// Per-instance pass-throughs to DynamoDB and Twilio; without them, the instances use the
    /// endpoints in `env`.
    pub taps: Option<Taps>,
}

/// One request the front door handed to a function.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    /// API Gateway's route key: `POST /conference/{conference_id}/events`.
    pub route: String,
    /// Path and query as requested.
    pub uri: String,
    /// The call it is about: the `CallSid` a Twilio request carries, or the conference in its path.
    pub call: Option<String>,
    pub conference: Option<String>,
    /// What a Twilio status callback reports: its `StatusCallbackEvent`, or else its `CallStatus`.
    pub event: Option<String>,
    pub instance: u64,
    /// The first invocation of an instance started for it.
    pub cold: bool,
    pub received: Instant,
    pub handed: Instant,
    pub answered: Instant,
    pub status: u16,
    /// The body, when it is TwiML (what the caller hears).
    pub twiml: Option<String>,
}

impl Invocation {
    /// What Lambda bills: from handing the event over to the function's answer.
    pub fn duration(&self) -> Duration {
        self.answered.saturating_duration_since(self.handed)
    }

    /// What the caller of the API waits for: from the front door to the answer.
    pub fn latency(&self) -> Duration {
        self.answered.saturating_duration_since(self.received)
    }
}

/// An instance the host started.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    pub id: u64,
    pub function: String,
    pub spawned: Instant,
    /// Its first `GET …/invocation/next`: the end of its init.
    pub ready: Option<Instant>,
    /// Started because a request found no instance idle (not beforehand).
    pub on_demand: bool,
}

impl InstanceInfo {
    pub fn init(&self) -> Option<Duration> {
        self.ready.map(|ready| ready.saturating_duration_since(self.spawned))
    }
}

/// One line an instance wrote (stdout or stderr).
#[derive(Debug, Clone)]
pub struct LogLine {
    pub instance: u64,
    pub at: Instant,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0} is missing: build the functions first (cargo build --release)")]
    MissingBinary(PathBuf),
    #[error("{function} did not start: {reason}")]
    Start { function: String, reason: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The front door's listener, bound before the host starts, so that the functions' settings can
/// name its URL (`PUBLIC_BASE_URL`).
pub struct FrontDoor {
    listener: tokio::net::TcpListener,
    url: String,
}

impl FrontDoor {
    pub async fn bind() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok(Self { listener, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

struct Pending {
    id: String,
    event: Bytes,
    reply: oneshot::Sender<Answer>,
}

struct Answer {
    instance: u64,
    cold: bool,
    handed: Instant,
    answered: Instant,
    /// The function's response document, or why there is none.
    outcome: Result<Value, String>,
}

struct Function {
    name: String,
    queue: mpsc::UnboundedSender<Pending>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    /// Requests not taken yet, and instances waiting for one.
    queued: AtomicUsize,
    idle: AtomicUsize,
    instances: AtomicUsize,
}

struct Running {
    id: String,
    reply: oneshot::Sender<Answer>,
    handed: Instant,
    cold: bool,
}

struct Instance {
    id: u64,
    function: Arc<Function>,
    host: Arc<Inner>,
    current: Mutex<Option<Running>>,
    served: AtomicU64,
    on_demand: bool,
}

struct Inner {
    config: HostConfig,
    url: String,
    functions: HashMap<String, Arc<Function>>,
    invocations: Mutex<Vec<Invocation>>,
    instances: Mutex<Vec<InstanceInfo>>,
    logs: Mutex<Vec<LogLine>>,
    next_instance: AtomicU64,
    children: Mutex<Vec<(String, tokio::process::Child)>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The running host; dropping it stops every instance.
pub struct Host {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Host {
    pub async fn start(front: FrontDoor, config: HostConfig) -> Result<Self, HostError> {
        let mut functions = HashMap::new();
        for endpoint in ENDPOINTS {
            if functions.contains_key(endpoint.function) {
                continue;
            }
            let binary = config.binaries.join(endpoint.function);
            if !binary.is_file() {
                return Err(HostError::MissingBinary(binary));
            }
            let (queue, next) = mpsc::unbounded_channel();
            let function = Function {
                name: endpoint.function.to_owned(),
                queue,
                next: tokio::sync::Mutex::new(next),
                queued: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                instances: AtomicUsize::new(0),
            };
            functions.insert(endpoint.function.to_owned(), Arc::new(function));
        }
        std::fs::create_dir_all(&config.log_dir)?;
        let inner = Arc::new(Inner {
            config,
            url: front.url.clone(),
            functions,
            invocations: Mutex::default(),
            instances: Mutex::default(),
            logs: Mutex::default(),
            next_instance: AtomicU64::new(1),
            children: Mutex::default(),
            tasks: Mutex::default(),
        });
        let app = axum::Router::new().fallback(front_door).with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(crate::net::no_delay(front.listener), app).await;
        });
        lock(&inner.tasks).push(server);
        Ok(Self { inner })
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Starts `count` instances of every function and waits until each asks for work: the
    /// warm pool a steady load keeps, so a measurement does not start with cold starts.
    pub async fn prewarm(&self, count: usize) -> Result<(), HostError> {
        let mut names: Vec<String> = self.inner.functions.keys().cloned().collect();
        names.sort();
        for name in &names {
            for _ in 0..count {
                spawn_instance(&self.inner, &self.inner.functions[name], false).await?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let idle: usize = self.inner.functions.values().map(|f| f.idle.load(Ordering::SeqCst)).sum();
            if idle >= names.len() * count {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HostError::Start {
                    function: "(prewarm)".into(),
                    reason: format!("{idle} instances idle"),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every invocation answered so far, in the order they were received.
    pub fn invocations(&self) -> Vec<Invocation> {
        let mut all = lock(&self.inner.invocations).clone();
        all.sort_by_key(|invocation| invocation.received);
        all
    }

    pub fn instances(&self) -> Vec<InstanceInfo> {
        lock(&self.inner.instances).clone()
    }

    pub fn log_lines(&self) -> Vec<LogLine> {
        lock(&self.inner.logs).clone()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        for (_, child) in lock(&self.inner.children).iter_mut() {
            let _ = child.start_kill();
        }
    }
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn memory_mb(function: &str) -> &'static str {
    // template.yaml: argon2 needs the session function's 1024 MB; the rest run in 128 MB.
    if function == "session" { "1024" } else { "128" }
}

async fn spawn_instance(host: &Arc<Inner>, function: &Arc<Function>, on_demand: bool) -> Result<(), HostError> {
    let id = host.next_instance.fetch_add(1, Ordering::SeqCst);
    function.instances.fetch_add(1, Ordering::SeqCst);
    let instance = Arc::new(Instance {
        id,
        function: function.clone(),
        host: host.clone(),
        current: Mutex::new(None),
        served: AtomicU64::new(0),
        on_demand,
    });
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let runtime_api: SocketAddr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(instance.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(crate::net::no_delay(listener), app).await;
    });

    let config = &host.config;
    let mut command = tokio::process::Command::new(config.binaries.join(&function.name));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(config.env.iter().map(|(name, value)| (name, value)))
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &function.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb(&function.name))
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", function.name))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("instance-{id}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(taps) = &config.taps {
        let endpoints = taps.open(id).await?;
        command.env("AWS_ENDPOINT_URL_DYNAMODB", endpoints.dynamodb).env("TWILIO_API_BASE_URL", endpoints.twilio);
    }
    lock(&host.instances).push(InstanceInfo {
        id,
        function: function.name.clone(),
        spawned: Instant::now(),
        ready: None,
        on_demand,
    });
    let mut child =
        command.spawn().map_err(|err| HostError::Start { function: function.name.clone(), reason: err.to_string() })?;
    let log_path = config.log_dir.join(format!("{}.log", function.name));
    let mut tasks = vec![server];
    if let Some(stdout) = child.stdout.take() {
        tasks.push(tokio::spawn(keep_lines(host.clone(), id, stdout, log_path.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        tasks.push(tokio::spawn(keep_lines(host.clone(), id, stderr, log_path)));
    }
    lock(&host.children).push((function.name.clone(), child));
    lock(&host.tasks).extend(tasks);
    Ok(())
}

async fn keep_lines(host: Arc<Inner>, instance: u64, stream: impl AsyncRead + Unpin, path: PathBuf) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok();
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        lock(&host.logs).push(LogLine { instance, at: Instant::now(), bytes: line.len() as u64 });
        if let Some(file) = file.as_mut() {
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// Counts an instance as waiting for work while its `next` request is open, however it ends.
struct Idle<'a>(&'a Function);

impl<'a> Idle<'a> {
    fn start(function: &'a Function) -> Self {
        function.idle.fetch_add(1, Ordering::SeqCst);
        Self(function)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.idle.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn next_invocation(State(instance): State<Arc<Instance>>) -> Response {
    if instance.served.load(Ordering::SeqCst) == 0 {
        let now = Instant::now();
        if let Some(info) = lock(&instance.host.instances).iter_mut().find(|info| info.id == instance.id) {
            info.ready.get_or_insert(now);
        }
    }
    let pending = {
        let _idle = Idle::start(&instance.function);
        let mut next = instance.function.next.lock().await;
        next.recv().await
    };
    let Some(pending) = pending else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the host is stopping").into_response();
    };
    instance.function.queued.fetch_sub(1, Ordering::SeqCst);
    let served = instance.served.fetch_add(1, Ordering::SeqCst);
    let handed = Instant::now();
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + FUNCTION_TIMEOUT;
    let request_id = pending.id.clone();
    *lock(&instance.current) =
        Some(Running { id: pending.id, reply: pending.reply, handed, cold: served == 0 && instance.on_demand });
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", request_id),
        ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            format!("arn:aws:lambda:us-east-1:000000000000:function:{}", instance.function.name),
        ),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".to_owned()),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    (StatusCode::OK, headers, pending.event).into_response()
}

fn finish(instance: &Instance, id: &str, outcome: Result<Value, String>) -> StatusCode {
    let answered = Instant::now();
    let running = lock(&instance.current).take_if(|running| running.id == id);
    let Some(running) = running else { return StatusCode::BAD_REQUEST };
    let answer = Answer { instance: instance.id, cold: running.cold, handed: running.handed, answered, outcome };
    // The front door may have given up on it (the timeout): nobody is left to tell.
    let _ = running.reply.send(answer);
    StatusCode::ACCEPTED
}

async fn invocation_response(State(instance): State<Arc<Instance>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let outcome = serde_json::from_slice(&body).map_err(|err| format!("the response is not JSON: {err}"));
    finish(&instance, &id, outcome)
}

async fn invocation_error(State(instance): State<Arc<Instance>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&instance, &id, Err(String::from_utf8_lossy(&body).into_owned()))
}

async fn init_error(State(instance): State<Arc<Instance>>, body: Bytes) -> StatusCode {
    eprintln!("lambda-bench: {} failed to start: {}", instance.function.name, String::from_utf8_lossy(&body));
    StatusCode::ACCEPTED
}

/// The first row of the route table whose template `path` matches, with its path parameters.
fn route(path: &str) -> Option<(&'static shared::routes::Endpoint, Vec<(&'static str, String)>)> {
    let actual: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    ENDPOINTS.iter().find_map(|endpoint| {
        let template: Vec<&str> = endpoint.path.strip_prefix('/')?.split('/').collect();
        if template.len() != actual.len() {
            return None;
        }
        let mut parameters = Vec::new();
        for (expected, given) in template.iter().zip(&actual) {
            match expected.strip_prefix('{').and_then(|name| name.strip_suffix('}')) {
                Some(name) if !given.is_empty() => parameters.push((name, (*given).to_owned())),
                None if expected == given => {}
                _ => return None,
            }
        }
        Some((endpoint, parameters))
    })
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "message": message }).to_string()).into_response()
}

/// The payload 2.0 event API Gateway's HTTP API sends for this request.
fn event(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    route_key: &str,
    parameters: &[(&'static str, String)],
    request_id: &str,
) -> Value {
    let mut flat: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for name in headers.keys() {
        let values: Vec<&str> = headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect();
        if name == "cookie" {
            cookies
                .extend(values.iter().flat_map(|value| value.split("; ")).map(|cookie| Value::from(cookie.to_owned())));
        } else {
            flat.insert(name.as_str().to_owned(), Value::from(values.join(",")));
        }
    }
    let query = uri.query().unwrap_or_default();
    let mut parameters_of_query: Map<String, Value> = Map::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        parameters_of_query.insert(name.to_owned(), Value::from(value.to_owned()));
    }
    let host = headers.get("host").and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1");
    let domain = host.split(':').next().unwrap_or(host);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": query,
        "headers": flat,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or(domain),
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").and_then(|value| value.to_str().ok()).unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "02/Dec/2026:00:00:00 +0000",
            "timeEpoch": u64::try_from(now.as_millis()).unwrap_or_default(),
        },
        "isBase64Encoded": !body.is_empty(),
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::from(cookies);
    }
    if !parameters_of_query.is_empty() {
        event["queryStringParameters"] = Value::from(parameters_of_query);
    }
    if !parameters.is_empty() {
        let path: Map<String, Value> =
            parameters.iter().map(|(name, value)| ((*name).to_owned(), Value::from(value.clone()))).collect();
        event["pathParameters"] = Value::from(path);
    }
    if !body.is_empty() {
        event["body"] = Value::from(STANDARD.encode(body));
    }
    event
}

/// API Gateway's answer for a function's response document.
fn http_response(document: &Value) -> (StatusCode, HeaderMap, Bytes) {
    let status = document["statusCode"]
        .as_u64()
        .and_then(|code| StatusCode::from_u16(u16::try_from(code).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.append(name, value);
        }
    };
    for (name, value) in document["headers"].as_object().into_iter().flatten() {
        if let Some(value) = value.as_str() {
            add(name, value);
        }
    }
    for (name, values) in document["multiValueHeaders"].as_object().into_iter().flatten() {
        for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
            add(name, value);
        }
    }
    for cookie in document["cookies"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        add("set-cookie", cookie);
    }
    let body = document["body"].as_str().unwrap_or_default();
    let body = if document["isBase64Encoded"].as_bool() == Some(true) {
        Bytes::from(STANDARD.decode(body).unwrap_or_default())
    } else {
        Bytes::from(body.to_owned())
    };
    (status, headers, body)
}

async fn front_door(
    State(host): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let Some((endpoint, parameters)) = route(uri.path()) else {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(function) = host.functions.get(endpoint.function).cloned() else {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    };
    // API Gateway has a route per method and path; a method the table lacks has no route.
    if !endpoint.methods().any(|allowed| allowed == method.as_str()) {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let route_key = format!("{method} {}", endpoint.path);
    let request_id = new_request_id();
    let document = event(&method, &uri, &headers, &body, &route_key, &parameters, &request_id);
    let (reply, answer) = oneshot::channel();
    let pending = Pending { id: request_id, event: Bytes::from(document.to_string()), reply };
    let queued = function.queued.fetch_add(1, Ordering::SeqCst) + 1;
    if function.queue.send(pending).is_err() {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    // Lambda starts an instance when a request finds none free.
    if queued > function.idle.load(Ordering::SeqCst)
        && function.instances.load(Ordering::SeqCst) < host.config.max_instances
        && let Err(err) = spawn_instance(&host, &function, true).await
    {
        eprintln!("lambda-bench: {err}");
    }
    let call = form_value(&body, "CallSid");
    let reported = form_value(&body, "StatusCallbackEvent").or_else(|| form_value(&body, "CallStatus"));
    let conference = parameters.iter().find(|(name, _)| *name == "conference_id").map(|(_, value)| value.clone());
    let Ok(Ok(answer)) = tokio::time::timeout(FUNCTION_TIMEOUT + Duration::from_secs(20), answer).await else {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let (status, response_headers, response_body) = match &answer.outcome {
        Ok(document) => http_response(document),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            Bytes::from_static(b"{\"message\":\"Internal Server Error\"}"),
        ),
    };
    let xml = response_headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("xml"));
    lock(&host.invocations).push(Invocation {
        function: function.name.clone(),
        route: route_key,
        uri: uri.to_string(),
        call,
        conference,
        event: reported,
        instance: answer.instance,
        cold: answer.cold,
        received,
        handed: answer.handed,
        answered: answer.answered,
        status: status.as_u16(),
        twiml: xml.then(|| String::from_utf8_lossy(&response_body).into_owned()),
    });
    (status, response_headers, response_body).into_response()
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_the_function_of_their_route_with_its_path_parameters() {
        let (endpoint, parameters) = route("/conference/CA1/agents/agent1/status").unwrap();
        assert_eq!(endpoint.function, "conference-events");
        assert_eq!(parameters, [("conference_id", "CA1".to_owned()), ("agent_id", "agent1".to_owned())]);
        assert_eq!(route("/conference/connect/client").unwrap().0.function, "conference-connect-client");
        assert_eq!(route("/conference/agent1/call").unwrap().0.function, "conference-call-agent");
        assert!(route("/nowhere/at/all").is_none());
    }

    #[test]
    fn the_event_carries_cookies_apart_and_the_body_in_base64_as_api_gateway_does() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:9000"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        let uri: Uri = "/conference/wait?held=1".parse().unwrap();
        let body = Bytes::from_static(b"CallSid=CA1");
        let event = event(&Method::POST, &uri, &headers, &body, "POST /conference/wait", &[], "req-1");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["rawQueryString"], "held=1");
        assert_eq!(event["body"], STANDARD.encode("CallSid=CA1"));
        assert_eq!(event["requestContext"]["domainName"], "127.0.0.1");
        let request = lambda_http::request::from_str(&event.to_string());
        assert!(request.is_ok(), "lambda_http reads it: {request:?}");
    }

    #[test]
    fn a_response_document_becomes_the_http_answer_with_every_cookie() {
        let document = json!({
            "statusCode": 303,
            "headers": {"location": "/dashboard"},
            "cookies": ["s=1; Path=/", "t=2; Path=/"],
            "body": "",
            "isBase64Encoded": false,
        });
        let (status, headers, _) = http_response(&document);
        assert_eq!(status, 303);
        assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(headers["location"], "/dashboard");
    }
}
