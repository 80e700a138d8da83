//! Every HTTP route of Warmline, once. Handlers build callback URLs and read path parameters
//! only through this module; `template.yaml`, the `cargo lambda watch` router in `Cargo.toml`
//! and the README's route table are copies that a test holds against `ENDPOINTS`
//! (`every_copy_of_the_route_table_agrees`), and `make dev` prints the routes from the checked
//! watch router.
//!
//! Adding an endpoint: a row in `ENDPOINTS` and a `Route` variant (its `path` and its case in
//! `Route::of`), then the copies the test names, then the handler (see docs/CONTRIBUTING.md).

use lambda_http::{Request, RequestExt};

use crate::domain::{AgentId, CallAction, CallSid, TicketId};

/// One row of the route table: a path template (API Gateway's syntax, `{name}` for a path
/// parameter), the methods it answers, and the function (`functions/<name>`) that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub path: &'static str,
    /// Comma-separated, as an `Allow` header lists them.
    pub methods: &'static str,
    pub function: &'static str,
    /// Who calls it, for the README's table.
    pub caller: &'static str,
}

impl Endpoint {
    pub fn methods(&self) -> impl Iterator<Item = &'static str> {
        self.methods.split(", ")
    }
}

/// The route table. The order is the README's.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint { path: "/", methods: "GET", function: "pages", caller: "customer" },
    Endpoint { path: "/dashboard", methods: "GET", function: "pages", caller: "agent" },
    Endpoint { path: "/static/{file}", methods: "GET", function: "pages", caller: "browsers" },
    Endpoint { path: "/login", methods: "GET, POST", function: "session", caller: "agent" },
    Endpoint { path: "/logout", methods: "POST", function: "session", caller: "agent" },
    Endpoint { path: "/tickets", methods: "POST, GET", function: "tickets", caller: "customer page, dashboard" },
    Endpoint {
        path: "/tickets/{ticket_id}/recording",
        methods: "GET",
        function: "tickets",
        caller: "dashboard (voicemail player)",
    },
    Endpoint { path: "/tickets/{ticket_id}/status", methods: "POST", function: "tickets", caller: "dashboard" },
    Endpoint { path: "/tickets/{ticket_id}/notes", methods: "POST", function: "tickets", caller: "dashboard" },
    Endpoint { path: "/tickets/{ticket_id}/calls", methods: "GET", function: "tickets", caller: "dashboard" },
    Endpoint { path: "/calls.csv", methods: "GET", function: "tickets", caller: "dashboard (call log export)" },
    Endpoint { path: "/token", methods: "POST", function: "token", caller: "both pages" },
    Endpoint { path: "/presence", methods: "GET, PUT", function: "presence", caller: "dashboard" },
    Endpoint { path: "/wallboard", methods: "GET", function: "presence", caller: "dashboard" },
    Endpoint { path: "/calls/current", methods: "GET", function: "presence", caller: "dashboard" },
    Endpoint {
        path: "/calls/{call_id}/{action}",
        methods: "POST",
        function: "conference-call-agent",
        caller: "dashboard (hold, resume, consult, complete, cancel, transfer)",
    },
    Endpoint {
        path: "/call/connect",
        methods: "POST",
        function: "call-connect",
        caller: "Twilio (the customers' TwiML App)",
    },
    Endpoint {
        path: "/call/agent",
        methods: "POST",
        function: "call-connect",
        caller: "Twilio (the agents' TwiML App)",
    },
    Endpoint {
        path: "/call/customer/{agent_id}",
        methods: "POST",
        function: "call-connect",
        caller: "Twilio (a customer answered an agent's call)",
    },
    Endpoint {
        path: "/call/customer/{agent_id}/status",
        methods: "POST",
        function: "call-connect",
        caller: "Twilio (how an agent's call to a customer ended)",
    },
    Endpoint {
        path: "/conference/connect/client",
        methods: "POST",
        function: "conference-connect-client",
        caller: "Twilio (the number's Voice URL)",
    },
    Endpoint { path: "/conference/wait", methods: "POST", function: "conference-wait", caller: "Twilio (waitUrl)" },
    Endpoint {
        path: "/conference/{conference_id}/connect/{agent_id}",
        methods: "POST",
        function: "conference-connect-agent",
        caller: "Twilio (agent answered)",
    },
    Endpoint {
        path: "/conference/{agent_id}/call",
        methods: "POST",
        function: "conference-call-agent",
        caller: "dashboard",
    },
    Endpoint {
        path: "/conference/{conference_id}/events",
        methods: "POST",
        function: "conference-events",
        caller: "Twilio (conference status callback)",
    },
    Endpoint {
        path: "/conference/{conference_id}/agents/{agent_id}/status",
        methods: "POST",
        function: "conference-events",
        caller: "Twilio (agent call status callback)",
    },
    Endpoint {
        path: "/voicemail/{conference_id}/choice",
        methods: "POST",
        function: "voicemail",
        caller: "Twilio (Gather action)",
    },
    Endpoint {
        path: "/voicemail/{conference_id}/back",
        methods: "POST",
        function: "voicemail",
        caller: "Twilio (no message after all)",
    },
    Endpoint {
        path: "/voicemail/{conference_id}/done",
        methods: "POST",
        function: "voicemail",
        caller: "Twilio (Record action)",
    },
    Endpoint {
        path: "/voicemail/{conference_id}/recording",
        methods: "POST",
        function: "voicemail",
        caller: "Twilio (recording status callback)",
    },
];

/// The query that marks a hold-music turn coming back (`<Redirect>`), as opposed to the
/// caller's arrival: the hold message is said on arrival only.
const RETURNING_QUERY: &str = "held=1";

/// A request's route with its parameters parsed, or a route to build a URL for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Home,
    Dashboard,
    Asset {
        file: String,
    },
    Login,
    Logout,
    Tickets,
    /// The audio of a voicemail ticket, from Twilio.
    TicketRecording {
        ticket: TicketId,
    },
    /// Closes or reopens a ticket, for the signed-in agent.
    TicketStatus {
        ticket: TicketId,
    },
    /// Appends the signed-in agent's note to a ticket.
    TicketNotes {
        ticket: TicketId,
    },
    /// A ticket's calls, from the call ledger.
    TicketCalls {
        ticket: TicketId,
    },
    /// The call ledger's calls of a range of days, as CSV.
    CallsCsv,
    Token,
    /// The signed-in agent's presence.
    Presence,
    /// The line, the team and today's figures, for any signed-in agent.
    Wallboard,
    /// The support call the signed-in agent is offered or on.
    CurrentCall,
    /// The signed-in agent's `action` on the support call `call` (the customer's CallSid).
    CallAction {
        call: CallSid,
        action: CallAction,
    },
    /// The customers' TwiML App's Voice URL: a call from the customer page. Whoever calls here
    /// is a customer, whatever the request says.
    BrowserCall,
    /// The agents' TwiML App's Voice URL: a call from the dashboard. Only agents' Access Tokens
    /// grant this app, so a customer's token can never reach it.
    AgentBrowserCall,
    /// Twilio fetches this when the customer `agent` called answers: they join the agent's
    /// conference.
    CustomerAnswers {
        agent: AgentId,
    },
    /// How the call to the customer `agent` called ended (its status callback).
    CustomerCallStatus {
        agent: AgentId,
    },
    /// The support number's Voice URL.
    PhoneCall,
    /// The conference's waitUrl; `returning` for every turn after the first.
    HoldMusic {
        returning: bool,
    },
    /// Twilio fetches this when `agent` answers the call that brings them into `conference`.
    AgentJoin {
        conference: CallSid,
        agent: AgentId,
    },
    /// The dashboard's "Dial a colleague in", for the agent named in the path.
    DialColleague {
        agent: AgentId,
    },
    /// A support conference's own status callback.
    ConferenceEvents {
        conference: CallSid,
    },
    /// How a call placed to `agent` for `conference` ended.
    AgentCallStatus {
        conference: CallSid,
        agent: AgentId,
    },
    /// The key a caller pressed when offered to leave a message.
    VoicemailChoice {
        conference: CallSid,
    },
    /// A caller who left no message after all goes back into line.
    BackInLine {
        conference: CallSid,
    },
    /// The caller's message is recorded.
    VoicemailDone {
        conference: CallSid,
    },
    /// Twilio has the recording of a caller's message.
    VoicemailRecorded {
        conference: CallSid,
    },
}

/// Why a request has no route: each is answered as its status says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// A path parameter that is not what the route takes (a malformed CallSid, say).
    #[error("malformed path parameter {0}")]
    BadParameter(&'static str),
}

impl Route {
    /// The table row of this route.
    pub fn endpoint(&self) -> &'static Endpoint {
        let path = match self {
            Self::Home => "/",
            Self::Dashboard => "/dashboard",
            Self::Asset { .. } => "/static/{file}",
            Self::Login => "/login",
            Self::Logout => "/logout",
            Self::Tickets => "/tickets",
            Self::TicketRecording { .. } => "/tickets/{ticket_id}/recording",
            Self::TicketStatus { .. } => "/tickets/{ticket_id}/status",
            Self::TicketNotes { .. } => "/tickets/{ticket_id}/notes",
            Self::TicketCalls { .. } => "/tickets/{ticket_id}/calls",
            Self::CallsCsv => "/calls.csv",
            Self::Token => "/token",
            Self::Presence => "/presence",
            Self::Wallboard => "/wallboard",
            Self::CurrentCall => "/calls/current",
            Self::CallAction { .. } => "/calls/{call_id}/{action}",
            Self::BrowserCall => "/call/connect",
            Self::AgentBrowserCall => "/call/agent",
            Self::CustomerAnswers { .. } => "/call/customer/{agent_id}",
            Self::CustomerCallStatus { .. } => "/call/customer/{agent_id}/status",
            Self::PhoneCall => "/conference/connect/client",
            Self::HoldMusic { .. } => "/conference/wait",
            Self::AgentJoin { .. } => "/conference/{conference_id}/connect/{agent_id}",
            Self::DialColleague { .. } => "/conference/{agent_id}/call",
            Self::ConferenceEvents { .. } => "/conference/{conference_id}/events",
            Self::AgentCallStatus { .. } => "/conference/{conference_id}/agents/{agent_id}/status",
            Self::VoicemailChoice { .. } => "/voicemail/{conference_id}/choice",
            Self::BackInLine { .. } => "/voicemail/{conference_id}/back",
            Self::VoicemailDone { .. } => "/voicemail/{conference_id}/done",
            Self::VoicemailRecorded { .. } => "/voicemail/{conference_id}/recording",
        };
        // Every variant names a row; a test checks it, so the fallback is never reached.
        ENDPOINTS.iter().find(|endpoint| endpoint.path == path).unwrap_or(&ENDPOINTS[0])
    }

    /// The path (and query, where the route has one) of this route.
    pub fn path(&self) -> String {
        let mut path = String::new();
        self.write_path(&mut path);
        path
    }

    /// The path, after what `into` holds already (a URL's origin).
    pub fn write_path(&self, into: &mut String) {
        let value = |name: &str| -> &str {
            match (self, name) {
                (Self::Asset { file }, "file") => file,
                (Self::CallAction { call, .. }, "call_id") => call.as_str(),
                (Self::CallAction { action, .. }, "action") => action.as_str(),
                (Self::TicketRecording { ticket }, "ticket_id")
                | (Self::TicketStatus { ticket }, "ticket_id")
                | (Self::TicketNotes { ticket }, "ticket_id")
                | (Self::TicketCalls { ticket }, "ticket_id") => ticket.as_str(),
                (Self::AgentJoin { conference, .. }, "conference_id")
                | (Self::ConferenceEvents { conference }, "conference_id")
                | (Self::AgentCallStatus { conference, .. }, "conference_id")
                | (Self::VoicemailChoice { conference }, "conference_id")
                | (Self::BackInLine { conference }, "conference_id")
                | (Self::VoicemailDone { conference }, "conference_id")
                | (Self::VoicemailRecorded { conference }, "conference_id") => conference.as_str(),
                (Self::AgentJoin { agent, .. }, "agent_id")
                | (Self::DialColleague { agent }, "agent_id")
                | (Self::CustomerAnswers { agent }, "agent_id")
                | (Self::CustomerCallStatus { agent }, "agent_id")
                | (Self::AgentCallStatus { agent, .. }, "agent_id") => agent.as_str(),
                _ => "",
            }
        };
        let start = into.len();
        for segment in segments(self.endpoint().path) {
            into.push('/');
            match parameter_name(segment) {
                Some(name) => into.push_str(value(name)),
                None => into.push_str(segment),
            }
        }
        if into.len() == start {
            into.push('/');
        }
        if matches!(self, Self::HoldMusic { returning: true }) {
            into.push('?');
            into.push_str(RETURNING_QUERY);
        }
    }

    /// The sign-in page, going on to `next` once signed in.
    pub fn sign_in_then(next: &Route) -> String {
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("next", &next.path()).finish();
        format!("{}?{query}", Self::Login.path())
    }

    /// The route of a request: the row whose template its path matches, the method checked,
    /// the path parameters (API Gateway's, where it gave them) parsed into their types.
    pub fn of(req: &Request) -> Result<Self, RouteError> {
        let path = raw_path(req);
        let (endpoint, captured) = ENDPOINTS
            .iter()
            .find_map(|endpoint| match_template(endpoint.path, &path).map(|captured| (endpoint, captured)))
            .ok_or(RouteError::NotFound)?;
        if !endpoint.methods().any(|method| method == req.method().as_str()) {
            return Err(RouteError::MethodNotAllowed { allow: endpoint.methods });
        }
        let parameter = |name: &'static str| -> &str {
            req.path_parameters_ref()
                .and_then(|given| given.first(name))
                .or_else(|| captured.iter().find(|(n, _)| *n == name).map(|(_, value)| *value))
                .unwrap_or_default()
        };
        let ticket = || TicketId::parse(parameter("ticket_id")).ok_or(RouteError::BadParameter("ticket_id"));
        let call_sid = |name| CallSid::parse(parameter(name)).ok_or(RouteError::BadParameter(name));
        let agent = |name| AgentId::parse(parameter(name)).map_err(|_| RouteError::BadParameter(name));
        Ok(match endpoint.path {
            "/" => Self::Home,
            "/dashboard" => Self::Dashboard,
            "/static/{file}" => Self::Asset { file: parameter("file").to_owned() },
            "/login" => Self::Login,
            "/logout" => Self::Logout,
            "/tickets" => Self::Tickets,
            "/tickets/{ticket_id}/recording" => Self::TicketRecording { ticket: ticket()? },
            "/tickets/{ticket_id}/status" => Self::TicketStatus { ticket: ticket()? },
            "/tickets/{ticket_id}/notes" => Self::TicketNotes { ticket: ticket()? },
            "/tickets/{ticket_id}/calls" => Self::TicketCalls { ticket: ticket()? },
            "/calls.csv" => Self::CallsCsv,
            "/token" => Self::Token,
            "/presence" => Self::Presence,
            "/wallboard" => Self::Wallboard,
            "/calls/current" => Self::CurrentCall,
            "/calls/{call_id}/{action}" => Self::CallAction {
                call: call_sid("call_id")?,
                action: CallAction::parse(parameter("action")).ok_or(RouteError::BadParameter("action"))?,
            },
            "/call/connect" => Self::BrowserCall,
            "/call/agent" => Self::AgentBrowserCall,
            "/call/customer/{agent_id}" => Self::CustomerAnswers { agent: agent("agent_id")? },
            "/call/customer/{agent_id}/status" => Self::CustomerCallStatus { agent: agent("agent_id")? },
            "/conference/connect/client" => Self::PhoneCall,
            "/conference/wait" => Self::HoldMusic {
                returning: req.uri().query().is_some_and(|query| query.split('&').any(|pair| pair == RETURNING_QUERY)),
            },
            "/conference/{conference_id}/connect/{agent_id}" => {
                Self::AgentJoin { conference: call_sid("conference_id")?, agent: agent("agent_id")? }
            }
            "/conference/{agent_id}/call" => Self::DialColleague { agent: agent("agent_id")? },
            "/conference/{conference_id}/events" => Self::ConferenceEvents { conference: call_sid("conference_id")? },
            "/conference/{conference_id}/agents/{agent_id}/status" => {
                Self::AgentCallStatus { conference: call_sid("conference_id")?, agent: agent("agent_id")? }
            }
            "/voicemail/{conference_id}/choice" => Self::VoicemailChoice { conference: call_sid("conference_id")? },
            "/voicemail/{conference_id}/back" => Self::BackInLine { conference: call_sid("conference_id")? },
            "/voicemail/{conference_id}/done" => Self::VoicemailDone { conference: call_sid("conference_id")? },
            "/voicemail/{conference_id}/recording" => {
                Self::VoicemailRecorded { conference: call_sid("conference_id")? }
            }
            _ => return Err(RouteError::NotFound),
        })
    }
}

/// The raw path as the client sent it: API Gateway's `rawPath` when there is one.
pub fn raw_path(req: &Request) -> String {
    match req.raw_http_path() {
        "" => req.uri().path().to_owned(),
        raw => raw.to_owned(),
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').skip(1).filter(|segment| !segment.is_empty())
}

fn parameter_name(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

/// The path parameters of `path` if it matches `template` segment for segment; a parameter
/// matches one non-empty segment. A trailing slash is another path.
/// Every request tries the rows in turn, so a row that does not match allocates nothing, and
/// most are told apart by comparing their text before the first parameter.
fn match_template<'a>(template: &'static str, path: &'a str) -> Option<Vec<(&'static str, &'a str)>> {
    match template.find('{') {
        None => return (template == path).then(Vec::new),
        Some(literal) if !path.starts_with(&template[..literal]) => return None,
        Some(_) => {}
    }
    let mut path_segments = path.strip_prefix('/')?.split('/');
    let mut template_segments = template.strip_prefix('/')?.split('/');
    let mut captured = Vec::new();
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(captured),
            (Some(expected), Some(actual)) => match parameter_name(expected) {
                Some(name) if !actual.is_empty() => captured.push((name, actual)),
                Some(_) => return None,
                None if expected == actual => {}
                None => return None,
            },
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
