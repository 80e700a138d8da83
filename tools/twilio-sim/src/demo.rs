//! `make demo`: a scripted warm transfer against a running `make dev` stack and its simulator.
//! The simulator plays Twilio and every phone and browser; agent1 and agent2 sign in as the login
//! form does and say they are available as their dashboards do (`PUT /presence`), and the
//! "Dial a colleague in" click is a POST to the stack, exactly as the dashboard sends it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{Client, ClientError};
use crate::model::{AnswerMode, Behaviour, CallStatus, CallView, InboundCall};
use crate::timeline::{Entry, Event, render};

const CUSTOMER_NUMBER: &str = "+15557654321";
/// The agents the demo signs in: agent1 takes the call and dials agent2 in.
pub const AGENTS: [&str; 2] = ["agent1", "agent2"];
/// Long enough for a person to follow each step in the printed timeline.
const TALK: Duration = Duration::from_millis(1500);
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const DASHBOARD_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the stack's URL is unknown: pass --stack")]
    NoStack,
    #[error("{method} {url} failed: {reason}")]
    Dashboard { method: &'static str, url: String, reason: String },
    #[error("{0}'s password is unknown: pass --password, or start `make dev` (it writes .dev/agents.txt)")]
    NoPassword(String),
    #[error("{0}")]
    Unexpected(String),
}

/// The timeline of the run, and the error that stopped it early, if one did.
pub struct Outcome {
    pub entries: Vec<Entry>,
    pub error: Option<DemoError>,
}

impl Outcome {
    pub fn text(&self) -> String {
        render(&self.entries)
    }
}

fn http() -> Result<reqwest::Client, reqwest::Error> {
    // A sign-in answers 303 with the cookie: following it would lose the cookie.
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(DASHBOARD_TIMEOUT).build()
}

/// Signs `agent` in through `POST /login` as the login form does, and returns the `Cookie`
/// header that carries the session.
pub async fn sign_in(stack: &str, agent: &str, password: &str) -> Result<String, DemoError> {
    let url = format!("{stack}/login");
    let failed = |reason: String| DemoError::Dashboard { method: "POST", url: url.clone(), reason };
    let response = http()
        .map_err(|err| failed(err.to_string()))?
        .post(&url)
        .header("origin", stack)
        .form(&[("agent_id", agent), ("password", password), ("next", "/dashboard")])
        .send()
        .await
        .map_err(|err| failed(err.to_string()))?;
    if response.status().as_u16() != 303 {
        return Err(failed(format!("{} (wrong password?)", response.status())));
    }
    let set_cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let cookie = set_cookie.split(';').next().unwrap_or_default();
    if cookie.is_empty() {
        return Err(failed("no session cookie".into()));
    }
    Ok(cookie.to_owned())
}

/// The dashboard's "Dial a colleague in", for `agent` signed in with `cookie`.
pub async fn dial_colleague_in(stack: &str, cookie: &str, agent: &str) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{stack}/conference/{agent}/call"))
        .header("origin", stack)
        .header("cookie", cookie)
        .timeout(DASHBOARD_TIMEOUT)
        .send()
        .await
}

/// The dashboard's buttons on a live call: `POST /calls/{customer}/{action}` (`hold`, `resume`,
/// `consult`, `complete`, `cancel`, `transfer`) for the agent signed in with `cookie`, with the
/// JSON `body` (`{"to": colleague}` or `{}`).
pub async fn call_action(
    stack: &str,
    cookie: &str,
    customer: &str,
    action: &str,
    body: &Value,
) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{stack}/calls/{customer}/{action}"))
        .header("origin", stack)
        .header("cookie", cookie)
        .json(body)
        .timeout(DASHBOARD_TIMEOUT)
        .send()
        .await
}

/// The dashboard's presence switch (and its renewal every so often): `PUT /presence` with
/// `{"status": status}` (`available` or `away`) for the agent signed in with `cookie`. Returns
/// the presence Warmline answers, `{"agent", "status", "since", "missed_call_at"}`.
pub async fn say_presence(stack: &str, cookie: &str, status: &str) -> Result<Value, DemoError> {
    let url = format!("{stack}/presence");
    let failed = |reason: String| DemoError::Dashboard { method: "PUT", url: url.clone(), reason };
    let response = reqwest::Client::new()
        .put(&url)
        .header("origin", stack)
        .header("cookie", cookie)
        .json(&json!({ "status": status }))
        .timeout(DASHBOARD_TIMEOUT)
        .send()
        .await
        .map_err(|err| failed(err.to_string()))?;
    json_answer(response, failed).await
}

/// What the dashboard shows as the agent's presence: `GET /presence`.
pub async fn presence(stack: &str, cookie: &str) -> Result<Value, DemoError> {
    let url = format!("{stack}/presence");
    let failed = |reason: String| DemoError::Dashboard { method: "GET", url: url.clone(), reason };
    let response = reqwest::Client::new()
        .get(&url)
        .header("cookie", cookie)
        .timeout(DASHBOARD_TIMEOUT)
        .send()
        .await
        .map_err(|err| failed(err.to_string()))?;
    json_answer(response, failed).await
}

async fn json_answer(response: reqwest::Response, failed: impl Fn(String) -> DemoError) -> Result<Value, DemoError> {
    let status = response.status();
    let body = response.text().await.map_err(|err| failed(err.to_string()))?;
    if !status.is_success() {
        return Err(failed(format!("{status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|_| failed(format!("{status}, not JSON: {body}")))
}

/// Plays the warm transfer; `passwords` holds each of `AGENTS`' password.
pub async fn run(sim: &Client, stack: Option<&str>, passwords: &BTreeMap<String, String>) -> Outcome {
    let since = match sim.reset().await {
        Ok(since) => since,
        Err(err) => return Outcome { entries: Vec::new(), error: Some(err.into()) },
    };
    let error = warm_transfer(sim, stack, passwords, since).await.err();
    // The last steps' events (the conference ending, calls completing) land just after.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entries = sim.timeline(since).await.unwrap_or_default();
    Outcome { entries, error }
}

async fn warm_transfer(
    sim: &Client,
    stack: Option<&str>,
    passwords: &BTreeMap<String, String>,
    since: u64,
) -> Result<(), DemoError> {
    let info = sim.info().await?;
    let stack = stack.map(str::to_owned).or(info.public_base_url).ok_or(DemoError::NoStack)?;
    let stack = stack.trim_end_matches('/');
    let mut cookies = BTreeMap::new();
    for agent in AGENTS {
        let password = passwords.get(agent).ok_or_else(|| DemoError::NoPassword(agent.to_owned()))?;
        cookies.insert(agent, sign_in(stack, agent, password).await?);
    }

    // agent1's browser rings until the customer has heard the hold message and the music starts.
    sim.set_behaviour("client:agent1", &Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() }).await?;
    sim.set_behaviour(
        "client:agent2",
        &Behaviour { answer: AnswerMode::Auto, after_ms: Some(1500), ..Behaviour::default() },
    )
    .await?;

    // The line offers a caller to the available agent who has waited longest for one: agent1
    // comes online first. Away first, because an agent still available from an earlier run keeps
    // the place in the order they had then.
    for agent in AGENTS {
        say_presence(stack, &cookies[agent], "away").await?;
    }
    for agent in AGENTS {
        let presence = say_presence(stack, &cookies[agent], "available").await?;
        sim.note(&format!("dashboard: {agent} says they are available (PUT /presence): {presence}")).await?;
    }

    sim.note(&format!("demo: a customer calls the support number {}", info.phone_number)).await?;
    let customer = sim
        .dial_in(&InboundCall {
            from: Some(CUSTOMER_NUMBER.into()),
            name: Some("customer".into()),
            ..InboundCall::default()
        })
        .await?;
    let ringing = sim
        .wait_for_call("Warmline to ring agent1, available longest", STEP_TIMEOUT, |call| {
            call.to == "client:agent1" && !call.status.is_final()
        })
        .await?;
    sim.wait_for_entry(since, "the customer's hold music", STEP_TIMEOUT, |entry| {
        entry.call_sid.as_deref() == Some(customer.as_str()) && matches!(entry.event, Event::Play { hold: true, .. })
    })
    .await?;
    tokio::time::sleep(TALK).await;
    sim.note("demo: agent1 accepts the call in the dashboard").await?;
    sim.answer(&ringing.sid).await?;

    let agent1 = sim
        .wait_for_call("agent1 to join the customer's conference", STEP_TIMEOUT, |call| {
            in_conference_of(call, "client:agent1", &customer)
        })
        .await?;
    tokio::time::sleep(TALK).await;

    sim.note("dashboard: agent1 clicks \"Dial a colleague in\" (POST /conference/agent1/call)").await?;
    let url = format!("{stack}/conference/agent1/call");
    let failed = |reason: String| DemoError::Dashboard { method: "POST", url: url.clone(), reason };
    let response =
        dial_colleague_in(stack, &cookies["agent1"], "agent1").await.map_err(|err| failed(err.to_string()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.as_u16() != 201 {
        return Err(failed(format!("{status}: {body}")));
    }
    sim.note(&format!("dashboard: Warmline answered {status}: {body}")).await?;

    let agent2 = sim
        .wait_for_call("agent2 to join the same conference", STEP_TIMEOUT, |call| {
            in_conference_of(call, "client:agent2", &customer)
        })
        .await?;
    sim.note("demo: customer, agent1 and agent2 talk").await?;
    tokio::time::sleep(TALK).await;

    sim.note("demo: agent1 hangs up").await?;
    sim.hang_up(&agent1.sid).await?;
    sim.wait_for_call("agent1's call to end", STEP_TIMEOUT, |call| call.sid == agent1.sid && call.status.is_final())
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = sim.calls().await?;
    let still_in =
        |sid: &str| calls.iter().any(|call| call.sid == sid && call.conference.as_deref() == Some(&customer));
    if !(still_in(&customer) && still_in(&agent2.sid)) {
        return Err(DemoError::Unexpected(
            "the customer and agent2 should still be connected after agent1 left".into(),
        ));
    }
    sim.note("demo: the customer and agent2 are still connected").await?;
    tokio::time::sleep(TALK).await;

    sim.note("demo: the customer says thank you and hangs up").await?;
    sim.hang_up(&customer).await?;
    for (who, sid) in [("the customer", customer.as_str()), ("agent2", agent2.sid.as_str())] {
        let ended = sim
            .wait_for_call(&format!("{who}'s call to end"), STEP_TIMEOUT, |call| {
                call.sid == sid && call.status.is_final()
            })
            .await?;
        if ended.status != CallStatus::Completed {
            return Err(DemoError::Unexpected(format!("{who}'s call ended {:?}", ended.status)));
        }
    }

    // The demo's agents sign off, so the stack offers no further calls to browsers nobody
    // watches (their presence would hold for another 90 s).
    for agent in AGENTS {
        say_presence(stack, &cookies[agent], "away").await?;
    }
    sim.note("dashboard: agent1 and agent2 say they are away (PUT /presence)").await?;
    Ok(())
}

fn in_conference_of(call: &CallView, to: &str, conference: &str) -> bool {
    call.to == to && call.status == CallStatus::InProgress && call.conference.as_deref() == Some(conference)
}
