//! What the fault tests share: the emulator's tables, a fake Twilio REST API, production-like
//! clients pointed at fault proxies, and a reading of the TwiML an endpoint answers.
#![allow(dead_code, reason = "each test binary uses a different part of this module")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a setup that fails is a failed test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::retry::RetryPartition;
use aws_sdk_dynamodb::config::{Credentials, Region};
use fault_proxy::FaultProxy;
use lambda_http::{Body, Request, Response};
use shared::App;
use shared::app::{Ports, SystemClock};
use shared::store::dynamo::{DynamoCallStore, DynamoTicketStore};
use shared::testkit::{TestApp, config_with};
use shared::twilio::TwilioRestClient;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The bound on every answer to Twilio, whatever fails behind it.
pub const ANSWER_BOUND: Duration = Duration::from_secs(3);

/// The moto server `make test` starts. Like the storage tests in `shared`, a missing emulator
/// fails the test: a fault test that silently skips proves nothing.
pub fn dynamodb_endpoint() -> String {
    shared::test_support::emulator_endpoint()
}

pub struct Tables {
    pub calls: String,
    pub tickets: String,
    /// Straight to the emulator, past any proxy: to check what was really stored.
    pub direct: aws_sdk_dynamodb::Client,
}

/// Fresh tables from `template.yaml`, created by the script `make dev` and the storage tests use.
impl Tables {
    /// Empties the Calls table, so the next case meets no caller waiting and no agent free but
    /// its own (the queue and the free agents are the whole table's).
    pub async fn clear_calls(&self) {
        let scan = self.direct.scan().table_name(&self.calls).consistent_read(true).send().await.unwrap();
        for item in scan.items() {
            let key = ["pk", "sk"].map(|name| (name.to_owned(), item[name].clone()));
            self.direct.delete_item().table_name(&self.calls).set_key(Some(key.into())).send().await.unwrap();
        }
    }
}

pub async fn emulator_tables() -> Tables {
    let tables = shared::test_support::emulator_tables().await;
    Tables { calls: tables.name("CallsTable"), tickets: tables.name("TicketsTable"), direct: tables.client.clone() }
}

/// A DynamoDB client built the way `App::from_env` builds it (same loader, timeouts and
/// retries), aimed at `endpoint`. Each gets its own retry partition, as a fresh Lambda instance
/// has its own retry budget; the default partition is shared by every client in the process.
pub async fn production_dynamodb(endpoint: &str, partition: &str) -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(shared::app::dynamodb_timeouts())
        .retry_config(shared::app::dynamodb_retries())
        .http_client(shared::aws_http::client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "fault-proxy tests"))
        .load()
        .await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .retry_partition(RetryPartition::new(partition.to_owned()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Twilio's REST API as far as Warmline uses it: placing calls (each gets a fresh SID) and
/// updating them.
pub struct FakeTwilio {
    pub server: MockServer,
}

struct NewCall;

impl wiremock::Respond for NewCall {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        static PLACED: AtomicU32 = AtomicU32::new(0);
        let sid = format!("CA{:032x}", 0xfa17_0000_u64 + u64::from(PLACED.fetch_add(1, Ordering::Relaxed)));
        ResponseTemplate::new(201).set_body_json(serde_json::json!({ "sid": sid, "status": "queued" }))
    }
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/2010-04-01/Accounts/AC[0-9a-f]{32}/Calls\.json$"))
            .respond_with(NewCall)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/2010-04-01/Accounts/AC[0-9a-f]{32}/Calls/CA[0-9a-f]{32}\.json$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "status": "canceled" })))
            .mount(&server)
            .await;
        Self { server }
    }

    /// The form of every request that reached it for `path_suffix` (`Calls.json`, or a call's
    /// own `Calls/<sid>.json`).
    pub async fn requests_to(&self, path_suffix: &str) -> Vec<Vec<(String, String)>> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|request| request.url.path().ends_with(path_suffix))
            .map(|request| form_urlencoded_pairs(&request.body))
            .collect()
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes.get(i + 1..i + 3).and_then(|hex| std::str::from_utf8(hex).ok())
            && let Ok(byte) = u8::from_str_radix(byte, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which upstream a fault is injected in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    DynamoDb,
    Twilio,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DynamoDb => "DynamoDB",
            Self::Twilio => "Twilio",
        })
    }
}

/// The real App, with the real DynamoDB stores and Twilio client, each behind its own fault
/// proxy. Its roster is its own, so rigs sharing tables never meet in an agent's record.
pub struct Rig {
    pub app: App,
    pub dynamodb: FaultProxy,
    pub twilio: FaultProxy,
    pub fake_twilio: FakeTwilio,
    pub agents: [String; 2],
}

impl Rig {
    pub async fn new(tables: &Tables, case: u32) -> Self {
        let dynamodb = FaultProxy::in_front_of(&dynamodb_endpoint()).await.unwrap();
        let fake_twilio = FakeTwilio::start().await;
        let twilio = FaultProxy::start(*fake_twilio.server.address()).await.unwrap();
        let agents = [format!("case{case}first"), format!("case{case}second")];
        let twilio_url = twilio.url();
        let config = config_with(&[
            ("TWILIO_API_BASE_URL", &twilio_url),
            ("CALLS_TABLE", &tables.calls),
            ("TICKETS_TABLE", &tables.tickets),
        ]);
        let client = production_dynamodb(&dynamodb.url(), &format!("fault-case-{case}")).await;
        let dialer = TwilioRestClient::from_config(&config.twilio).unwrap();
        // Agents' accounts stay in memory: sign-in is not what these faults are about.
        let kit = TestApp::new();
        for agent in &agents {
            kit.enroll(agent).await;
        }
        let ports = Ports {
            calls: Arc::new(DynamoCallStore::new(client.clone(), tables.calls.clone())),
            tickets: Arc::new(DynamoTicketStore::new(client, tables.tickets.clone())),
            dialer: Arc::new(dialer),
            clock: Arc::new(SystemClock),
            ..kit.ports()
        };
        Self { app: App::new(config, ports), dynamodb, twilio, fake_twilio, agents }
    }

    /// `agent` says they are available, through the call flow (and the proxies).
    pub async fn available(&self, agent: &str) {
        let agent = shared::domain::AgentId::parse(agent).unwrap();
        let links = shared::testkit::links();
        shared::call_flow::agent_says(&self.app, &links, &agent, shared::domain::Availability::Available)
            .await
            .unwrap();
    }

    /// What the token `POST /token` issues to `agent` passes with each of their browser calls.
    pub async fn agent_session(&self, agent: &str) -> String {
        let agent = shared::domain::AgentId::parse(agent).unwrap();
        let account = self.app.agents.agent(&agent).await.unwrap().unwrap();
        let expires_at = self.app.clock.now() + 600;
        let params = shared::call_flow::agent_token_issued(&self.app, &account, expires_at).await.unwrap();
        params[shared::call_flow::AGENT_SESSION_PARAM].as_str().unwrap().to_owned()
    }

    pub fn proxy(&self, side: Side) -> &FaultProxy {
        match side {
            Side::DynamoDb => &self.dynamodb,
            Side::Twilio => &self.twilio,
        }
    }
}

/// An answer and how long it took, wall clock.
pub struct Timed {
    pub response: Response<Body>,
    pub elapsed: Duration,
}

pub async fn timed<F>(request: F) -> Timed
where
    F: Future<Output = Result<Response<Body>, lambda_http::Error>>,
{
    let started = Instant::now();
    let response = request.await.unwrap_or_else(|err| panic!("a handler returned Err (a 502 from API Gateway): {err}"));
    Timed { response, elapsed: started.elapsed() }
}

pub type Handler = for<'a> fn(&'a App, Request) -> std::pin::Pin<Box<dyn Future<Output = HandlerResult> + Send + 'a>>;
pub type HandlerResult = Result<Response<Body>, lambda_http::Error>;

pub fn body_text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(response.body().as_ref()).into_owned()
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|value| value.to_str().ok())
}

/// What a TwiML answer does for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twiml {
    /// Says something, then hangs up: the caller is told, not left in silence.
    SayThenHangup,
    /// Puts the call into a conference.
    Conference,
    /// Hold music (after the hold message on arrival) for a bounded number of plays, then back
    /// to the waitUrl for the next turn: never silence, never a verb wait TwiML may not hold.
    Hold,
    /// Dials a phone number.
    DialNumber,
    /// Nothing: what a status callback answers (Twilio ignores it).
    Empty,
}

/// Parses `xml` as TwiML and says what it does, or why it is not TwiML a caller is safe with.
pub fn read_twiml(xml: &str) -> Result<Twiml, String> {
    let document = roxmltree::Document::parse(xml).map_err(|err| format!("not XML ({err}): {xml}"))?;
    let root = document.root_element();
    if root.tag_name().name() != "Response" {
        return Err(format!("root is <{}>, not <Response>: {xml}", root.tag_name().name()));
    }
    let verbs: Vec<_> = root.children().filter(roxmltree::Node::is_element).collect();
    let names: Vec<&str> = verbs.iter().map(|verb| verb.tag_name().name()).collect();
    let said = |verb: &roxmltree::Node<'_, '_>| verb.text().is_some_and(|text| !text.trim().is_empty());
    let nouns = |verb: &roxmltree::Node<'_, '_>| -> Vec<String> {
        verb.children().filter(roxmltree::Node::is_element).map(|noun| noun.tag_name().name().to_owned()).collect()
    };
    match names.as_slice() {
        [] => Ok(Twiml::Empty),
        ["Say", "Hangup"] if said(&verbs[0]) => Ok(Twiml::SayThenHangup),
        ["Say", "Play", "Redirect"] if said(&verbs[0]) && is_hold_turn(&verbs[1], &verbs[2]) => Ok(Twiml::Hold),
        ["Play", "Redirect"] if is_hold_turn(&verbs[0], &verbs[1]) => Ok(Twiml::Hold),
        ["Dial"] if nouns(&verbs[0]) == ["Conference"] => Ok(Twiml::Conference),
        ["Dial"] if nouns(&verbs[0]) == ["Number"] => Ok(Twiml::DialNumber),
        _ => Err(format!("TwiML that does not tell the caller anything we expect: {xml}")),
    }
}

/// Music played a bounded, non-zero number of times, then a redirect back to the waitUrl.
fn is_hold_turn(play: &roxmltree::Node<'_, '_>, redirect: &roxmltree::Node<'_, '_>) -> bool {
    let plays = play.attribute("loop").and_then(|n| n.parse::<u32>().ok()).unwrap_or(1);
    let back = redirect.text().is_some_and(|url| url.contains("/conference/wait"));
    (1..=10).contains(&plays) && back && redirect.attribute("method") == Some("POST")
}
