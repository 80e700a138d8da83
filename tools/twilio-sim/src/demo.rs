//! `make demo`: a scripted warm transfer against a running `make dev` stack and its simulator.
//! The simulator plays Twilio and every phone and browser; agent1 signs in as the login form
//! does, and the "Dial agent 2 in" click is a POST to the stack, exactly as the dashboard sends it.

use std::time::Duration;

use crate::client::{Client, ClientError};
use crate::model::{AnswerMode, Behaviour, CallStatus, CallView, InboundCall};
use crate::timeline::{Entry, Event, render};

const CUSTOMER_NUMBER: &str = "+15557654321";
/// Long enough for a person to follow each step in the printed timeline.
const TALK: Duration = Duration::from_millis(1500);
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the stack's URL is unknown: pass --stack")]
    NoStack,
    #[error("POST {url} failed: {reason}")]
    Dashboard { url: String, reason: String },
    #[error("agent1's password is unknown: pass --password, or start `make dev` (it writes .dev/agents.txt)")]
    NoPassword,
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

/// Signs `agent` in through `POST /login` as the login form does, and returns the `Cookie`
/// header that carries the session.
pub async fn sign_in(stack: &str, agent: &str, password: &str) -> Result<String, DemoError> {
    let url = format!("{stack}/login");
    let failed = |reason: String| DemoError::Dashboard { url: url.clone(), reason };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| failed(err.to_string()))?;
    let response = http
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
        .timeout(Duration::from_secs(10))
        .send()
        .await
}

pub async fn run(sim: &Client, stack: Option<&str>, password: Option<&str>) -> Outcome {
    let since = match sim.reset().await {
        Ok(since) => since,
        Err(err) => return Outcome { entries: Vec::new(), error: Some(err.into()) },
    };
    let error = warm_transfer(sim, stack, password, since).await.err();
    // The last steps' events (the conference ending, calls completing) land just after.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entries = sim.timeline(since).await.unwrap_or_default();
    Outcome { entries, error }
}

async fn warm_transfer(sim: &Client, stack: Option<&str>, password: Option<&str>, since: u64) -> Result<(), DemoError> {
    let info = sim.info().await?;
    let stack = stack.map(str::to_owned).or(info.public_base_url).ok_or(DemoError::NoStack)?;
    let stack = stack.trim_end_matches('/');
    let cookie = sign_in(stack, "agent1", password.ok_or(DemoError::NoPassword)?).await?;

    // agent1's browser rings until the customer has heard the hold message and the music starts.
    sim.set_behaviour("client:agent1", &Behaviour { answer: AnswerMode::Manual, ..Behaviour::default() }).await?;
    sim.set_behaviour(
        "client:agent2",
        &Behaviour { answer: AnswerMode::Auto, after_ms: Some(1500), ..Behaviour::default() },
    )
    .await?;

    sim.note(&format!("demo: a customer calls the support number {}", info.phone_number)).await?;
    let customer = sim
        .dial_in(&InboundCall {
            from: Some(CUSTOMER_NUMBER.into()),
            name: Some("customer".into()),
            ..InboundCall::default()
        })
        .await?;
    let ringing = sim
        .wait_for_call("Warmline to ring agent1", STEP_TIMEOUT, |call| {
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

    sim.note("dashboard: agent1 clicks \"Dial agent 2 in\" (POST /conference/agent1/call)").await?;
    let url = format!("{stack}/conference/agent1/call");
    let response = dial_colleague_in(stack, &cookie, "agent1")
        .await
        .map_err(|err| DemoError::Dashboard { url: url.clone(), reason: err.to_string() })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.as_u16() != 201 {
        return Err(DemoError::Dashboard { url, reason: format!("{status}: {body}") });
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

    sim.note("demo: agent2 hangs up").await?;
    sim.hang_up(&agent2.sid).await?;
    let customer_call = sim
        .wait_for_call("the customer's call to end", STEP_TIMEOUT, |call| {
            call.sid == customer && call.status.is_final()
        })
        .await?;
    if customer_call.status != CallStatus::Completed {
        return Err(DemoError::Unexpected(format!("the customer's call ended {:?}", customer_call.status)));
    }
    Ok(())
}

fn in_conference_of(call: &CallView, to: &str, conference: &str) -> bool {
    call.to == to && call.status == CallStatus::InProgress && call.conference.as_deref() == Some(conference)
}
