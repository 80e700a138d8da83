//! `POST /token`: an Access Token for the Voice SDK. With a field `agent` naming a rostered
//! agent, that agent's token (may receive calls); without it, a fresh customer identity that
//! may only place calls. Agent sign-in will replace the `agent` field.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::App;
use crate::domain::Identity;
use crate::error::AppError;
use crate::http;
use crate::twilio::access_token::{DEFAULT_TTL_SECONDS, TokenRequest};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(super::answer_json(mint(app, &req)).await)
}

async fn mint(app: &App, req: &Request) -> Result<Response<Body>, AppError> {
    let fields = http::fields(req)?;
    let identity = match fields.get("agent").map(String::as_str).filter(|a| !a.is_empty()) {
        Some(agent) => Identity::Agent(
            super::rostered_agent(app, agent).ok_or(AppError::Forbidden("agent not on the roster"))?.clone(),
        ),
        None => Identity::new_customer()?,
    };
    let issued_at = u64::try_from(app.clock.now()).unwrap_or_default();
    let token = app.tokens.mint(&TokenRequest {
        identity: &identity,
        issued_at,
        ttl_seconds: DEFAULT_TTL_SECONDS,
        outgoing_params: None,
    })?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "identity": identity.as_str(), "token": token, "ttl": DEFAULT_TTL_SECONDS }),
    ))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::handlers::testing::*;

    fn claims(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn an_agent_gets_a_token_that_can_receive_calls() {
        let t = TestApp::new();
        for request in [form_post("/token", &[("agent", "agent1")]), json_post("/token", r#"{"agent": "agent1"}"#)] {
            let response = handle(&t.app, request).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(content_type(&response), "application/json");
            let body = body_json(&response);
            assert_eq!((body["identity"].as_str(), body["ttl"].as_u64()), (Some("agent1"), Some(3600)));
            let claims = claims(body["token"].as_str().unwrap());
            assert_eq!(claims["grants"]["identity"], "agent1");
            assert_eq!(claims["grants"]["voice"]["incoming"]["allow"], true);
            assert_eq!(claims["grants"]["voice"]["outgoing"]["application_sid"], format!("AP{}", "0".repeat(32)));
            assert_eq!((claims["nbf"].as_i64(), claims["exp"].as_i64()), (Some(NOW), Some(NOW + 3600)));
        }
    }

    #[tokio::test]
    async fn anyone_else_gets_a_fresh_outgoing_only_customer_token() {
        let t = TestApp::new();
        let first = body_json(&handle(&t.app, form_post("/token", &[])).await.unwrap());
        let second = body_json(&handle(&t.app, json_post("/token", "{}")).await.unwrap());
        let identity = first["identity"].as_str().unwrap();
        assert!(identity.starts_with("customer_") && identity.len() == 25, "{identity}");
        assert_ne!(first["identity"], second["identity"]);
        let claims = claims(first["token"].as_str().unwrap());
        assert_eq!(claims["grants"]["identity"], identity);
        assert_eq!(claims["grants"]["voice"].get("incoming"), None);
    }

    #[tokio::test]
    async fn an_unknown_agent_is_forbidden() {
        let t = TestApp::new();
        for request in [form_post("/token", &[("agent", "mallory")]), json_post("/token", r#"{"agent": "customer_x"}"#)]
        {
            let response = handle(&t.app, request).await.unwrap();
            assert_eq!(
                (response.status().as_u16(), body_json(&response)),
                (403, serde_json::json!({"error": "forbidden"}))
            );
        }
    }

    #[tokio::test]
    async fn rejects_malformed_bodies() {
        let t = TestApp::new();
        let response = handle(&t.app, json_post("/token", "[1]")).await.unwrap();
        assert_eq!(
            (response.status().as_u16(), body_json(&response)),
            (400, serde_json::json!({"error": "the body must be a JSON object"}))
        );
        let response = handle(&t.app, form_post("/token", &[("agent", "agent1"), ("agent", "agent2")])).await.unwrap();
        assert_eq!(body_json(&response)["fields"], serde_json::json!({"agent": "was given more than once"}));
    }
}
