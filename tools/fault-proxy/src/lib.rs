//! A fault layer for tests: an HTTP/1.1 proxy in front of one upstream (the DynamoDB emulator, a
//! fake Twilio REST API) that can be switched at runtime from passing requests through to failing
//! them the ways the real services fail: throttling documents, 5xx and 429, reset connections, and
//! connections that are accepted and never answered. Never deployed.
//!
//! It can also make a local upstream as slow as the real one (`set_latency`): loopback answers in
//! microseconds, DynamoDB in a few milliseconds and Twilio's REST API in a few hundred, and what
//! a caller waits for depends on which of those stand between them and their answer.
//!
//! Every request is read in full before its fault applies, so a client always sees the failure
//! after it has sent everything, as it would from a real service. Faults apply per request, also
//! to a connection the client keeps in its pool, so switching takes effect at the next request.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards it to the upstream and returns the upstream's answer.
    PassThrough,
    /// Answers HTTP 400 with a DynamoDB error document, as DynamoDB throttles.
    DynamoDb(DynamoDbError),
    /// Answers this status with a small JSON document (500, 503, 429…).
    Status(u16),
    /// Closes the connection with a TCP RST without answering.
    Reset,
    /// Keeps the connection open and never answers.
    Blackhole,
    /// Forwards it, so the upstream acts on it, then resets the connection instead of answering:
    /// the write happened but the client cannot know.
    LoseReply,
}

/// The throttling errors DynamoDB answers; the AWS SDK classifies both as throttling (retried
/// with the throttling backoff), by the `__type` of the error document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamoDbError {
    ProvisionedThroughputExceeded,
    Throttling,
}

impl DynamoDbError {
    /// The error code the SDK reports (`ProvideErrorMetadata::code`).
    pub fn code(self) -> &'static str {
        match self {
            Self::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            Self::Throttling => "ThrottlingException",
        }
    }

    /// The `__type` DynamoDB sends: a namespace, `#`, then the code.
    fn type_name(self) -> String {
        let namespace = match self {
            Self::ProvisionedThroughputExceeded => "com.amazonaws.dynamodb.v20120810",
            Self::Throttling => "com.amazon.coral.availability",
        };
        format!("{namespace}#{}", self.code())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PassThrough => f.write_str("pass-through"),
            Self::DynamoDb(error) => f.write_str(error.code()),
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Reset => f.write_str("connection reset"),
            Self::Blackhole => f.write_str("blackhole"),
            Self::LoseReply => f.write_str("lost reply"),
        }
    }
}

/// The fault in force, possibly for a limited number of requests.
struct Plan {
    fault: Fault,
    /// `None`: until changed. `Some(n)`: `fault` for the next `n` requests, then pass-through.
    remaining: Option<u32>,
}

impl Plan {
    fn take(&mut self) -> Fault {
        match &mut self.remaining {
            None => self.fault,
            Some(0) => Fault::PassThrough,
            Some(n) => {
                *n -= 1;
                self.fault
            }
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<Plan>,
    /// When each request arrived, in order.
    arrivals: Mutex<Vec<Instant>>,
    /// Added to every request, in microseconds (`set_latency`).
    latency_us: AtomicU64,
    stopped: watch::Receiver<bool>,
}

impl Shared {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        // A poisoned lock only means a test panicked elsewhere; the plan itself is always whole.
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arrivals(&self) -> std::sync::MutexGuard<'_, Vec<Instant>> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy on a loopback port. Dropping it closes every connection it holds open.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`, passing everything through until told otherwise.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(Plan { fault: Fault::PassThrough, remaining: None }),
            arrivals: Mutex::new(Vec::new()),
            latency_us: AtomicU64::new(0),
            stopped,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, accept, stop })
    }

    /// Starts a proxy to the `http://host:port` origin of `url`.
    pub async fn in_front_of(url: &str) -> io::Result<Self> {
        let authority = url.strip_prefix("http://").unwrap_or(url);
        let authority = authority.split('/').next().unwrap_or(authority);
        let upstream = tokio::net::lookup_host(authority)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{authority} did not resolve")))?;
        Self::start(upstream).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients use instead of the upstream's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to every request from now on.
    pub fn set(&self, fault: Fault) {
        *self.shared.plan() = Plan { fault, remaining: None };
    }

    /// Applies `fault` to the next `requests` requests, then passes through again: a transient
    /// fault that a client's retry should get past.
    pub fn set_next(&self, fault: Fault, requests: u32) {
        *self.shared.plan() = Plan { fault, remaining: Some(requests) };
    }

    pub fn pass_through(&self) {
        self.set(Fault::PassThrough);
    }

    /// Delays every request by `latency` from now on, whatever its fault, until set again
    /// (`Duration::ZERO`: none). The delay comes before the request goes upstream, so the
    /// upstream acts on it as late as a distant service would: a call that Twilio's REST API
    /// places 250 ms after it was asked starts ringing 250 ms later, not at once.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(micros, Ordering::Relaxed);
    }

    /// The latency `set_latency` last set.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.shared.latency_us.load(Ordering::Relaxed))
    }

    /// How many requests reached the proxy so far, whatever was done with them.
    pub fn requests(&self) -> usize {
        self.shared.arrivals().len()
    }

    /// When each request so far arrived: the gaps between attempts are a client's timeouts and
    /// backoffs, measured without the upstream's own latency.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.shared.arrivals().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Ends the connections a blackhole holds; their clients see them close.
        self.stop.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Nagle would add up to 40 ms per answer: noise in tests that time answers.
                stream.set_nodelay(true).ok();
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
            // Out of file descriptors, typically: let some connections close, then go on.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ResettableStream { stream, reset: reset.clone() });
    let mut stopped = shared.stopped.clone();
    let service = hyper::service::service_fn(move |request| answer(shared.clone(), reset.clone(), request));
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        // An error here is a fault this proxy injected, or a client that went away.
        _ = connection => {}
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

async fn answer(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    shared.arrivals().push(Instant::now());
    let fault = shared.plan().take();
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(http_body_util::Collected::to_bytes) else {
        return Ok(json_reply(StatusCode::BAD_REQUEST, "application/json", r#"{"message":"unreadable body"}"#.into()));
    };
    let latency = Duration::from_micros(shared.latency_us.load(Ordering::Relaxed));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Fault::PassThrough => forward(shared.upstream, parts, body).await.unwrap_or_else(|_| bad_gateway()),
        Fault::DynamoDb(error) => dynamodb_error(error),
        Fault::Status(status) => status_reply(status),
        Fault::Reset => reset_connection(&reset),
        Fault::Blackhole => std::future::pending().await,
        Fault::LoseReply => {
            forward(shared.upstream, parts, body).await.ok();
            reset_connection(&reset)
        }
    };
    Ok(response)
}

/// Marks the connection for reset; hyper's write of the returned (empty) answer then fails
/// before a byte leaves, and hyper drops the connection.
fn reset_connection(reset: &AtomicBool) -> Response<Full<Bytes>> {
    reset.store(true, Ordering::SeqCst);
    Response::new(Full::new(Bytes::new()))
}

type ForwardError = Box<dyn std::error::Error + Send + Sync>;

/// One fresh upstream connection per request: no pool whose state could outlive a fault.
async fn forward(
    upstream: SocketAddr,
    mut parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, ForwardError> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true).ok();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    strip_hop_by_hop(&mut parts.headers);
    let response = sender.send_request(Request::from_parts(parts, Full::new(body))).await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    // The body is now whole, so hyper frames it again with a Content-Length.
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"] {
        headers.remove(HeaderName::from_static(name));
    }
}

fn json_reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn dynamodb_error(error: DynamoDbError) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "__type": error.type_name(),
        "message": "Injected by fault-proxy",
    });
    let mut response = json_reply(StatusCode::BAD_REQUEST, "application/x-amz-json-1.0", body.to_string());
    response
        .headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("FAULTPROXY0000000000000000000000000000000000000000000"));
    response
}

/// A 5xx or 429 with a body in Twilio's error shape, which DynamoDB clients read as an unknown
/// error (and classify by status code).
fn status_reply(status: u16) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = status.as_u16();
    let body = serde_json::json!({ "code": code, "message": "Injected by fault-proxy", "status": code });
    json_reply(status, "application/json", body.to_string())
}

fn bad_gateway() -> Response<Full<Bytes>> {
    json_reply(StatusCode::BAD_GATEWAY, "application/json", r#"{"message":"fault-proxy: upstream unreachable"}"#.into())
}

/// A TCP stream that fails every read and write once its connection is marked for reset, and
/// then closes with RST rather than FIN.
struct ResettableStream {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn check(&self) -> io::Result<()> {
        if !self.reset.load(Ordering::SeqCst) {
            return Ok(());
        }
        // A zero linger makes close() send RST at once; the deprecation is about non-zero
        // lingers blocking the runtime thread in close(), which a zero linger never does.
        #[allow(deprecated)]
        self.stream.set_linger(Some(Duration::ZERO)).ok();
        Err(io::Error::from(io::ErrorKind::ConnectionReset))
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(err) = this.check() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(err) = this.check() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(err) = this.check() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(err) = this.check() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(err) = this.check() {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// A loopback address where TCP connections are never established: its listen queue is full,
/// so the kernel drops every further SYN and `connect` hangs. Tests a client's connect timeout.
pub struct StalledConnect {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl StalledConnect {
    pub async fn start() -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind((Ipv4Addr::LOCALHOST, 0).into())?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        let mut queued = Vec::new();
        // Linux queues backlog + 1 connections that nobody accepts; the first connect that
        // stalls shows the queue is full.
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => queued.push(stream),
                Ok(Err(err)) => return Err(err),
                Err(_) => return Ok(Self { addr, _listener: listener, _queued: queued }),
            }
        }
        Err(io::Error::other("the listen queue never filled up, so connects would not stall"))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
