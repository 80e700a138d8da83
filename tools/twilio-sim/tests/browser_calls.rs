//! A browser's call as Twilio handles it: the Access Token decides the TwiML App (and so the
//! Voice URL), the identity and the params it passes; the page's own params follow Twilio's. The
//! tokens here are Warmline's (`shared::twilio::access_token`); the simulator checks them with
//! its own code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use shared::domain::{AgentId, Identity};
use shared::secret::Secret;
use shared::twilio::access_token::{TokenRequest, TokenSigner};
use twilio_sim::{BrowserCall, Event};

const CUSTOMERS_APP: &str = "AP33333333333333333333333333333333";
const AGENTS_APP: &str = "AP44444444444444444444444444444444";

fn token(identity: &Identity, app: &str, secret: &str, params: &[(&str, &str)]) -> String {
    let signer = TokenSigner {
        account_sid: ACCOUNT.into(),
        api_key: KEY.into(),
        api_secret: Secret::new(secret),
        twiml_app_sid: app.into(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp().try_into().unwrap();
    let outgoing_params = (!params.is_empty())
        .then(|| params.iter().map(|(name, value)| ((*name).to_owned(), (*value).into())).collect());
    signer.mint(&TokenRequest { identity, issued_at: now, ttl_seconds: 600, outgoing_params }).unwrap()
}

fn agent() -> Identity {
    Identity::Agent(AgentId::parse("agent1").unwrap())
}

fn page_params(params: &[(&str, &str)]) -> BTreeMap<String, String> {
    params.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

fn all<'a>(request: &'a Captured, name: &str) -> Vec<&'a str> {
    request.form.iter().filter(|(n, _)| n == name).map(|(_, value)| value.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_s_app_decides_the_voice_url_and_its_params_come_along() {
    let app = FakeApp::start(|_| twiml("<Hangup/>")).await;
    let server = simulator(&app).await;
    let token = token(&agent(), AGENTS_APP, SECRET, &[("agentSession", "s-1")]);
    let params = page_params(&[("phoneNumber", "+15551234567"), ("To", "+15551234567")]);
    let sid = server.sim.browser_call(BrowserCall { token: Some(token), params, ..BrowserCall::default() }).unwrap();
    expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;

    assert_eq!(app.requests_to("/browser").len(), 0, "not the customers' app");
    let request = &app.requests_to("/agent-browser")[0];
    for (name, value) in [
        ("AccountSid", ACCOUNT),
        ("ApplicationSid", AGENTS_APP),
        ("CallSid", sid.as_str()),
        ("From", "client:agent1"),
        ("Caller", "client:agent1"),
        // The page's `To` is the call's `To`, once.
        ("To", "+15551234567"),
        ("agentSession", "s-1"),
        ("phoneNumber", "+15551234567"),
    ] {
        assert_eq!(all(request, name), [value], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_s_param_named_like_twilio_s_comes_after_twilio_s_own() {
    let app = FakeApp::start(|_| twiml("<Hangup/>")).await;
    let server = simulator(&app).await;
    let customer = Identity::Customer("customer_0a1b".into());
    let params = page_params(&[
        ("From", "client:agent1"),
        ("CallSid", "CA00000000000000000000000000000099"),
        ("ApplicationSid", AGENTS_APP),
        ("AccountSid", "AC99999999999999999999999999999999"),
    ]);
    let token = Some(token(&customer, CUSTOMERS_APP, SECRET, &[]));
    let sid = server.sim.browser_call(BrowserCall { token, params, ..BrowserCall::default() }).unwrap();
    expect(&server, 0, "the call to end", |e| is_call_end(e, &sid)).await;

    // The customers' token reaches the customers' app whatever the page says.
    assert_eq!(app.requests_to("/agent-browser").len(), 0);
    let request = &app.requests_to("/browser")[0];
    assert_eq!(all(request, "From"), ["client:customer_0a1b", "client:agent1"]);
    assert_eq!(all(request, "CallSid"), [sid.as_str(), "CA00000000000000000000000000000099"]);
    assert_eq!(all(request, "ApplicationSid"), [CUSTOMERS_APP, AGENTS_APP]);
    assert_eq!(all(request, "AccountSid"), [ACCOUNT, "AC99999999999999999999999999999999"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_twilio_would_refuse_places_no_call() {
    let app = FakeApp::start(|_| twiml("<Hangup/>")).await;
    let server = simulator(&app).await;
    let refused = [
        (token(&agent(), AGENTS_APP, "another-secret", &[]), 20107),
        (token(&agent(), "AP99999999999999999999999999999999", SECRET, &[]), 21218),
        ("not.a.token".to_owned(), 20101),
    ];
    for (token, code) in refused {
        let err = server.sim.browser_call(BrowserCall { token: Some(token), ..BrowserCall::default() }).unwrap_err();
        assert_eq!(err.code, code);
    }
    assert!(server.sim.calls().is_empty());
    assert!(app.requests().is_empty());
    assert!(!server.sim.timeline().entries_since(0).iter().any(|e| matches!(e.event, Event::CallStarted { .. })));
}
