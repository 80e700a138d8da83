//! A stand-in for the part of Twilio that Warmline uses, for tests and `make dev` without a
//! Twilio account: the REST API subset, calls that ring scripted endpoints, a TwiML interpreter,
//! conferences, signed webhooks and status callbacks, and a timeline of everything.
//!
//! It models call control, keypad input (`<Gather>`) and `<Record>` with stand-in media files;
//! there is no real audio, no media streams, SIP, transcription or billing.
//!
//! Each module uses only those before it in `twiml`, `timeline`, `model`, `state`, `webhook`,
//! `conference`, `call`, `sim`, `rest`, `control`, `client`, `demo` (`env_file` and
//! `access_token` need only `model`), so a layer can be read and changed without the ones above
//! it.

pub mod access_token;
pub mod call;
pub mod client;
pub mod conference;
pub mod control;
pub mod demo;
pub mod env_file;
pub mod model;
pub mod rest;
pub mod sim;
pub mod state;
pub mod timeline;
pub mod twiml;
pub mod webhook;

use std::net::SocketAddr;

pub use model::{
    AnswerMode, Behaviour, BrowserCall, CallStatus, CallView, CallbackMode, ConferenceView, InboundCall, RecordingView,
    SimConfig,
};
pub use state::Sim;
pub use timeline::{Entry, Event, Timeline};

/// The REST API and the control API on one port.
pub fn router(sim: Sim) -> axum::Router {
    rest::router().merge(control::router()).with_state(sim)
}

/// A simulator serving on a loopback port until dropped.
pub struct Server {
    pub sim: Sim,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (port 0: any free port) and serves in the background.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let sim = Sim::new(config);
        sim.set_api_base_url(&format!("http://{addr}"));
        let app = router(sim.clone());
        // Each answer leaves at once: Nagle's algorithm would hold an answer's second part for
        // the client's delayed ACK (up to 40 ms), a delay Twilio's API does not have.
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            let _ = stream.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("twilio-sim: the server stopped: {err}");
            }
        });
        Ok(Self { sim, addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
