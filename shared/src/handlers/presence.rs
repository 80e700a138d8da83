//! `GET /presence`, `PUT /presence` (JSON `{"status": "available" | "away"}`): the signed-in
//! agent's presence, `{"agent", "status", "since", "missed_call_at"}`. `status` is `available`,
//! `away`, `busy` (on a call, derived) or `offline` (the dashboard has not renewed it for 90 s);
//! the open dashboard renews it with a `PUT` of what the agent chose. Becoming available offers
//! them the longest-waiting caller at once (`call_flow::agent_says`).
//!
//! `GET /wallboard`: the line, the team and today's figures, for any signed-in agent
//! (`call_flow::wallboard`; `wallboard_json` names the fields). The dashboard polls it while
//! it is visible.
//!
//! `GET /calls/current`: the support call the signed-in agent is offered or on
//! (`call_flow::current_call`; `current_call_json` names the fields), `{"call": null}` when
//! there is none. The dashboard asks when a call rings (who is calling, how long they waited,
//! their tickets) and every 2 s while the call lasts (who is in it).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::call_flow::CurrentCall;
use crate::domain::{
    self, AgentId, AgentState, Availability, Caller, CallerState, Conference, TicketId, Transfer, Wallboard,
};
use crate::error::AppError;
use crate::handlers::tickets::ticket_json;
use crate::routes::Route;
use crate::{App, call_flow, http, pipeline, response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        if ctx.route == Route::Wallboard {
            ctx.agent().await?;
            let board = call_flow::wallboard(app).await?;
            return Ok(response::json(StatusCode::OK, &wallboard_json(&board)));
        }
        if ctx.route == Route::CurrentCall {
            let call = call_flow::current_call(app, &ctx.agent().await?.id).await?;
            return Ok(response::json(StatusCode::OK, &current_call_json(call.as_ref(), app.clock.now())));
        }
        // The route allows GET and PUT only.
        let state = if ctx.req.method() == Method::PUT {
            ctx.require_same_origin()?;
            let agent = ctx.agent().await?.id.clone();
            let fields = http::fields(ctx.req)?;
            let availability =
                fields.get("status").and_then(|status| Availability::parse(status)).ok_or_else(|| {
                    AppError::invalid_fields([("status".into(), "must be \"available\" or \"away\"".into())].into())
                })?;
            call_flow::agent_says(app, &ctx.links()?, &agent, availability).await?
        } else {
            call_flow::presence_of(app, &ctx.agent().await?.id).await?
        };
        Ok(response::json(StatusCode::OK, &presence_json(&state, app.clock.now())))
    })
    .await)
}

fn presence_json(state: &AgentState, now: i64) -> serde_json::Value {
    let (presence, since) = state.presence(now);
    json!({
        "agent": state.agent.as_str(),
        "status": presence.as_str(),
        "since": domain::rfc3339(since),
        "missed_call_at": state.missed_at.map(domain::rfc3339),
    })
}

fn wallboard_json(board: &Wallboard) -> serde_json::Value {
    json!({
        "waiting": board.line.waiting,
        "longest_wait_seconds": board.longest_wait_seconds(),
        "agents": {
            "available": board.team.available,
            "busy": board.team.busy,
            "away": board.team.away,
            "offline": board.team.offline,
        },
        "available_agents": board.available_agents.iter().map(AgentId::as_str).collect::<Vec<_>>(),
        "today": {
            "date": board.day,
            "answered": board.today.answered,
            "abandoned": board.today.abandoned,
            "voicemails": board.today.voicemails,
            "average_wait_seconds": board.today.average_wait_seconds(),
        },
        "as_of": domain::rfc3339(board.now_ms.div_euclid(1000)),
    })
}

/// `caller.number` is the caller's E.164 number (`null` for a web or withheld caller);
/// `waited_seconds` ends where an agent answered them from the line (`null` for a customer an
/// agent called, `direction` `outbound`); every time is RFC 3339.
/// Participants, each with a `state` and, where Warmline knows it, `since`: the customer
/// (`waiting` until an agent joins, `ringing` while an agent's call to them rings, then
/// `talking`, or `on-hold`), each agent in the call
/// (`talking`) or whose browser rings (`ringing`), and the colleague of a consult or transfer
/// whose part ended (`no-answer`, `declined`, `canceled`, `unreached`, `left`).
fn current_call_json(call: Option<&CurrentCall>, now: i64) -> serde_json::Value {
    let Some(call) = call else { return json!({ "call": null }) };
    let caller = &call.caller;
    let arrived = caller.arrived_at_ms.div_euclid(1000);
    // Until an agent answered them from the line; while an offer rings, they are still waiting.
    // (A record stored before `answered_at` existed cannot tell.)
    let waited = match caller.state {
        // Called by an agent: they never waited in line.
        _ if caller.dialed_by.is_some() => None,
        CallerState::Answered => caller.answered_at.map(|answered| (answered - arrived).max(0)),
        _ => Some((now - arrived).max(0)),
    };
    let (kind, number) = match &caller.caller {
        Caller::Phone(number) => ("phone", Some(number.as_str())),
        Caller::Browser(_) => ("web", None),
        Caller::Unknown => ("withheld", None),
    };
    let (customer_state, customer_since) = match caller.held_since {
        Some(since) => ("on-hold", Some(since)),
        None if caller.state == CallerState::Answered && !caller.joined.is_empty() => ("talking", caller.answered_at),
        // An agent's call: the customer's phone rings.
        None if caller.state == CallerState::Dialing => ("ringing", Some(arrived)),
        None => ("waiting", Some(arrived)),
    };
    let mut participants =
        vec![json!({ "role": "customer", "state": customer_state, "since": customer_since.map(domain::rfc3339) })];
    participants.extend(
        caller
            .joined
            .iter()
            .map(|agent| json!({ "role": "agent", "agent": agent.as_str(), "state": "talking", "since": null })),
    );
    participants.extend(caller.ringing.iter().filter(|agent| !caller.joined.contains(agent)).map(|agent| {
        json!({
            "role": "agent",
            "agent": agent.as_str(),
            "state": "ringing",
            "since": caller.ringing_since.map(domain::rfc3339),
        })
    }));
    if let Some(transfer) = &caller.transfer
        && let Some((outcome, at)) = transfer.outcome
        && !caller.joined.contains(&transfer.to)
        && !caller.ringing.contains(&transfer.to)
    {
        participants.push(json!({
            "role": "agent",
            "agent": transfer.to.as_str(),
            "state": outcome.as_str(),
            "since": domain::rfc3339(at),
        }));
    }
    json!({
        "call": {
            "id": caller.id.as_str(),
            "state": if call.answered { "talking" } else { "ringing" },
            "since": call.since.map(domain::rfc3339),
            "caller": { "kind": kind, "number": number, "name": caller.intro.name },
            // `outbound`: the agent named in `dialed_by` called this customer.
            "direction": if caller.dialed_by.is_some() { "outbound" } else { "inbound" },
            "dialed_by": caller.dialed_by.as_ref().map(AgentId::as_str),
            "about_ticket": caller.intro.ticket.as_ref().map(TicketId::as_str),
            "arrived_at": domain::rfc3339(arrived),
            "waited_seconds": waited,
            "new_caller": kind == "phone" && call.tickets.is_empty(),
            "tickets": call.tickets.iter().map(ticket_json).collect::<Vec<_>>(),
            "more_tickets": call.more_tickets,
            "participants": participants,
            "transfer": caller.transfer.as_ref().map(|transfer| transfer_json(caller, transfer)),
        }
    })
}

/// A consult or cold transfer under way: who started it, to whom, since when, and where the
/// colleague is (`ringing`, `talking`, or how their part ended).
pub(crate) fn transfer_json(record: &Conference, transfer: &Transfer) -> serde_json::Value {
    let colleague = match transfer.outcome {
        Some((outcome, _)) => outcome.as_str(),
        None if record.joined.contains(&transfer.to) => "talking",
        None => "ringing",
    };
    json!({
        "kind": transfer.kind.as_str(),
        "from": transfer.from.as_str(),
        "to": transfer.to.as_str(),
        "since": domain::rfc3339(transfer.since),
        "colleague": colleague,
    })
}
