//! `GET /login`, `POST /login`, `POST /logout`: agents sign in with their id and password and
//! get a session cookie (see `crate::session`); signing out ends every session they have.
//!
//! The sign-in form works without JavaScript: failures re-render it with a message and a
//! status code, success redirects (303) to where the agent was going. No answer tells whether
//! an agent id exists: unknown ids, disabled agents and wrong passwords get the same page after
//! the same argon2 work, and failed attempts are counted, and locked out, for any id.

use lambda_http::http::header::{ALLOW, SET_COOKIE};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};

use super::pages;
use crate::App;
use crate::domain::AgentId;
use crate::error::AppError;
use crate::http;
use crate::password;
use crate::session::{self, Session};
use crate::store::{Agent, LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_SECONDS};

pub const INVALID_CREDENTIALS: &str = "Unknown agent or wrong password.";
pub const LOCKED_OUT: &str = "Too many failed attempts. Try again in 15 minutes.";
pub const SESSION_ENDED: &str = "Your session has ended. Please sign in again.";
const CROSS_SITE: &str = "This sign-in did not come from this site. Please try again.";
const INCOMPLETE: &str = "Enter your agent id and password.";
const UNAVAILABLE: &str = "Sign-in is unavailable right now. Please try again in a moment.";
const DEFAULT_NEXT: &str = "/dashboard";

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let path = http::raw_path(&req);
    let mut response = match (req.method(), path.as_str()) {
        (&Method::GET, "/login") => login_page(app, &req).await,
        (&Method::POST, "/login") => sign_in(app, &req).await,
        (&Method::POST, "/logout") => sign_out(app, &req).await,
        (_, "/login") => method_not_allowed("GET, POST"),
        (_, "/logout") => method_not_allowed("POST"),
        _ => http::text(StatusCode::NOT_FOUND, "not found"),
    };
    pages::with_page_headers(app, &req, &mut response);
    Ok(response)
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Where to go once signed in: a path on this site, never `//host` or `/\host`, which browsers
/// read as another site (an open redirect).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 512
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path
        }
        _ => DEFAULT_NEXT,
    }
}

fn login_form(status: StatusCode, next: &str, error: &str) -> Response<Body> {
    pages::page(status, pages::LOGIN_HTML, &[("next", next), ("error", error)])
}

async fn login_page(app: &App, req: &Request) -> Response<Body> {
    let query = http::query_params(req);
    let next = safe_next(query.get("next").map(String::as_str));
    match session::session(app, req).await {
        Ok(Session::SignedIn(_)) => http::redirect(next),
        Ok(Session::Ended) => {
            let mut response = login_form(StatusCode::OK, next, SESSION_ENDED);
            response.headers_mut().insert(SET_COOKIE, session::cleared_cookie(session::secure_for(app, req)));
            response
        }
        Ok(Session::None) => login_form(StatusCode::OK, next, ""),
        // The form still works; signing in says so if storage is still down then.
        Err(err) => {
            tracing::warn!(error = %err, "could not check the session");
            login_form(StatusCode::OK, next, "")
        }
    }
}

enum Outcome {
    SignedIn(Agent),
    Refused,
    LockedOut,
}

async fn sign_in(app: &App, req: &Request) -> Response<Body> {
    let fields = match http::fields(req) {
        Ok(fields) => fields,
        Err(AppError::PayloadTooLarge) => return login_form(StatusCode::PAYLOAD_TOO_LARGE, DEFAULT_NEXT, INCOMPLETE),
        Err(_) => return login_form(StatusCode::BAD_REQUEST, DEFAULT_NEXT, INCOMPLETE),
    };
    let next = safe_next(fields.get("next").map(String::as_str));
    if let Err(err) = session::require_same_origin(app, req) {
        tracing::warn!(error = %err, "sign-in refused");
        return login_form(StatusCode::FORBIDDEN, next, CROSS_SITE);
    }
    let (Some(id), Some(password)) = (fields.get("agent_id"), fields.get("password")) else {
        return login_form(StatusCode::BAD_REQUEST, next, INCOMPLETE);
    };
    let outcome = match check_credentials(app, id.trim(), password).await {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!(error = %err, "sign-in failed");
            return http::retry_after(
                login_form(StatusCode::SERVICE_UNAVAILABLE, next, UNAVAILABLE),
                http::RETRY_AFTER_SECONDS,
            );
        }
    };
    match outcome {
        Outcome::SignedIn(agent) => match app.sessions.issue(&agent, app.clock.now()) {
            Ok(token) => {
                tracing::info!(agent = %agent.id, "signed in");
                let mut response = http::redirect(next);
                response
                    .headers_mut()
                    .insert(SET_COOKIE, session::session_cookie(session::secure_for(app, req), &token));
                response
            }
            Err(err) => {
                tracing::error!(error = %err, "could not sign a session");
                login_form(StatusCode::INTERNAL_SERVER_ERROR, next, UNAVAILABLE)
            }
        },
        Outcome::Refused => login_form(StatusCode::UNAUTHORIZED, next, INVALID_CREDENTIALS),
        Outcome::LockedOut => {
            http::retry_after(login_form(StatusCode::TOO_MANY_REQUESTS, next, LOCKED_OUT), LOGIN_LOCKOUT_SECONDS)
        }
    }
}

async fn check_credentials(app: &App, id: &str, password: &str) -> Result<Outcome, AppError> {
    let Ok(id) = AgentId::parse(id) else {
        password::spend_a_password_check(password);
        return Ok(Outcome::Refused);
    };
    let now = app.clock.now();
    if app.agents.login_failures(&id, now).await? >= LOGIN_FAILURE_LIMIT {
        tracing::warn!("sign-in refused: too many failures for this id");
        return Ok(Outcome::LockedOut);
    }
    let agent = app.agents.agent(&id).await?;
    let matches = match &agent {
        Some(agent) if agent.is_enabled() => password::verify_password(password, &agent.password_hash),
        _ => {
            password::spend_a_password_check(password);
            false
        }
    };
    match agent {
        Some(agent) if matches => {
            if let Err(err) = app.agents.clear_login_failures(&id).await {
                tracing::warn!(error = %err, "could not reset the failed sign-ins");
            }
            Ok(Outcome::SignedIn(agent))
        }
        agent => {
            let failures = app.agents.record_login_failure(&id, now).await?;
            // An id typed by mistake may be someone's password: only existing ids are logged.
            match agent {
                Some(agent) => tracing::warn!(agent = %agent.id, failures, "sign-in failed"),
                None => tracing::warn!(failures, "sign-in failed for an unknown id"),
            }
            Ok(Outcome::Refused)
        }
    }
}

async fn sign_out(app: &App, req: &Request) -> Response<Body> {
    if let Err(err) = session::require_same_origin(app, req) {
        return err.into_json_response();
    }
    match session::session(app, req).await {
        Ok(Session::SignedIn(agent)) => {
            // Ending the sessions server-side is what makes a copied cookie useless too; if that
            // fails, say so rather than pretend.
            if let Err(err) = app.agents.end_sessions(&agent.id).await {
                tracing::error!(error = %err, "could not end the sessions");
                return pages::unavailable();
            }
            tracing::info!(agent = %agent.id, "signed out");
        }
        Ok(Session::None | Session::Ended) => {}
        Err(err) => {
            tracing::error!(error = %err, "could not check the session");
            return pages::unavailable();
        }
    }
    let mut response = http::redirect("/login");
    response.headers_mut().insert(SET_COOKIE, session::cleared_cookie(session::secure_for(app, req)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testing::*;
    use crate::handlers::token;

    const PASSWORD: &str = "correct horse battery staple";

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn login(agent_id: &str, password: &str) -> Request {
        form_post("/login", &[("agent_id", agent_id), ("password", password), ("next", "/dashboard")])
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
            assert_eq!(header(&response, "strict-transport-security"), crate::http::HSTS);
        }
    }

    #[tokio::test]
    async fn signing_in_sets_a_strict_session_cookie_and_returns_to_the_page() {
        let t = TestApp::new();
        t.enroll_with_password("agent1", PASSWORD).await;
        let request =
            form_post("/login", &[("agent_id", " agent1 "), ("password", PASSWORD), ("next", "/dashboard?x=1")]);
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
            assert_eq!(t.agents.login_failures(&agent_id(id), NOW).await.unwrap(), 1, "{id}");
        }
    }

    #[tokio::test]
    async fn five_failures_lock_an_id_out_for_15_minutes_whether_or_not_it_exists() {
        let t = TestApp::new();
        t.enroll_with_password("agent1", PASSWORD).await;
        let mut locked_pages = Vec::new();
        for id in ["agent1", "ghost"] {
            for attempt in 1..=LOGIN_FAILURE_LIMIT {
                assert_eq!(send(&t, login(id, "wrong password!")).await.status(), 401, "{id} attempt {attempt}");
            }
            let response = send(&t, login(id, PASSWORD)).await;
            assert_eq!(response.status(), 429, "{id}: refused even with the right password");
            assert_eq!(header(&response, "retry-after"), "900");
            assert_eq!(header(&response, "set-cookie"), "");
            assert!(body_text(&response).contains(LOCKED_OUT));
            locked_pages.push(body_text(&response));
        }
        assert_eq!(locked_pages[0], locked_pages[1], "a lockout does not tell which ids exist");
        // Others are not locked out.
        t.enroll_with_password("agent2", PASSWORD).await;
        assert_eq!(send(&t, login("agent2", PASSWORD)).await.status(), 303);

        t.clock.advance(LOGIN_LOCKOUT_SECONDS - 1);
        assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 429);
        t.clock.advance(1);
        assert_eq!(send(&t, login("agent1", PASSWORD)).await.status(), 303, "15 minutes later");
        assert_eq!(t.agents.login_failures(&agent_id("agent1"), NOW).await.unwrap(), 0, "success starts over");
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
        assert_eq!(t.agents.login_failures(&agent_id("agent1"), NOW).await.unwrap(), 0);
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
        assert!(body_text(&response).contains(SESSION_ENDED));
        assert!(header(&response, "set-cookie").contains("Max-Age=0"));
    }

    #[tokio::test]
    async fn storage_failures_are_a_retryable_503() {
        let t = TestApp::new();
        let app = crate::App::new(
            config_with(&[]),
            crate::app::Ports {
                agents: std::sync::Arc::new(crate::store::memory::MemoryAgentStore::failing()),
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
            crate::store::memory::MemoryCallStore::new(),
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
        let huge = "x".repeat(crate::http::MAX_BODY_BYTES + 1);
        let response = send(&t, form_post("/login", &[("agent_id", "agent1"), ("password", &huge)])).await;
        assert_eq!(response.status(), 413);
        let response = send(&t, event("GET", "/logout", &[], b"")).await;
        assert_eq!((response.status().as_u16(), header(&response, "allow")), (405, "POST"));
        let response = send(&t, event("DELETE", "/login", &[], b"")).await;
        assert_eq!((response.status().as_u16(), header(&response, "allow")), (405, "GET, POST"));
        assert_eq!(send(&t, event("GET", "/nope", &[], b"")).await.status(), 404);
    }
}
