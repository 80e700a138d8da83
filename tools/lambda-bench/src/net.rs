//! Loopback listeners that answer at once.

use std::net::SocketAddr;

use axum::serve::ListenerExt as _;

/// A listener whose connections send each answer at once: with Nagle's algorithm, an answer
/// written in two parts waits for the peer's delayed ACK, up to 40 ms, which would be measured
/// as the function's or the upstream's time.
pub fn no_delay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    })
}
