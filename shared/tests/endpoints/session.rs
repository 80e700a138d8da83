use crate::prelude::*;
use shared::domain::{SIGN_IN_WINDOW_SECONDS, SignInCounter};
use shared::error::locked_out;
use shared::handlers::session::handle;
use shared::handlers::token;

const PASSWORD: &str = "correct horse battery staple";

fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn login(agent_id: &str, password: &str) -> Request {
    form_post("/login", &[("agent_id", agent_id), ("password", password), ("next", "/dashboard")])
}

/// The address every test request comes from, unless it says otherwise.
const ADDRESS: &str = "192.0.2.1";

/// `login`, from `address` as API Gateway reports it (`requestContext.http.sourceIp`).
fn login_from(address: &str, agent_id: &str, password: &str) -> Request {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("agent_id", agent_id), ("password", password), ("next", "/dashboard")])
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", BASE)];
    let event = event_json("POST", "/login", &headers, body.as_bytes());
    let from_default = format!(r#""sourceIp":"{ADDRESS}""#);
    assert!(event.contains(&from_default), "{event}");
    lambda_http::request::from_str(&event.replace(&from_default, &format!(r#""sourceIp":"{address}""#))).unwrap()
}

fn id_counter(id: &str) -> SignInCounter {
    SignInCounter::AgentId(agent_id(id))
}

fn address_counter(address: &str) -> SignInCounter {
    SignInCounter::Address(shared::domain::SourceAddress::parse(address).unwrap())
}

async fn failures(t: &TestApp, counter: &SignInCounter) -> u32 {
    t.agents.sign_in_failures(counter, t.app.clock.now()).await.unwrap()
}

/// Status, `Retry-After` and the form's message of an answer.
fn outcome(response: &Response<Body>) -> (u16, String, String) {
    let html = body_text(response);
    let message = html.split(r#"role="alert">"#).nth(1).and_then(|rest| rest.split("</p>").next()).unwrap_or_default();
    (response.status().as_u16(), header(response, "retry-after").to_owned(), message.to_owned())
}

fn wrong() -> (u16, String, String) {
    (401, String::new(), INVALID_CREDENTIALS.to_owned())
}

fn waiting(seconds: i64) -> (u16, String, String) {
    (429, seconds.to_string(), locked_out(seconds))
}

async fn send(t: &TestApp, request: Request) -> Response<Body> {
    handle(&t.app, request).await.unwrap()
}

/// The `Cookie` header a browser sends back after `response` set it.
fn cookie_from(response: &Response<Body>) -> String {
    header(response, "set-cookie").split(';').next().unwrap().to_owned()
}

async fn identity_with(t: &TestApp, cookie: &str) -> String {
    let response = token::handle(&t.app, with_header(json_post("/token", ""), "cookie", cookie)).await.unwrap();
    body_json(&response)["identity"].as_str().unwrap().to_owned()
}

fn agent_id(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

#[tokio::test]
async fn the_login_page_keeps_where_the_agent_was_going_if_it_is_on_this_site() {
    let t = TestApp::new();
    for (query, next) in [
        ("", "/dashboard"),
        ("?next=%2Fdashboard", "/dashboard"),
        ("?next=%2Fdashboard%3Fx%3D%22%3E", "/dashboard?x=&quot;&gt;"),
        ("?next=%2F%2Fevil.example", "/dashboard"),
        ("?next=https%3A%2F%2Fevil.example", "/dashboard"),
        ("?next=%2F%5Cevil.example", "/dashboard"),
    ] {
        let response = send(&t, event("GET", &format!("/login{query}"), &[], b"")).await;
        assert_eq!(response.status(), 200, "{query}");
        assert_eq!(content_type(&response), "text/html; charset=utf-8");
        let html = body_text(&response);
        assert!(html.contains(&format!(r#"name="next" value="{next}""#)), "{query}: {html}");
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(header(&response, "content-security-policy").contains("frame-ancestors 'none'"));
        assert_eq!(header(&response, "strict-transport-security"), shared::response::HSTS);
    }
}

#[tokio::test]
async fn signing_in_sets_a_strict_session_cookie_and_returns_to_the_page() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let request = form_post("/login", &[("agent_id", " agent1 "), ("password", PASSWORD), ("next", "/dashboard?x=1")]);
    let response = send(&t, request).await;
    assert_eq!(response.status(), 303);
    assert_eq!(header(&response, "location"), "/dashboard?x=1");
    let set_cookie = header(&response, "set-cookie");
    assert!(set_cookie.starts_with("__Host-warmline_session=ey"), "{set_cookie}");
    assert!(set_cookie.ends_with("; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict; Secure"), "{set_cookie}");
    let cookie = cookie_from(&response);
    assert_eq!(identity_with(&t, &cookie).await, "agent1");
    // Signed in already, the login page sends the agent on.
    let response = send(&t, event("GET", "/login?next=%2Fdashboard", &[("cookie", &cookie)], b"")).await;
    assert_eq!((response.status().as_u16(), header(&response, "location")), (303, "/dashboard"));
}

#[tokio::test]
async fn a_wrong_password_an_unknown_id_and_a_disabled_agent_look_the_same() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    t.enroll_with_password("agent2", PASSWORD).await;
    t.agents.set_disabled(&agent_id("agent2"), Some(NOW)).await.unwrap();
    let mut pages = Vec::new();
    for (id, password) in
        [("agent1", "wrong password!"), ("ghost", PASSWORD), ("agent2", PASSWORD), ("not an id", PASSWORD)]
    {
        let response = send(&t, login(id, password)).await;
        assert_eq!(response.status(), 401, "{id}");
        assert_eq!(header(&response, "set-cookie"), "", "{id}");
        assert!(body_text(&response).contains(INVALID_CREDENTIALS));
        pages.push(body_text(&response));
    }
    assert!(pages.windows(2).all(|pair| pair[0] == pair[1]), "the same page, whatever was wrong");
    for id in ["agent1", "ghost", "agent2"] {
        assert_eq!(failures(&t, &id_counter(id)).await, 1, "{id}");
    }
    assert_eq!(failures(&t, &address_counter(ADDRESS)).await, 4, "every wrong password, the malformed id's too");
}

#[tokio::test]
async fn failures_slow_an_id_down_the_same_whether_or_not_it_exists() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let mut transcripts = Vec::new();
    for id in ["agent1", "ghost"] {
        let start = t.app.clock.now();
        let mut transcript = Vec::new();
        let mut pages = Vec::new();
        // Three free failures; then each one makes the id wait twice as long from it. Every
        // attempt uses the right password (or, for the id nobody has, any): refused all the same.
        for _ in 0..3 {
            transcript.push(outcome(&send(&t, login(id, "wrong password!")).await));
        }
        for wait in [1, 2, 4] {
            let refused = send(&t, login(id, PASSWORD)).await;
            assert_eq!(header(&refused, "set-cookie"), "", "{id}");
            transcript.push(outcome(&refused));
            pages.push(body_text(&refused));
            t.clock.advance(wait);
            transcript.push(outcome(&send(&t, login(id, "wrong password!")).await));
        }
        assert_eq!(failures(&t, &id_counter(id)).await, 6, "{id}: refusals are not counted");
        transcript.push(outcome(&send(&t, login(id, PASSWORD)).await));
        transcripts.push((t.app.clock.now() - start, transcript, pages));
    }
    let expected = [
        vec![wrong(), wrong(), wrong()],
        vec![waiting(1), wrong(), waiting(2), wrong(), waiting(4), wrong(), waiting(8)],
    ]
    .concat();
    assert_eq!(transcripts[0].1, expected);
    assert_eq!(transcripts[0], transcripts[1], "nothing tells an existing id from another, not even the waits");

    // Others are not slowed down.
    t.enroll_with_password("agent2", PASSWORD).await;
    assert_eq!(send(&t, login("agent2", PASSWORD)).await.status(), 303);
    // The agent gets in once the wait has passed (8 s after agent1's last failure, which was
    // before ghost's 7 s), and that starts the id over.
    assert_eq!(outcome(&send(&t, login("agent1", PASSWORD)).await), waiting(1));
    t.clock.advance(1);
    assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 303);
    assert_eq!(failures(&t, &id_counter("agent1")).await, 0, "success starts over");
    assert_eq!(failures(&t, &address_counter(ADDRESS)).await, 12, "the wrong passwords only");
}

#[tokio::test]
async fn a_guesser_keeps_the_agent_out_for_at_most_a_minute_after_each_failure() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    // Guessing from ever new addresses, each guess as soon as the id may try again: the wait
    // after each guess doubles, and stops growing at a minute.
    let waits = [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60];
    for (guess, wait) in waits.into_iter().enumerate() {
        let guesser = format!("198.51.100.{guess}");
        assert_eq!(outcome(&send(&t, login_from(&guesser, "agent1", "a guess at it!")).await), wrong(), "{guess}");
        if wait > 0 {
            let again = format!("198.51.100.{}", 100 + guess);
            assert_eq!(outcome(&send(&t, login_from(&again, "agent1", "a guess at it!")).await), waiting(wait));
        }
        if guess + 1 < waits.len() {
            t.clock.advance(wait);
        }
    }
    // The agent, right after the latest guess, waits that minute, and then gets in.
    assert_eq!(outcome(&send(&t, login("agent1", PASSWORD)).await), waiting(60));
    assert!(body_text(&send(&t, login("agent1", PASSWORD)).await).contains("Try again in 1 minute."));
    t.clock.advance(60);
    assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 303);
}

#[tokio::test]
async fn an_address_that_keeps_guessing_is_blocked_for_15_minutes() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let guesser = "203.0.113.9";
    // Twenty wrong passwords, each for another id, so that no id is slowed down.
    for n in 0..20 {
        assert_eq!(outcome(&send(&t, login_from(guesser, &format!("agent{n}"), "a guess at it!")).await), wrong());
        t.clock.advance(1);
    }
    // Then nothing from that address is even checked, the right password included.
    let blocked = send(&t, login_from(guesser, "agent1", PASSWORD)).await;
    assert_eq!(outcome(&blocked), waiting(SIGN_IN_WINDOW_SECONDS - 1));
    assert!(body_text(&blocked).contains("Try again in 15 minutes."));
    assert_eq!(header(&blocked, "set-cookie"), "");
    assert_eq!(failures(&t, &id_counter("agent1")).await, 1, "a blocked attempt is not counted against the id");
    // Everyone else signs in as usual.
    assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 303);
    // An IPv6 guesser is one by its /64: the addresses a subscriber has to pick from.
    for n in 0..20 {
        let guesser = format!("2001:db8:5:7::{n:x}");
        assert_eq!(outcome(&send(&t, login_from(&guesser, &format!("other{n}"), "a guess at it!")).await), wrong());
    }
    assert_eq!(outcome(&send(&t, login_from("2001:db8:5:7:ffff::1", "agent1", PASSWORD)).await).0, 429);
    assert_eq!(send(&t, login_from("2001:db8:5:8::1", "agent1", PASSWORD)).await.status(), 303, "another /64");
    // Fifteen minutes after its latest failure, the address is forgiven.
    t.clock.advance(SIGN_IN_WINDOW_SECONDS - 2);
    assert_eq!(outcome(&send(&t, login_from(guesser, "agent1", PASSWORD)).await), waiting(1));
    t.clock.advance(1);
    assert_eq!(send(&t, login_from(guesser, "agent1", PASSWORD)).await.status(), 303);
}

#[tokio::test]
async fn agents_signing_in_from_one_address_never_block_it() {
    // A whole team behind one office address, each signing in many times, and an agent who
    // retries too early: only wrong passwords count against the address.
    let t = TestApp::new();
    for n in 0..5 {
        t.enroll_with_password(&format!("agent{n}"), PASSWORD).await;
    }
    for round in 0..6 {
        for n in 0..5 {
            let id = format!("agent{n}");
            assert_eq!(send(&t, login(&id, PASSWORD)).await.status(), 303, "{id} in round {round}");
        }
    }
    for _ in 0..3 {
        assert_eq!(outcome(&send(&t, login("agent0", "wrong password!")).await), wrong());
    }
    for _ in 0..30 {
        assert_eq!(outcome(&send(&t, login("agent0", PASSWORD)).await), waiting(1), "retried too early");
    }
    assert_eq!(failures(&t, &address_counter(ADDRESS)).await, 3);
    t.clock.advance(1);
    assert_eq!(send(&t, login("agent0", PASSWORD)).await.status(), 303);
}

#[tokio::test]
async fn concurrent_guesses_are_held_to_the_limits_exactly_on_dynamodb() {
    // The real store on the emulator: every guess counted before its password is checked, in
    // one conditional write, so guesses sent at once cannot slip past the count.
    let tables = shared::test_support::emulator_tables().await;
    let agents = std::sync::Arc::new(shared::store::dynamo::DynamoAgentStore::new(
        tables.client.clone(),
        tables.name("AgentsTable"),
    ));
    let t = TestApp::new();
    let app = shared::App::new(config_with(&[]), shared::app::Ports { agents: agents.clone(), ..t.ports() });
    let hash = shared::password::hash_password(PASSWORD).unwrap();
    agents.create_agent(&shared::domain::Agent::new(agent_id("agent1"), "Agent 1", hash, NOW)).await.unwrap();
    let statuses = |responses: Vec<Response<Body>>| {
        let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
        statuses.sort_unstable();
        statuses
    };

    // Twelve at once for one id, from twelve addresses: three reach the password check (401:
    // nothing else answers that), the others wait a second.
    let guesses = (0..12).map(|n| handle(&app, login_from(&format!("198.51.100.{n}"), "agent1", "a guess!!")));
    let answers: Vec<Response<Body>> =
        futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses(answers), [vec![401; 3], vec![429; 9]].concat());
    let now = app.clock.now();
    assert_eq!(agents.sign_in_failures(&id_counter("agent1"), now).await.unwrap(), 3);
    let mut guessed = 0;
    for n in 0..12 {
        guessed += agents.sign_in_failures(&address_counter(&format!("198.51.100.{n}")), now).await.unwrap();
    }
    assert_eq!(guessed, 3, "the addresses are charged the wrong passwords only");

    // Thirty at once from one address, each for another id: twenty are checked.
    let guesses = (0..30).map(|n| handle(&app, login_from("203.0.113.9", &format!("guess{n}"), "a guess!!")));
    let answers: Vec<Response<Body>> =
        futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    let blocked: Vec<&str> = answers.iter().filter(|r| r.status() == 429).map(|r| header(r, "retry-after")).collect();
    assert_eq!(blocked, vec![SIGN_IN_WINDOW_SECONDS.to_string().as_str(); 10]);
    assert_eq!(statuses(answers), [vec![401; 20], vec![429; 10]].concat());
    assert_eq!(agents.sign_in_failures(&address_counter("203.0.113.9"), now).await.unwrap(), 20);
}

#[tokio::test]
async fn a_sign_in_from_another_site_is_refused_and_not_counted() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    for request in [
        with_header(login("agent1", PASSWORD), "origin", "https://evil.example"),
        without_header(login("agent1", PASSWORD), "origin"),
    ] {
        let response = send(&t, request).await;
        assert_eq!(response.status(), 403);
        assert_eq!(header(&response, "set-cookie"), "");
    }
    assert_eq!(failures(&t, &id_counter("agent1")).await, 0);
    assert_eq!(failures(&t, &address_counter(ADDRESS)).await, 0);
}

#[tokio::test]
async fn signing_out_ends_every_session_of_the_agent() {
    let t = TestApp::new();
    t.enroll_with_password("agent1", PASSWORD).await;
    let laptop = cookie_from(&send(&t, login("agent1", PASSWORD)).await);
    let phone = cookie_from(&send(&t, login("agent1", PASSWORD)).await);

    // Another site cannot sign the agent out.
    let forged =
        with_header(with_header(form_post("/logout", &[]), "cookie", &laptop), "origin", "https://evil.example");
    assert_eq!(send(&t, forged).await.status(), 403);
    assert_eq!(identity_with(&t, &laptop).await, "agent1");

    let response = send(&t, with_header(form_post("/logout", &[]), "cookie", &laptop)).await;
    assert_eq!((response.status().as_u16(), header(&response, "location")), (303, "/login"));
    assert_eq!(
        header(&response, "set-cookie"),
        "__Host-warmline_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict; Secure"
    );
    for cookie in [&laptop, &phone] {
        assert!(identity_with(&t, cookie).await.starts_with("customer_"), "a copy of the cookie is worthless too");
    }
    // Back at the login page with the dead cookie: told why, and the cookie is dropped.
    let response = send(&t, event("GET", "/login", &[("cookie", &phone)], b"")).await;
    assert_eq!(response.status(), 200);
    assert!(body_text(&response).contains(shared::handlers::session::SESSION_ENDED));
    assert!(header(&response, "set-cookie").contains("Max-Age=0"));
}

#[tokio::test]
async fn storage_failures_are_a_retryable_503() {
    let t = TestApp::new();
    let app = shared::App::new(
        config_with(&[]),
        shared::app::Ports {
            agents: std::sync::Arc::new(shared::store::memory::MemoryAgentStore::failing()),
            ..t.ports()
        },
    );
    let response = handle(&app, login("agent1", PASSWORD)).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "retry-after"), "2");
    assert_eq!(header(&response, "set-cookie"), "");
}

#[tokio::test]
async fn over_plain_http_on_loopback_the_cookie_is_not_secure() {
    let t = TestApp::build(
        config_with(&[("PUBLIC_BASE_URL", "http://127.0.0.1:9000")]),
        shared::store::memory::MemoryCallStore::new(),
        RecordingDialer::default(),
    );
    t.enroll_with_password("agent1", PASSWORD).await;
    let request = with_header(login("agent1", PASSWORD), "origin", "http://127.0.0.1:9000");
    let response = send(&t, request).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        header(&response, "set-cookie").split_once(';').unwrap().1,
        " Max-Age=43200; Path=/; HttpOnly; SameSite=Strict"
    );
    assert!(header(&response, "set-cookie").starts_with("warmline_session="));
    assert_eq!(header(&response, "strict-transport-security"), "", "no HSTS over HTTP");
}

#[tokio::test]
async fn bad_requests_are_refused_politely() {
    let t = TestApp::new();
    let response = send(&t, form_post("/login", &[("agent_id", "agent1")])).await;
    assert_eq!(response.status(), 400);
    let huge = "x".repeat(shared::http::MAX_BODY_BYTES + 1);
    let response = send(&t, form_post("/login", &[("agent_id", "agent1"), ("password", &huge)])).await;
    assert_eq!(response.status(), 413);
    let response = send(&t, event("GET", "/logout", &[], b"")).await;
    assert_eq!((response.status().as_u16(), header(&response, "allow")), (405, "POST"));
    let response = send(&t, event("DELETE", "/login", &[], b"")).await;
    assert_eq!((response.status().as_u16(), header(&response, "allow")), (405, "GET, POST"));
    assert_eq!(send(&t, event("GET", "/nope", &[], b"")).await.status(), 404);
}
