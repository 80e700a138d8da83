//! The latency mode: a local upstream made as slow as the real service. Two proxies in a row
//! show where the delay falls: the first (with the latency) and the second (without, only
//! noting when requests reach it) stand between a client and a wiremock upstream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed setup is a failed test"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Two proxies in a row in front of an upstream that answers 200 `ok` to anything.
async fn chain() -> (MockServer, FaultProxy, FaultProxy) {
    let upstream = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&upstream).await;
    let behind = FaultProxy::in_front_of(&upstream.uri()).await.unwrap();
    let front = FaultProxy::start(behind.addr()).await.unwrap();
    (upstream, front, behind)
}

/// One POST through `proxy` on a fresh connection: the status line's code and when the answer
/// was complete.
async fn post(proxy: SocketAddr) -> (u16, Instant) {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let request = "POST /2010-04-01/Accounts/AC1/Calls.json HTTP/1.1\r\nhost: proxy\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, Instant::now())
}

#[tokio::test]
async fn a_latency_delays_every_request_before_it_reaches_the_upstream_until_it_is_set_to_zero() {
    let (_upstream, front, behind) = chain().await;
    let latency = Duration::from_millis(300);
    front.set_latency(latency);
    assert_eq!(front.latency(), latency);

    for _ in 0..3 {
        let sent = Instant::now();
        let (status, answered) = post(front.addr()).await;
        assert_eq!(status, 200);
        assert!(answered - sent >= latency, "answered after {:?}", answered - sent);
    }
    let (arrived, reached) = (front.arrivals(), behind.arrivals());
    assert_eq!((arrived.len(), reached.len()), (3, 3));
    for (arrived, reached) in arrived.iter().zip(&reached) {
        assert!(*reached - *arrived >= latency, "the upstream saw it after {:?}", *reached - *arrived);
    }

    front.set_latency(Duration::ZERO);
    post(front.addr()).await;
    let (arrived, reached) = (front.arrivals()[3], behind.arrivals()[3]);
    assert!(reached - arrived < latency, "still delayed by {:?}", reached - arrived);
}

#[tokio::test]
async fn a_fault_is_answered_after_the_latency_too_and_never_reaches_the_upstream() {
    let (_upstream, front, behind) = chain().await;
    let latency = Duration::from_millis(200);
    front.set_latency(latency);
    front.set(Fault::Status(503));
    let sent = Instant::now();
    let (status, answered) = post(front.addr()).await;
    assert_eq!(status, 503);
    assert!(answered - sent >= latency, "answered after {:?}", answered - sent);
    assert_eq!(behind.requests(), 0);
}

/// The delay is each request's own: twenty at once take about one latency, not twenty. A proxy
/// that waited in one queue would take 20 × 250 ms = 5 s.
#[tokio::test]
async fn requests_at_once_are_delayed_side_by_side_not_one_after_another() {
    let (_upstream, front, _behind) = chain().await;
    let latency = Duration::from_millis(250);
    front.set_latency(latency);
    let sent = Instant::now();
    let requests: Vec<_> = (0..20).map(|_| tokio::spawn(post(front.addr()))).collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    let last = answers.iter().map(|(_, at)| *at).max().unwrap();
    assert!(answers.iter().all(|(status, _)| *status == 200));
    assert!(last - sent >= latency);
    assert!(last - sent < latency * 8, "20 requests took {:?}", last - sent);
}
