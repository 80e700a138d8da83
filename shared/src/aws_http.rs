//! The HTTPS client of every AWS SDK client a function builds (DynamoDB, Secrets Manager):
//! reqwest with the roots of `tls`, compiled in, in place of the SDK's default client, which
//! reads the system's CA store at init. That read was most of a cold start (milliseconds on
//! Lambda's one-bundle layout, more on Debian's directory of links), and no option of the SDK's
//! own client leaves the store out but one that parses PEM text again at every connector it
//! builds. The AWS endpoints' trust is unchanged: they chain to Amazon Trust Services' roots,
//! which Mozilla's list holds (`tls` tests that).
//!
//! What the SDK's client did besides TLS is kept: connect and read timeouts from the SDK's
//! settings, one connection pool per distinct setting, no proxy, `TCP_NODELAY`, and failures
//! classified as the SDK's retry policy expects (a timeout or a broken connection is worth
//! another attempt; a request that cannot be built is not).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;

use crate::tls;

/// The client to give `aws_config`'s loader (or an `SdkConfig` builder): every SDK client made
/// from that configuration connects through it.
pub fn client() -> SharedHttpClient {
    ReqwestClient::new(tls::roots()).into_shared()
}

/// One reqwest client per distinct connect/read timeout pair the SDK asks for, made on first use.
#[derive(Debug)]
pub struct ReqwestClient {
    roots: rustls::RootCertStore,
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl ReqwestClient {
    /// A client trusting `roots` only (tests hand in a private root).
    pub fn new(roots: rustls::RootCertStore) -> Self {
        Self { roots, connectors: Mutex::new(Vec::new()) }
    }

    fn connector(&self, timeouts: Timeouts) -> SharedHttpConnector {
        let (connect, read) = timeouts;
        let built = tls::client_config(self.roots.clone()).map_err(|err| err.to_string()).and_then(|tls| {
            let mut builder =
                reqwest::Client::builder().tls_backend_preconfigured(tls).no_proxy().tcp_nodelay(true).http1_only();
            if let Some(connect) = connect {
                builder = builder.connect_timeout(connect);
            }
            if let Some(read) = read {
                builder = builder.read_timeout(read);
            }
            builder.build().map_err(|err| err.to_string())
        });
        match built {
            Ok(http) => ReqwestConnector { http }.into_shared(),
            // Nothing in the configuration can fail at run time; if it ever did, every call says
            // why (the store answers 503) rather than the function dying at init.
            Err(reason) => {
                tracing::error!(%reason, "could not build the AWS HTTPS client");
                Unusable { reason }.into_shared()
            }
        }
    }
}

impl HttpClient for ReqwestClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.connector_for((settings.connect_timeout(), settings.read_timeout()))
    }
}

impl ReqwestClient {
    /// The SDK asks for a connector at every request: the first one made for these timeouts.
    fn connector_for(&self, timeouts: Timeouts) -> SharedHttpConnector {
        let mut connectors = self.connectors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(known, _)| *known == timeouts) {
            return connector.clone();
        }
        let connector = self.connector(timeouts);
        connectors.push((timeouts, connector.clone()));
        connector
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    http: reqwest::Client,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move {
            // DynamoDB and Secrets Manager requests are JSON documents held in memory.
            if request.body().bytes().is_none() {
                return Err(ConnectorError::user("a streaming request body".into()));
            }
            let request = request.try_into_http1x().map_err(|err| ConnectorError::user(err.into()))?;
            let request =
                reqwest::Request::try_from(request.map(|body| body.bytes().map(<[u8]>::to_vec).unwrap_or_default()))
                    .map_err(|err| ConnectorError::user(err.into()))?;
            let response = http.execute(request).await.map_err(classify)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(classify)?;
            let mut answer = HttpResponse::new(
                status.try_into().map_err(|err| ConnectorError::other(Box::new(err), None))?,
                SdkBody::from(body),
            );
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    answer.headers_mut().append(name.as_str().to_owned(), value.to_owned());
                }
            }
            Ok(answer)
        })
    }
}

/// What the SDK's retry policy needs to know of a failure: a timeout and a broken or refused
/// connection are transient; a request reqwest cannot even build is the caller's.
fn classify(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_builder() {
        ConnectorError::user(err.into())
    } else if err.is_connect() {
        ConnectorError::io(err.into()).never_connected()
    } else {
        ConnectorError::io(err.into())
    }
}

#[derive(Debug)]
struct Unusable {
    reason: String,
}

impl HttpConnector for Unusable {
    fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
        let reason = self.reason.clone();
        HttpConnectorFuture::ready(Err(ConnectorError::user(reason.into())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_sdk_dynamodb::config::{Credentials, Region};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A TLS server for `localhost` on loopback whose certificate is its own root, answering
    /// every request as DynamoDB answers `ListTables`, after reading the whole request. Returns
    /// its URL, its root, and the requests it read.
    async fn dynamodb_over_tls() -> (String, rustls::RootCertStore, Arc<Mutex<Vec<String>>>) {
        let (acceptor, cert) = crate::tls::self_signed_localhost();
        let mut root = rustls::RootCertStore::empty();
        root.add(cert).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let mut request = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    while let Ok(read @ 1..) = tls.read(&mut chunk).await {
                        request.extend_from_slice(&chunk[..read]);
                        let text = String::from_utf8_lossy(&request);
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|line| {
                                    line.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned)
                                })
                                .and_then(|n| n.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if body.len() >= length {
                                break;
                            }
                        }
                    }
                    seen.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
                    let body = r#"{"TableNames":["calls","tickets"]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: R1\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    tls.write_all(answer.as_bytes()).await.ok();
                    tls.shutdown().await.ok();
                });
            }
        });
        (format!("https://localhost:{port}"), root, requests)
    }

    fn dynamodb(endpoint: &str, http: SharedHttpClient) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "tests"))
            .timeout_config(crate::app::dynamodb_timeouts())
            .retry_config(crate::app::dynamodb_retries())
            .http_client(http)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn carries_a_signed_request_over_tls_and_hands_back_the_answer() {
        let (endpoint, private_root, requests) = dynamodb_over_tls().await;
        let client = dynamodb(&endpoint, ReqwestClient::new(private_root).into_shared());
        let tables = client.list_tables().send().await.unwrap();
        assert_eq!(tables.table_names(), ["calls", "tickets"]);
        let requests = requests.lock().unwrap();
        let [request] = requests.as_slice() else { panic!("{requests:?}") };
        assert!(request.starts_with("POST / HTTP/1.1\r\n"), "{request}");
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("x-amz-target: dynamodb_20120810.listtables\r\n"), "{request}");
        assert!(lower.contains("authorization: aws4-hmac-sha256 credential=akidtest/"), "{request}");
        assert!(request.ends_with("\r\n\r\n{}"), "the JSON body, whole: {request}");
    }

    #[tokio::test]
    async fn refuses_a_server_no_compiled_in_root_vouches_for() {
        let (endpoint, _, requests) = dynamodb_over_tls().await;
        let err = dynamodb(&endpoint, client()).list_tables().send().await.unwrap_err();
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(" / ");
        assert!(chain.contains("UnknownIssuer"), "{chain}");
        assert!(requests.lock().unwrap().is_empty(), "no request crossed an untrusted connection");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_as_the_sdk_retries_it_then_reported() {
        // Nothing listens on a port just closed: every attempt is refused at once.
        let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let err = dynamodb(&format!("http://127.0.0.1:{port}"), client()).list_tables().send().await.unwrap_err();
        let aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) = &err else { panic!("{err:?}") };
        assert!(failure.is_io(), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_is_a_timeout_the_sdk_retries() {
        // Accepts every connection and reads, but never answers: each attempt ends at the SDK's
        // read timeout, and after the last one the failure is reported as a timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                *counter.lock().unwrap() += 1;
                held.push(stream);
            }
        });
        let timeouts = aws_config::timeout::TimeoutConfig::builder().read_timeout(Duration::from_millis(100)).build();
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "tests"))
            .timeout_config(timeouts)
            .retry_config(crate::app::dynamodb_retries())
            .http_client(client())
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(config).list_tables().send().await.unwrap_err();
        let aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) = &err else { panic!("{err:?}") };
        assert!(failure.is_timeout(), "{err:?}");
        assert_eq!(*accepted.lock().unwrap(), 3, "three attempts, each on a new connection");
    }

    #[test]
    fn one_connector_per_distinct_pair_of_timeouts() {
        let client = ReqwestClient::new(tls::roots());
        let fast = (Some(Duration::from_millis(500)), None);
        let slow = (Some(Duration::from_secs(1)), None);
        client.connector_for(fast);
        client.connector_for(fast);
        client.connector_for(slow);
        assert_eq!(client.connectors.lock().unwrap().len(), 2);
    }
}
