//! The few Twilio REST calls Warmline makes, over reqwest with rustls and hard timeouts.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::domain::CallSid;
use crate::secret::Secret;

/// A call Twilio should place: when it is answered, Twilio fetches `url` for its TwiML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    /// `client:<identity>` or an E.164 number.
    pub to: String,
    pub from: String,
    pub url: String,
    /// How long it may ring before Twilio gives up with `no-answer`; Twilio's default is 60 s.
    pub timeout_seconds: Option<u32>,
    /// Where Twilio reports how the call ended (its `completed` event, whatever the outcome:
    /// `completed`, `no-answer`, `busy`, `failed` or `canceled`). Without it, Warmline would
    /// never learn that nobody answered.
    pub status_callback: Option<String>,
}

impl OutboundCall {
    pub fn new(to: impl Into<String>, from: impl Into<String>, url: impl Into<String>) -> Self {
        Self { to: to.into(), from: from.into(), url: url.into(), timeout_seconds: None, status_callback: None }
    }
}

/// A change to a call in progress (`POST Calls/{sid}.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallUpdate {
    /// Stops a call that is still queued or ringing; Twilio ignores it for a call that was
    /// answered (or has ended).
    Cancel,
    /// Replaces whatever the call is doing with this TwiML document.
    Twiml(String),
}

/// A change to a participant of a conference in progress, through the Participants API
/// (`Conferences/{ConferenceSid}/Participants/{CallSid}.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParticipantUpdate {
    /// On hold: they hear the TwiML at `hold_url` (fetched with POST, again each time it ends)
    /// and nobody in the conference hears them.
    Hold { hold_url: String },
    /// Off hold, back in the conference.
    Resume,
    /// Out of the conference; their call goes on with the TwiML after its `<Dial>` (for
    /// Warmline's calls, none: it ends). A participant already out is no error.
    Remove,
}

/// A recording's audio, as Twilio serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub content_type: String,
    pub audio: Vec<u8>,
}

/// The port through which handlers place and steer calls and fetch what callers recorded; the
/// REST client in production, fakes in tests.
#[async_trait]
pub trait Dialer: Send + Sync {
    async fn place_call(&self, call: &OutboundCall) -> Result<CallSid, TwilioError>;

    async fn update_call(&self, call: &CallSid, update: &CallUpdate) -> Result<(), TwilioError>;

    /// Changes the participant on `call` in conference `conference_sid` (`CF…`).
    async fn update_participant(
        &self,
        conference_sid: &str,
        call: &CallSid,
        update: &ParticipantUpdate,
    ) -> Result<(), TwilioError>;

    /// The MP3 of recording `recording_sid` (`RE…`).
    async fn recording(&self, recording_sid: &str) -> Result<Recording, TwilioError>;
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error document; `code` is Twilio's own error code.
    #[error("Twilio answered {status} (code {code:?}): {message}")]
    Api { status: u16, code: Option<u32>, message: String },
    #[error("could not reach Twilio")]
    Transport(#[source] reqwest::Error),
    #[error("Twilio's answer could not be read")]
    UnexpectedResponse(#[source] reqwest::Error),
    #[error("Twilio answered with a malformed call SID")]
    MalformedSid,
    #[error("this function is not wired to Twilio's REST API")]
    NotConfigured,
    #[error("TLS for Twilio could not be set up")]
    Tls(#[source] rustls::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole request, connection included. A webhook must answer Twilio within seconds.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_millis(1000), total: Duration::from_millis(2000) }
    }
}

#[derive(Debug, Clone)]
pub struct TwilioRestClient {
    http: reqwest::Client,
    base_url: String,
    account_sid: String,
    api_key: String,
    api_secret: Secret,
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
}

#[derive(Deserialize)]
struct ErrorDocument {
    code: Option<u32>,
    message: Option<String>,
}

/// TLS for api.twilio.com: Mozilla's roots compiled in, not reqwest's default of the system's
/// CA store read from disk at every cold start (see `crate::tls`).
fn tls_config() -> Result<rustls::ClientConfig, TwilioError> {
    crate::tls::client_config(crate::tls::roots()).map_err(TwilioError::Tls)
}

impl TwilioRestClient {
    pub fn new(
        base_url: &str,
        account_sid: &str,
        api_key: &str,
        api_secret: Secret,
        timeouts: Timeouts,
    ) -> Result<Self, TwilioError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .user_agent(concat!("warmline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(TwilioError::Transport)?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            api_key: api_key.to_owned(),
            api_secret,
        })
    }

    /// The client for the account and API key in `config`, with the default timeouts.
    pub fn from_config(config: &crate::config::TwilioConfig) -> Result<Self, TwilioError> {
        Self::new(
            &config.api_base_url,
            &config.account_sid,
            &config.api_key,
            config.api_secret.clone(),
            Timeouts::default(),
        )
    }

    /// Opens a connection to the API (DNS, TCP, TLS) and leaves it in the pool. Whether the
    /// answer is a success does not matter; `true` when Twilio answered at all.
    pub async fn warm_up(&self) -> bool {
        match self.http.head(&self.base_url).send().await {
            Ok(response) => response.bytes().await.is_ok(),
            Err(_) => false,
        }
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Result<reqwest::Response, TwilioError> {
        let url = format!("{}/2010-04-01/Accounts/{}/{path}", self.base_url, self.account_sid);
        let response = self
            .http
            .post(url)
            .basic_auth(&self.api_key, Some(self.api_secret.expose()))
            .form(form)
            .send()
            .await
            .map_err(TwilioError::Transport)?;
        checked(response).await
    }
}

#[async_trait]
impl Dialer for TwilioRestClient {
    async fn place_call(&self, call: &OutboundCall) -> Result<CallSid, TwilioError> {
        let timeout = call.timeout_seconds.map(|seconds| seconds.to_string());
        let mut form = vec![("To", call.to.as_str()), ("From", call.from.as_str()), ("Url", call.url.as_str())];
        if let Some(timeout) = &timeout {
            form.push(("Timeout", timeout));
        }
        if let Some(url) = &call.status_callback {
            form.extend([("StatusCallback", url.as_str()), ("StatusCallbackEvent", "completed")]);
            form.push(("StatusCallbackMethod", "POST"));
        }
        let response = self.post_form("Calls.json", &form).await?;
        let call = response.json::<CallResource>().await.map_err(TwilioError::UnexpectedResponse)?;
        CallSid::parse(&call.sid).ok_or(TwilioError::MalformedSid)
    }

    async fn update_call(&self, call: &CallSid, update: &CallUpdate) -> Result<(), TwilioError> {
        let form = match update {
            CallUpdate::Cancel => [("Status", "canceled")],
            CallUpdate::Twiml(twiml) => [("Twiml", twiml.as_str())],
        };
        // The answer is the call resource; nothing in it is needed, but reading it to the end
        // returns the connection to the pool.
        let response = self.post_form(&format!("Calls/{call}.json"), &form).await?;
        response.bytes().await.map_err(TwilioError::UnexpectedResponse)?;
        Ok(())
    }

    async fn update_participant(
        &self,
        conference_sid: &str,
        call: &CallSid,
        update: &ParticipantUpdate,
    ) -> Result<(), TwilioError> {
        let path = format!("Conferences/{conference_sid}/Participants/{call}.json");
        let response = match update {
            ParticipantUpdate::Hold { hold_url } => {
                self.post_form(&path, &[("Hold", "true"), ("HoldUrl", hold_url), ("HoldMethod", "POST")]).await?
            }
            ParticipantUpdate::Resume => self.post_form(&path, &[("Hold", "false")]).await?,
            ParticipantUpdate::Remove => {
                let url = format!("{}/2010-04-01/Accounts/{}/{path}", self.base_url, self.account_sid);
                let sent = self
                    .http
                    .delete(url)
                    .basic_auth(&self.api_key, Some(self.api_secret.expose()))
                    .send()
                    .await
                    .map_err(TwilioError::Transport)?;
                match checked(sent).await {
                    // Gone already: what removing them was for.
                    Err(TwilioError::Api { status: 404, .. }) => return Ok(()),
                    outcome => outcome?,
                }
            }
        };
        response.bytes().await.map_err(TwilioError::UnexpectedResponse)?;
        Ok(())
    }

    async fn recording(&self, recording_sid: &str) -> Result<Recording, TwilioError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Recordings/{recording_sid}.mp3", self.base_url, self.account_sid);
        let response = self
            .http
            .get(url)
            .basic_auth(&self.api_key, Some(self.api_secret.expose()))
            .send()
            .await
            .map_err(TwilioError::Transport)?;
        let response = checked(response).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("audio/mpeg")
            .to_owned();
        let audio = response.bytes().await.map_err(TwilioError::UnexpectedResponse)?.to_vec();
        Ok(Recording { content_type, audio })
    }
}

/// A successful answer, or Twilio's error document as a `TwilioError`.
async fn checked(response: reqwest::Response) -> Result<reqwest::Response, TwilioError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let document = response.json::<ErrorDocument>().await.ok();
    Err(TwilioError::Api {
        status,
        code: document.as_ref().and_then(|d| d.code),
        message: document.and_then(|d| d.message).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const ACCOUNT: &str = "AC00000000000000000000000000000000";
    const KEY: &str = "SK00000000000000000000000000000000";
    const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

    fn client(server: &MockServer, timeouts: Timeouts) -> TwilioRestClient {
        TwilioRestClient::new(&server.uri(), ACCOUNT, KEY, Secret::new("key-secret"), timeouts).unwrap()
    }

    fn agent_call() -> OutboundCall {
        OutboundCall::new(
            "client:agent1",
            "+15550000000",
            format!("https://h.example/conference/{CALL_SID}/connect/agent1"),
        )
    }

    fn call_sid() -> CallSid {
        CallSid::parse(CALL_SID).unwrap()
    }

    #[tokio::test]
    async fn places_a_call_with_basic_auth_and_the_exact_form() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json")))
            // base64("SK000…:key-secret")
            .and(header("authorization", "Basic U0swMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDprZXktc2VjcmV0"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string(format!(
                "To=client%3Aagent1&From=%2B15550000000&Url=https%3A%2F%2Fh.example%2Fconference%2F{CALL_SID}%2Fconnect%2Fagent1"
            )))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": CALL_SID, "status": "queued"})))
            .expect(1)
            .mount(&server)
            .await;

        let sid = client(&server, Timeouts::default()).place_call(&agent_call()).await.unwrap();
        assert_eq!(sid.as_str(), CALL_SID);
    }

    #[tokio::test]
    async fn asks_for_a_ring_timeout_and_a_status_callback() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json")))
            .and(body_string(format!(
                "To=client%3Aagent1&From=%2B15550000000&Url=https%3A%2F%2Fh.example%2Fconference%2F{CALL_SID}%2Fconnect%2Fagent1\
                 &Timeout=20&StatusCallback=https%3A%2F%2Fh.example%2Fconference%2F{CALL_SID}%2Fagents%2Fagent1%2Fstatus\
                 &StatusCallbackEvent=completed&StatusCallbackMethod=POST"
            )))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": CALL_SID, "status": "queued"})))
            .expect(1)
            .mount(&server)
            .await;

        let call = OutboundCall {
            timeout_seconds: Some(20),
            status_callback: Some(format!("https://h.example/conference/{CALL_SID}/agents/agent1/status")),
            ..agent_call()
        };
        let sid = client(&server, Timeouts::default()).place_call(&call).await.unwrap();
        assert_eq!(sid.as_str(), CALL_SID);
    }

    #[tokio::test]
    async fn cancels_a_call_and_replaces_a_calls_twiml() {
        let server = MockServer::start().await;
        let call_path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL_SID}.json");
        let resource = serde_json::json!({"sid": CALL_SID, "status": "canceled"});
        Mock::given(method("POST"))
            .and(path(&call_path))
            .and(header("authorization", "Basic U0swMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDprZXktc2VjcmV0"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("Status=canceled"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&resource))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(&call_path))
            .and(body_string("Twiml=%3CResponse%3E%3CSay%3EBye+%26+thanks%3C%2FSay%3E%3CHangup%2F%3E%3C%2FResponse%3E"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&resource))
            .expect(1)
            .mount(&server)
            .await;

        let client = client(&server, Timeouts::default());
        client.update_call(&call_sid(), &CallUpdate::Cancel).await.unwrap();
        let twiml = CallUpdate::Twiml("<Response><Say>Bye & thanks</Say><Hangup/></Response>".into());
        client.update_call(&call_sid(), &twiml).await.unwrap();
    }

    #[tokio::test]
    async fn an_update_twilio_refuses_is_an_api_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": 21220, "message": "Call is not in-progress. Cannot redirect.", "status": 400
            })))
            .mount(&server)
            .await;
        let err = client(&server, Timeouts::default())
            .update_call(&call_sid(), &CallUpdate::Twiml("<Response/>".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, TwilioError::Api { status: 400, code: Some(21220), .. }), "{err:?}");
    }

    #[tokio::test]
    async fn keeps_twilios_error_code_and_message() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": 21211, "message": "The 'To' number is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400
            })))
            .mount(&server)
            .await;

        let err = client(&server, Timeouts::default()).place_call(&agent_call()).await.unwrap_err();
        match err {
            TwilioError::Api { status, code, message } => {
                assert_eq!((status, code), (400, Some(21211)));
                assert_eq!(message, "The 'To' number is not a valid phone number.");
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_server_error_without_a_document_is_still_an_api_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
        let err = client(&server, Timeouts::default()).place_call(&agent_call()).await.unwrap_err();
        assert!(matches!(err, TwilioError::Api { status: 503, code: None, .. }), "{err:?}");
    }

    #[tokio::test]
    async fn gives_up_on_a_server_that_does_not_answer() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(30)))
            .mount(&server)
            .await;
        let timeouts = Timeouts { connect: Duration::from_millis(100), total: Duration::from_millis(200) };
        let err = client(&server, timeouts).place_call(&agent_call()).await.unwrap_err();
        match err {
            TwilioError::Transport(source) => assert!(source.is_timeout(), "{source:?}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn rejects_a_malformed_sid() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "nope"})))
            .mount(&server)
            .await;
        let err = client(&server, Timeouts::default()).place_call(&agent_call()).await.unwrap_err();
        assert!(matches!(err, TwilioError::MalformedSid));
    }

    /// A TLS server on loopback for `localhost` whose certificate is its own root: trusted by
    /// no public list and no system store. Answers every request with a created call.
    async fn tls_server_with_a_private_root() -> (String, reqwest::Certificate) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (acceptor, cert) = crate::tls::self_signed_localhost();
        let root = reqwest::Certificate::from_der(&cert).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    // Only a client that trusts the root gets this far, with a bodyless request:
                    // its headers are all there is to read before answering.
                    let mut request = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    while let Ok(read @ 1..) = tls.read(&mut chunk).await {
                        request.extend_from_slice(&chunk[..read]);
                        if request.ends_with(b"\r\n\r\n") {
                            break;
                        }
                    }
                    let body = format!(r#"{{"sid":"{CALL_SID}"}}"#);
                    let answer = format!(
                        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    tls.write_all(answer.as_bytes()).await.ok();
                    tls.shutdown().await.ok();
                });
            }
        });
        (format!("https://localhost:{port}"), root)
    }

    #[tokio::test]
    async fn refuses_a_server_whose_certificate_no_public_root_vouches_for() {
        let (base_url, private_root) = tls_server_with_a_private_root().await;
        // A client that trusts the private root gets its answer: what follows is about trust.
        let trusting = reqwest::Client::builder().tls_certs_only([private_root]).build().unwrap();
        assert_eq!(trusting.post(format!("{base_url}/any")).send().await.unwrap().status(), 201);

        let client = TwilioRestClient::new(&base_url, ACCOUNT, KEY, Secret::new("s"), Timeouts::default()).unwrap();
        let refused = client.place_call(&agent_call()).await.unwrap_err();
        let TwilioError::Transport(source) = &refused else { panic!("{refused:?}") };
        let chain = std::iter::successors(Some(source as &dyn std::error::Error), |e| e.source())
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(" / ");
        assert!(chain.contains("UnknownIssuer"), "{chain}");
    }

    #[tokio::test]
    async fn warm_up_reaches_the_api_and_takes_any_answer() {
        let server = MockServer::start().await;
        Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).expect(1).mount(&server).await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": CALL_SID})))
            .mount(&server)
            .await;
        let client = client(&server, Timeouts::default());
        assert!(client.warm_up().await, "any answer counts");
        client.place_call(&agent_call()).await.unwrap();
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2);
        let unreachable =
            TwilioRestClient::new("http://127.0.0.1:1", ACCOUNT, KEY, Secret::new("s"), Timeouts::default()).unwrap();
        assert!(!unreachable.warm_up().await);
    }

    #[tokio::test]
    async fn removing_a_participant_already_gone_is_done_but_holding_one_is_an_error() {
        let server = MockServer::start().await;
        let gone = serde_json::json!({"code": 20404, "message": "The requested resource was not found"});
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(404).set_body_json(gone.clone()))
            .mount(&server)
            .await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(404).set_body_json(gone)).mount(&server).await;
        let client = client(&server, Timeouts::default());
        let conference = format!("CF{}", "0".repeat(32));
        client.update_participant(&conference, &call_sid(), &ParticipantUpdate::Remove).await.unwrap();
        let held = client.update_participant(&conference, &call_sid(), &ParticipantUpdate::Resume).await;
        assert!(matches!(held, Err(TwilioError::Api { status: 404, code: Some(20404), .. })), "{held:?}");
    }

    #[test]
    fn debug_output_hides_the_api_secret() {
        let client =
            TwilioRestClient::new("http://127.0.0.1:1", ACCOUNT, KEY, Secret::new("key-secret"), Timeouts::default())
                .unwrap();
        assert!(!format!("{client:?}").contains("key-secret"));
    }
}
