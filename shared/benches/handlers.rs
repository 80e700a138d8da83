//! Per-request cost of every endpoint, in process, as a warm function serves it: API Gateway v2
//! event JSON (with a real signature), read as lambda_runtime reads it → `shared::lambda`, the
//! adapter every function runs → handler over the memory stores and a dialer that answers at
//! once → the response document. The functions' logging is on, into a sink (JSON lines, as
//! deployed, with AWS_LAMBDA_LOG_FORMAT=JSON, which scripts/bench.sh sets). That is all a warm Lambda does besides the runtime's own HTTP
//! round trip.
//!
//! `cargo bench -p shared --features testkit --bench handlers -- [--only NAME] [--iterations N]`
//! prints p50/p99/max per endpoint; `scripts/bench.sh` adds instruction counts from callgrind.
//! Budget: p99 ≤ 20 µs for every TwiML endpoint and for token minting.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: a failed setup ends the run")]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lambda_http::{Body, Request, Response};
use shared::app::Ports;
use shared::domain::{AgentId, CallSid, PhoneNumber, SourceAddress, Ticket, TicketId};
use shared::handlers::{
    call_connect, conference_call_agent, conference_connect_agent, conference_connect_client, conference_events,
    conference_wait, tickets, token, voicemail,
};
use shared::store::TicketStore;
use shared::testkit::{self, TestApp, inbound_call_params, sid};
use shared::twilio::{CallUpdate, Dialer, OutboundCall, TwilioError, signature};
use shared::{App, call_flow, lambda};

const BUDGET: Duration = Duration::from_micros(20);
const TICKET_NUMBER: &str = "+15551234567";

/// Twilio's REST API answering instantly: the benchmark measures Warmline, not the network.
struct InstantDialer;

#[async_trait]
impl Dialer for InstantDialer {
    async fn place_call(&self, _: &OutboundCall) -> Result<CallSid, TwilioError> {
        CallSid::parse("CA00000000000000000000000000000001").ok_or(TwilioError::MalformedSid)
    }

    async fn update_call(&self, _: &CallSid, _: &CallUpdate) -> Result<(), TwilioError> {
        Ok(())
    }

    async fn update_participant(
        &self,
        _: &str,
        _: &CallSid,
        _: &shared::twilio::ParticipantUpdate,
    ) -> Result<(), TwilioError> {
        Ok(())
    }

    async fn recording(&self, _: &str) -> Result<shared::twilio::Recording, TwilioError> {
        Ok(shared::twilio::Recording { content_type: "audio/mpeg".into(), audio: Vec::new() })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ConferenceWait,
    ConferenceConnectClient,
    ConferenceConnectAgent,
    ConferenceEvents,
    VoicemailChoice,
    CallConnectAgent,
    CallConnectCustomer,
    TokenAgent,
    TokenCustomer,
    ConferenceCallAgent,
    TicketsCreate,
    TicketsList,
    ForgedWebhook,
    HugeForgedWebhook,
}

impl Endpoint {
    const ALL: [Self; 14] = [
        Self::ConferenceWait,
        Self::ConferenceConnectClient,
        Self::ConferenceConnectAgent,
        Self::ConferenceEvents,
        Self::VoicemailChoice,
        Self::CallConnectAgent,
        Self::CallConnectCustomer,
        Self::TokenAgent,
        Self::TokenCustomer,
        Self::ConferenceCallAgent,
        Self::TicketsCreate,
        Self::TicketsList,
        Self::ForgedWebhook,
        Self::HugeForgedWebhook,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ConferenceWait => "conference-wait",
            Self::ConferenceConnectClient => "conference-connect-client",
            Self::ConferenceConnectAgent => "conference-connect-agent",
            Self::ConferenceEvents => "conference-events (leave)",
            Self::VoicemailChoice => "voicemail (choice)",
            Self::CallConnectAgent => "call-connect (agent → ticket)",
            Self::CallConnectCustomer => "call-connect (customer)",
            Self::TokenAgent => "token (agent)",
            Self::TokenCustomer => "token (customer)",
            Self::ConferenceCallAgent => "conference-call-agent",
            Self::TicketsCreate => "tickets (POST)",
            Self::TicketsList => "tickets (GET, 20)",
            Self::ForgedWebhook => "forged webhook (16 KiB, 1,000 names)",
            Self::HugeForgedWebhook => "forged webhook (308 KB, 40,000 names)",
        }
    }

    /// The budget applies to what Twilio waits on and to token minting.
    fn budgeted(self) -> bool {
        !matches!(
            self,
            Self::ConferenceCallAgent
                | Self::TicketsCreate
                | Self::TicketsList
                | Self::ForgedWebhook
                | Self::HugeForgedWebhook
        )
    }

    /// A request Twilio makes in a call (a genuine one: the forged ones are attacks), held to
    /// the webhooks' instruction budget. Not an agent's call to a customer: it waits on a REST
    /// request to Twilio of its own (a round trip of some 100 ms, next to which its CPU is
    /// noise); `scripts/budgets.py` still holds its count to its baseline.
    fn twilio_webhook(self) -> bool {
        matches!(
            self,
            Self::ConferenceWait
                | Self::ConferenceConnectClient
                | Self::ConferenceConnectAgent
                | Self::ConferenceEvents
                | Self::VoicemailChoice
                | Self::CallConnectCustomer
        )
    }

    /// What the store holds before these requests in production: each browser customer fetched
    /// their Access Token first, which records the address they call from.
    fn prepare(self, app: &App, runtime: &tokio::runtime::Runtime, count: usize) {
        if !matches!(self, Self::CallConnectCustomer) {
            return;
        }
        runtime.block_on(async {
            for n in 0..count {
                let address = SourceAddress::of(Ipv4Addr::from(0x0a00_0000 + u32::try_from(n).unwrap()).into());
                let identity = customer_identity(n);
                call_flow::customer_token_issued(app, &identity, Some(address), testkit::NOW + 3600).await.unwrap();
            }
        });
    }

    /// Distinct requests, so a conference is created each time rather than found as a retry.
    fn events(self, count: usize, cookie: &str) -> Vec<String> {
        (0..count)
            .map(|n| {
                let call_sid = sid(u32::try_from(n).unwrap_or(u32::MAX) + 1);
                match self {
                    Self::ConferenceWait => testkit::signed_webhook_json("/conference/wait", &[("CallSid", &call_sid)]),
                    Self::ConferenceConnectClient => {
                        let params = inbound_call_params(&call_sid);
                        testkit::signed_webhook_json("/conference/connect/client", &testkit::borrowed(&params))
                    }
                    Self::ConferenceConnectAgent => testkit::signed_webhook_json(
                        &format!("/conference/{}/connect/agent1", sid(0)),
                        &[("CallSid", &call_sid), ("From", testkit::NUMBER), ("To", "client:agent1")],
                    ),
                    // Someone leaves the live conference: a participant lookup, nothing changes.
                    Self::ConferenceEvents => testkit::signed_webhook_json(
                        &format!("/conference/{}/events", sid(0)),
                        &[
                            ("CallSid", &call_sid),
                            ("FriendlyName", &sid(0)),
                            ("StatusCallbackEvent", "participant-leave"),
                        ],
                    ),
                    // A caller offered voicemail presses 1: the prompt and <Record>, no store access.
                    Self::VoicemailChoice => testkit::signed_webhook_json(
                        &format!("/voicemail/{call_sid}/choice"),
                        &[("CallSid", &call_sid), ("Digits", "1")],
                    ),
                    Self::CallConnectAgent => testkit::signed_webhook_json(
                        "/call/agent",
                        &[
                            ("ApplicationSid", testkit::AGENT_APP_SID),
                            ("CallSid", &call_sid),
                            ("From", "client:agent1"),
                            ("phoneNumber", TICKET_NUMBER),
                        ],
                    ),
                    // A customer each time: one has one browser call at a time.
                    Self::CallConnectCustomer => testkit::signed_webhook_json(
                        "/call/connect",
                        &[
                            ("ApplicationSid", testkit::CUSTOMER_APP_SID),
                            ("CallSid", &call_sid),
                            ("From", &format!("client:{}", customer_identity(n))),
                        ],
                    ),
                    Self::TokenAgent => agent_event("POST", "/token", "{}", cookie),
                    Self::TokenCustomer => json_event("POST", "/token", "{}"),
                    Self::ConferenceCallAgent => agent_event("POST", "/conference/agent1/call", "{}", cookie),
                    Self::TicketsCreate => json_event(
                        "POST",
                        "/tickets",
                        r#"{"name":"Ada Lovelace","phone_number":"+15551234567","description":"My mallet broke."}"#,
                    ),
                    Self::TicketsList => agent_event("GET", "/tickets?limit=20", "", cookie),
                    Self::ForgedWebhook => forged_webhook_event(1000, 16),
                    Self::HugeForgedWebhook => forged_webhook_event(40_000, 0),
                }
            })
            .collect()
    }

    async fn call(self, app: &App, req: Request) -> Response<Body> {
        let response = match self {
            Self::ConferenceWait | Self::ForgedWebhook | Self::HugeForgedWebhook => {
                conference_wait::handle(app, req).await
            }
            Self::ConferenceConnectClient => conference_connect_client::handle(app, req).await,
            Self::ConferenceConnectAgent => conference_connect_agent::handle(app, req).await,
            Self::ConferenceEvents => conference_events::handle(app, req).await,
            Self::VoicemailChoice => voicemail::handle(app, req).await,
            Self::CallConnectAgent | Self::CallConnectCustomer => call_connect::handle(app, req).await,
            Self::TokenAgent | Self::TokenCustomer => token::handle(app, req).await,
            Self::ConferenceCallAgent => conference_call_agent::handle(app, req).await,
            Self::TicketsCreate | Self::TicketsList => tickets::handle(app, req).await,
        };
        response.unwrap_or_else(|err| panic!("{}: handlers never fail: {err}", self.name()))
    }
}

/// From a page on the site, as browsers send it.
fn json_event(method: &str, path: &str, body: &str) -> String {
    testkit::event_json(
        method,
        path,
        &[("content-type", "application/json"), ("origin", testkit::BASE)],
        body.as_bytes(),
    )
}

/// From agent1's dashboard, signed in with `cookie` (`session_cookie`).
fn agent_event(method: &str, path: &str, body: &str, cookie: &str) -> String {
    let headers = [("content-type", "application/json"), ("origin", testkit::BASE), ("cookie", cookie)];
    testkit::event_json(method, path, &headers, body.as_bytes())
}

/// agent1's session cookie on `app`, as `POST /login` sets it.
fn session_cookie(app: &App, runtime: &tokio::runtime::Runtime) -> String {
    let agent1 = AgentId::parse("agent1").unwrap();
    let agent = runtime.block_on(app.agents.agent(&agent1)).unwrap().unwrap();
    format!("{}={}", testkit::SESSION_COOKIE, runtime.block_on(app.sessions.issue(&agent, testkit::NOW)).unwrap())
}

/// `count` distinct names, each with a value that brings the pair to about `width` bytes. 1,000
/// of 16 bytes is the largest body a webhook may bring before it is refused unread (just under
/// 16 KiB): the most hashing anyone without the Auth Token can make us do. 40,000 of no width
/// is the reported attack (308 KB).
fn forged_params(count: usize, width: usize) -> Vec<(String, String)> {
    (0..count).map(|n| (format!("a{n}"), "x".repeat(width.saturating_sub(format!("a{n}=&").len())))).collect()
}

/// `forged_params` to the waitUrl with a signature that is not Twilio's: answered 403, or 413
/// when the body is over the limits.
fn forged_webhook_event(count: usize, width: usize) -> String {
    let params = forged_params(count, width);
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let headers =
        [("content-type", "application/x-www-form-urlencoded"), ("x-twilio-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")];
    testkit::event_json("POST", "/conference/wait", &headers, body.as_bytes())
}

const SIGNATURE_CHECK: &str = "signature check (16 KiB, 1,000 names)";

/// `signature::is_valid` alone, on parameters already parsed: the hashing a forged request costs.
#[inline(never)]
fn serve_requests_signature_only(iterations: usize) -> Vec<Duration> {
    let params = forged_params(1000, 16);
    let url = format!("{}/conference/wait", testkit::BASE);
    (0..iterations)
        .map(|_| {
            let started = Instant::now();
            let valid = signature::is_valid(
                black_box(testkit::AUTH_TOKEN),
                black_box(&url),
                black_box(&params),
                "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            );
            assert!(!black_box(valid));
            started.elapsed()
        })
        .collect()
}

/// One invocation as `shared::lambda::run` serves it in a function: the event read as
/// lambda_runtime reads every payload (from its bytes, through serde_path_to_error), the request
/// built, the handler, and the document sent back to the runtime.
fn customer_identity(n: usize) -> String {
    format!("customer_{n:016x}")
}

async fn invocation(endpoint: Endpoint, app: &App, event: &str) -> Vec<u8> {
    let payload: lambda::Payload =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(event.as_bytes())).unwrap();
    let invocation = lambda_http::LambdaEvent::new(payload, lambda_http::Context::default());
    let handler = |req: Request| async move { Ok::<_, lambda_http::Error>(endpoint.call(app, req).await) };
    let document = lambda::serve(handler, invocation).await.unwrap();
    serde_json::to_vec(&document).unwrap()
}

/// An app whose stores hold what the endpoints need: a live conference agent 1 is in, and 40
/// tickets, one of them for the number agents call.
fn app(runtime: &tokio::runtime::Runtime) -> App {
    let kit = TestApp::new();
    runtime.block_on(async {
        let now = testkit::NOW;
        kit.available("agent1").await;
        kit.customer_arrives(&sid(0)).await;
        assert!(kit.agent_answers(&sid(0), "agent1", &testkit::placed_sid(0)).await.contains("<Conference"));
        for n in 0..40 {
            let phone_number = if n == 0 { TICKET_NUMBER.to_owned() } else { format!("+1555000{n:04}") };
            let ticket = Ticket {
                id: TicketId::generate(now * 1000 + n).unwrap(),
                name: format!("Customer {n}"),
                phone_number: PhoneNumber::parse(&phone_number).ok(),
                description: "The mallet's head came off.".into(),
                created_at: "2027-01-15T08:00:00Z".into(),
                customer: None,
                voicemail: None,
                outside_dial_countries: false,
            };
            kit.tickets.create_ticket(&ticket).await.unwrap();
        }
    });
    App::new(testkit::config_with(&[]), Ports { dialer: Arc::new(InstantDialer), ..kit.ports() })
}

struct Options {
    only: Option<String>,
    iterations: usize,
    warmup: bool,
    list: bool,
    list_webhooks: bool,
}

fn options() -> Options {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it, and
    // then a few unoptimised requests per endpoint show it still works, with no timing to read.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let iterations = if benchmarking { 20_000 } else { 20 };
    let mut options = Options { only: None, iterations, warmup: benchmarking, list: false, list_webhooks: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => options.only = args.next(),
            "--iterations" => {
                options.iterations = args.next().and_then(|n| n.parse().ok()).unwrap_or(options.iterations)
            }
            "--no-warmup" => options.warmup = false,
            "--list" => options.list = true,
            "--list-webhooks" => options.list_webhooks = true,
            // --bench, and filters we don't have.
            _ => {}
        }
    }
    options
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

fn micros(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

/// Everything a warm Lambda does per request. Its name is what `scripts/bench.sh` tells callgrind
/// to count inside, so building the events is left out of the instruction counts.
#[inline(never)]
fn serve_requests(
    endpoint: Endpoint,
    app: &App,
    runtime: &tokio::runtime::Runtime,
    events: &[String],
) -> Vec<Duration> {
    events
        .iter()
        .map(|event| {
            let started = Instant::now();
            black_box(runtime.block_on(invocation(endpoint, app, event)));
            started.elapsed()
        })
        .collect()
}

fn main() {
    let options = options();
    if options.list {
        Endpoint::ALL.iter().for_each(|endpoint| println!("{}", endpoint.name()));
        println!("{SIGNATURE_CHECK}");
        return;
    }
    // What Twilio requests in a call, held to the instructions budget by scripts/bench.sh.
    if options.list_webhooks {
        Endpoint::ALL.iter().filter(|e| e.twilio_webhook()).for_each(|endpoint| println!("{}", endpoint.name()));
        return;
    }
    // The functions' logging (`telemetry::init`), into a sink: what the log lines cost is counted
    // (JSON, as deployed, when AWS_LAMBDA_LOG_FORMAT=JSON, as scripts/bench.sh sets it).
    shared::telemetry::init_with_writer(std::io::sink);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let endpoints: Vec<Endpoint> =
        Endpoint::ALL.into_iter().filter(|e| options.only.as_deref().is_none_or(|only| e.name() == only)).collect();
    let signature_check = options.only.as_deref().is_none_or(|only| only == SIGNATURE_CHECK);
    if endpoints.is_empty() && !signature_check {
        let mut names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        names.push(SIGNATURE_CHECK);
        panic!("--only takes one of: {}", names.join(", "));
    }

    println!("{:<32} {:>10} {:>10} {:>10}  budget p99 ≤ 20 µs", "endpoint", "p50", "p99", "max");
    let mut over_budget = 0;
    for endpoint in endpoints {
        let app = app(&runtime);
        let warmup = if options.warmup { options.iterations / 10 } else { 0 };
        endpoint.prepare(&app, &runtime, warmup + options.iterations);
        let events = endpoint.events(warmup + options.iterations, &session_cookie(&app, &runtime));
        let mut samples = serve_requests(endpoint, &app, &runtime, &events);
        samples.drain(..warmup);
        samples.sort_unstable();
        let p99 = percentile(&samples, 0.99);
        let verdict = match (endpoint.budgeted(), p99 <= BUDGET) {
            (false, _) => "not budgeted",
            (true, true) => "within",
            (true, false) => {
                over_budget += 1;
                "OVER"
            }
        };
        println!(
            "{:<32} {:>10} {:>10} {:>10}  {verdict}",
            endpoint.name(),
            micros(percentile(&samples, 0.50)),
            micros(p99),
            micros(samples.last().copied().unwrap_or_default())
        );
    }
    if signature_check {
        let warmup = if options.warmup { options.iterations / 10 } else { 0 };
        let mut samples = serve_requests_signature_only(warmup + options.iterations);
        samples.drain(..warmup);
        samples.sort_unstable();
        println!(
            "{SIGNATURE_CHECK:<32} {:>10} {:>10} {:>10}  not budgeted",
            micros(percentile(&samples, 0.50)),
            micros(percentile(&samples, 0.99)),
            micros(samples.last().copied().unwrap_or_default())
        );
    }
    if over_budget > 0 {
        println!("{over_budget} endpoint(s) over budget");
    }
}
