//! The call flow: everything that happens to a support call, in one place. The webhook
//! handlers are adapters that parse Twilio's request, call one function here and render its
//! TwiML; nothing here knows about HTTP beyond the links Twilio calls back.
//!
//! The story of a support call:
//! 1. **A customer calls** (`enter_support_conference`, phone and browser alike): they wait in a
//!    conference named after their CallSid, on hold music, and the first agent on the roster
//!    rings, once however often Twilio retries.
//! 2. **While they wait** (`hold_music`, the conference's waitUrl): the music plays once, then
//!    Twilio comes back; each return checks that someone is still coming for them (a lost
//!    status callback is noticed there).
//! 3. **The agent doesn't answer** (`agent_call_ended`): the next agent on the roster rings;
//!    when everyone has been tried, the customer hears an apology and the call ends.
//! 4. **The agent answers** (`agent_answers`): they join the conference and are recorded as in
//!    it only then, unless the customer has gone: then they are told so.
//! 5. **Warm transfer** (`dial_colleague`): an agent in the call dials a colleague in; the
//!    first agent may then leave, and the colleague ends the call when they hang up.
//! 6. **The call ends** (`conference_event`): its records go, its agents are free again, and
//!    an agent call still ringing is canceled.
//!
//! Agents call customers too (`agent_calls_customer`): only numbers on a ticket.
//!
//! Twilio reports arrive late, twice or out of order, so every change is conditional in the
//! store and a repeat changes nothing; work cut short anywhere is picked up at the customer's
//! next hold-music turn.

use std::time::Duration;

use crate::App;
use crate::domain::{AgentId, CallSid, Conference, PhoneNumber};
use crate::error::AppError;
use crate::http::Links;
use crate::routes::Route;
use crate::twilio::{CallUpdate, OutboundCall, TwilioError};
use crate::twiml::{self, Dial, DialNoun, Method, Verb, VoiceResponse};

/// What a caller hears first while waiting.
pub const HOLD_MESSAGE: &str =
    "Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.";

/// What the customer hears when no agent on the roster took the call.
pub const NO_AGENT_AVAILABLE: &str = "Sorry, all our agents are busy right now. Please try again later. Goodbye.";

/// What an agent hears who answers a call whose customer has gone.
pub const CALL_ENDED: &str = "This support call has already ended. Goodbye.";

/// What a browser call hears when it may not be placed.
pub const REFUSAL: &str = "Sorry, this call cannot be placed. Goodbye.";

/// How long an agent's browser rings before Twilio gives up (`no-answer`) and Warmline rings
/// the next agent; Twilio's own default, 60 s, is a long time for a customer on hold.
pub const AGENT_RING_SECONDS: u32 = 20;

/// How many times the music plays before Twilio comes back: the longest a customer waits for a
/// check is this many plays of the hold music.
pub const PLAYS_PER_CHECK: u32 = 1;

/// An agent rings for `AGENT_RING_SECONDS` (Twilio adds a few), and its status callback moves the
/// chain on at once. A chain still for this long, with nobody joined, has lost that callback.
pub const STALLED_CHAIN_SECONDS: i64 = 60;

/// The hold-music check's share of the webhook deadline, so the customer always gets their
/// music in time.
const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// The outcomes of an agent's call that mean they never took it.
const NOT_TAKEN: [&str; 4] = ["no-answer", "busy", "failed", "canceled"];

// --- 1. A customer calls -------------------------------------------------------------------

/// Puts a customer's call into its own support conference and rings the first agent, once:
/// a retried webhook finds the conference recorded and only answers the TwiML again.
pub async fn enter_support_conference(app: &App, links: &Links, customer: &CallSid) -> Result<VoiceResponse, AppError> {
    let agent = app.config.roster.first_responder();
    let conference = Conference::new(customer.clone(), agent.clone(), app.clock.now());

    if app.calls.create_conference(&conference).await? {
        match ring_agent(app, links, customer, agent).await {
            Ok(Rung::Ringing(agent_call)) => tracing::info!(%agent, %agent_call, "dialed the first agent"),
            Ok(Rung::ConferenceGone) => tracing::warn!(%agent, "the conference ended before it began"),
            Err(err) => {
                // Forget the conference so that Twilio's retry of this webhook dials again.
                if let Err(cleanup) = app.calls.delete_conference(customer).await {
                    tracing::error!(error = %cleanup, "could not forget the undialed conference");
                }
                return Err(err.into());
            }
        }
    } else {
        // Another delivery's record: a write of ours whose reply was lost and was resent finds
        // its own, and comes through the branch above.
        tracing::info!("conference exists already: a retried webhook; not dialing again");
    }

    Ok(VoiceResponse::new().dial(Dial {
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(twiml::Conference {
            start_conference_on_enter: Some(false),
            end_conference_on_exit: Some(true),
            wait_url: Some(links.url(&Route::HoldMusic { returning: false })),
            wait_method: Some(Method::Post),
            // The first participant's callback is the conference's: this is how Warmline
            // learns that the customer left, or that an agent did.
            status_callback: Some(links.url(&Route::ConferenceEvents { conference: customer.clone() })),
            status_callback_event: Some("leave end".to_owned()),
            status_callback_method: Some(Method::Post),
            ..twiml::Conference::named(customer.as_str())
        }),
    }))
}

// --- 2. While they wait ----------------------------------------------------------------------

/// The conference's waitUrl: the hold message on arrival, the music once, then a `<Redirect>`
/// back (wait TwiML that runs out of verbs would leave the caller in silence). Each return is
/// a check that someone is still coming for this customer (`check_on`); whatever it meets, the
/// customer keeps their music, and a check that fails or runs out of time is done again at the
/// next turn.
pub async fn hold_music(app: &App, links: &Links, customer: Option<&CallSid>, returning: bool) -> VoiceResponse {
    // On arrival the record was written a moment ago and nothing can have stalled yet: the
    // customer hears the welcome at once, without waiting for a read. The waiting participant
    // is the customer: agents start the conference as they enter.
    if let Some(customer) = customer.filter(|_| returning) {
        match tokio::time::timeout(CHECK_BUDGET, check_on(app, links, customer)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, %customer, "could not check on the customer; next turn"),
            Err(_) => tracing::warn!(%customer, "checking on the customer ran out of time; next turn"),
        }
    }
    let welcome = if returning { VoiceResponse::new() } else { VoiceResponse::new().say(HOLD_MESSAGE) };
    welcome
        .play(&app.config.hold_music_url, Some(PLAYS_PER_CHECK))
        .verb(Verb::Redirect { url: links.url(&Route::HoldMusic { returning: true }), method: Some(Method::Post) })
}

/// Makes sure someone is coming for `customer`, or that they are told nobody is:
/// - their conference record is gone (every agent was tried and the apology did not reach
///   Twilio, or a status callback was cut short after giving up): they hear the apology now;
/// - the chain has not moved for far longer than an agent rings, with nobody joined (the report
///   that would have moved it was lost): the next agent rings, or the apology when nobody is left.
async fn check_on(app: &App, links: &Links, customer: &CallSid) -> Result<(), AppError> {
    let now = app.clock.now();
    match app.calls.conference(customer, now).await? {
        None => {
            // Nobody can join a conference without its record; waiting longer helps nobody.
            tracing::warn!(%customer, "the customer waits in a conference given up on; apologising");
            say_goodbye(app, customer).await
        }
        Some(record) if record.joined.is_empty() && now - record.chain_moved_at >= STALLED_CHAIN_SECONDS => {
            tracing::warn!(%customer, tried = record.tried.len(), "the agent chain stalled; moving it on");
            ring_next_agent(app, links, &record, now).await
        }
        Some(_) => Ok(()),
    }
}

// --- 3. The agent doesn't answer -------------------------------------------------------------

/// How a call Warmline placed to `agent` for `conference` ended (`CallStatus`). When the agent
/// the customer waits for did not take it, the next agent rings. A colleague who does not
/// answer a warm transfer changes nothing: the first agent is still with the customer.
pub async fn agent_call_ended(
    app: &App,
    links: &Links,
    conference: &CallSid,
    agent: &AgentId,
    status: &str,
) -> Result<(), AppError> {
    let Some(agent) = app.config.roster.find(agent.as_str()) else {
        return Err(AppError::bad_request("agent not on the roster"));
    };
    if !NOT_TAKEN.contains(&status) {
        tracing::debug!(%conference, %agent, status, "the agent's call ended; nothing to do");
        return Ok(());
    }
    let now = app.clock.now();
    let Some(record) = app.calls.conference(conference, now).await? else {
        tracing::info!(%conference, %agent, status, "the agent did not take a call that is over anyway");
        return Ok(());
    };
    if !record.joined.is_empty() {
        tracing::info!(%conference, %agent, status, "a colleague did not take the call; the customer has an agent");
        return Ok(());
    }
    if record.tried.last() != Some(agent) {
        tracing::info!(%conference, %agent, status, "not the agent the customer waits for: a late or repeated report");
        return Ok(());
    }
    tracing::info!(%conference, %agent, status, "the agent did not take the call");
    ring_next_agent(app, links, &record, now).await
}

/// Rings the next agent on the roster not yet tried for this customer, or, when there is none,
/// apologises to the customer. Only the one caller that moves the chain on does either: a
/// delivery of a status callback, or the hold-music check that found the chain stalled.
async fn ring_next_agent(app: &App, links: &Links, record: &Conference, now: i64) -> Result<(), AppError> {
    let conference = &record.id;
    let mut tried = record.tried.clone();
    loop {
        let Some(next) = app.config.roster.agents().iter().find(|agent| !tried.contains(agent)) else {
            return apologise_to_customer(app, conference, tried.len(), now).await;
        };
        if !app.calls.try_next_agent(conference, tried.len(), next, now).await? {
            tracing::info!(%conference, "another delivery of this report moved on already");
            return Ok(());
        }
        match ring_agent(app, links, conference, next).await {
            Ok(Rung::Ringing(call)) => {
                tracing::info!(%conference, agent = %next, %call, "ringing the next agent");
                return Ok(());
            }
            Ok(Rung::ConferenceGone) => return Ok(()),
            // No call means no status callback to move on from later: try the one after now.
            Err(err) => {
                tracing::error!(error = %err, %conference, agent = %next, "could not ring the next agent");
                tried.push(next.clone());
            }
        }
    }
}

async fn apologise_to_customer(app: &App, conference: &CallSid, tried: usize, now: i64) -> Result<(), AppError> {
    if !app.calls.abandon_conference(conference, tried, now).await? {
        tracing::info!(%conference, "another delivery of this report apologised already");
        return Ok(());
    }
    tracing::warn!(%conference, tried, "no agent took the call; apologising to the customer");
    // Should Twilio not take this, the record is gone already, and the customer's next
    // hold-music check finds that and says it again.
    say_goodbye(app, conference).await
}

/// Takes the customer out of the hold music: the apology, then the call ends. The conference
/// is named after the customer's call; leaving it ends it (the customer's endConferenceOnExit),
/// and its conference-end clears up the rest.
async fn say_goodbye(app: &App, customer: &CallSid) -> Result<(), AppError> {
    let twiml = VoiceResponse::new().say(NO_AGENT_AVAILABLE).hangup().to_xml();
    app.dialer.update_call(customer, &CallUpdate::Twiml(twiml)).await?;
    Ok(())
}

// --- 4. The agent answers --------------------------------------------------------------------

/// `agent` answered the call that brings them into `conference`, on their own call
/// `agent_call`. They join, and only now is it recorded that they are in it, unless it has
/// ended by now: then they are told so.
pub async fn agent_answers(
    app: &App,
    conference: &CallSid,
    agent: &AgentId,
    agent_call: &CallSid,
) -> Result<VoiceResponse, AppError> {
    let Some(agent) = app.config.roster.find(agent.as_str()) else {
        return Err(AppError::bad_request("agent not on the roster"));
    };
    let now = app.clock.now();
    let Some(record) = app.calls.conference(conference, now).await? else {
        tracing::info!(%conference, %agent, "agent answered a conference that is gone");
        return Ok(call_ended());
    };

    match app.calls.record_agent_joined(agent, agent_call, conference, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(%conference, %agent, "the conference ended as the agent answered");
            return Ok(call_ended());
        }
        // The agent can help the customer even when the record cannot be written; only
        // "Dial agent 2 in" will not find the conference then.
        Err(err) => tracing::error!(error = %err, %agent, "could not record that the agent joined"),
    }

    // The first agent to answer may leave after handing over; anyone brought in later ends
    // the call when they hang up, like the customer does.
    let is_first_responder = record.joined.iter().all(|joined| joined == agent);
    Ok(VoiceResponse::new().dial(Dial {
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(twiml::Conference {
            start_conference_on_enter: Some(true),
            end_conference_on_exit: Some(!is_first_responder),
            ..twiml::Conference::named(conference.as_str())
        }),
    }))
}

fn call_ended() -> VoiceResponse {
    VoiceResponse::new().say(CALL_ENDED).hangup()
}

// --- 5. Warm transfer ------------------------------------------------------------------------

/// The colleague an agent dialed into their call, and the call that rings them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialedColleague {
    pub conference: CallSid,
    pub colleague: AgentId,
    pub call: CallSid,
}

/// `agent`, in a call, dials `colleague` (by default the next agent on the roster) into that
/// same conference. 409 when the agent is in no call.
pub async fn dial_colleague(
    app: &App,
    links: &Links,
    agent: &AgentId,
    colleague: Option<&str>,
) -> Result<DialedColleague, AppError> {
    let agent = app
        .config
        .roster
        .find(agent.as_str())
        .ok_or_else(|| AppError::NotFound(format!("unknown agent {:?}", agent.as_str())))?;
    let colleague =
        match colleague.filter(|to| !to.is_empty()) {
            Some(to) => app.config.roster.find(to).ok_or_else(|| {
                AppError::invalid_fields([("to".into(), "is not an agent on the roster".into())].into())
            })?,
            None => app
                .config
                .roster
                .next_after(agent)
                .ok_or_else(|| AppError::Conflict("there is no other agent on the roster to call".into()))?,
        };
    if colleague == agent {
        return Err(AppError::invalid_fields([("to".into(), "must be another agent".into())].into()));
    }

    let now = app.clock.now();
    let not_in_a_call = || AppError::Conflict(format!("{agent} is not in a call right now"));
    let conference = app.calls.conference_of_agent(agent, now).await?.ok_or_else(not_in_a_call)?;
    // The agent's record may outlive the conference if its clean-up failed half-way.
    if app.calls.conference(&conference, now).await?.is_none() {
        return Err(not_in_a_call());
    }
    let call = match ring_agent(app, links, &conference, colleague).await? {
        Rung::Ringing(call) => call,
        Rung::ConferenceGone => return Err(not_in_a_call()),
    };
    tracing::info!(%agent, %colleague, %conference, %call, "dialed a colleague into the conference");
    Ok(DialedColleague { conference, colleague: colleague.clone(), call })
}

// --- 6. The call ends ------------------------------------------------------------------------

/// A support conference's own status callback (`StatusCallbackEvent`, and the participant's
/// `CallSid` for participant events).
/// - `conference-end`: the call is over. Its records go, every agent who was in it is free
///   again (so "Dial agent 2 in" answers 409), and an agent call still ringing is canceled,
///   so nobody answers into an empty conference.
/// - `participant-leave` of an agent's call: that agent is in no call any more.
pub async fn conference_event(
    app: &App,
    conference: &CallSid,
    event: Option<&str>,
    participant: Option<&str>,
) -> Result<(), AppError> {
    match event {
        Some("conference-end") => {
            let ended = app.calls.end_conference(conference, app.clock.now()).await?;
            let agent_calls = ended.map(|record| record.agent_calls).unwrap_or_default();
            tracing::info!(%conference, agent_calls = agent_calls.len(), "the conference ended");
            // One at a time: a conference has a handful of agent calls at most, and Twilio
            // answers quickly for a call it cannot cancel.
            for call in &agent_calls {
                cancel_call(app, call).await;
            }
        }
        Some("participant-leave") => {
            let call =
                participant.and_then(CallSid::parse).ok_or(AppError::bad_request("CallSid is missing or malformed"))?;
            // The customer leaving ends the conference; its own event does the clean-up.
            if let Some(agent) = app.calls.agent_left(conference, &call).await? {
                tracing::info!(%conference, %agent, "the agent left the conference");
            }
        }
        other => tracing::debug!(%conference, event = other.unwrap_or_default(), "conference event ignored"),
    }
    Ok(())
}

// --- Agents call customers -------------------------------------------------------------------

/// An agent's browser call to `number`: dialed with the support number as caller id, only if
/// it is on a ticket. Nothing else makes Warmline dial a phone number.
pub async fn agent_calls_customer(app: &App, agent: &AgentId, number: Option<&str>) -> Result<VoiceResponse, AppError> {
    if app.config.roster.find(agent.as_str()).is_none() {
        tracing::warn!(%agent, "refused a browser call from an agent off the roster");
        return Ok(refusal());
    }
    match number.map(PhoneNumber::parse) {
        Some(Ok(number)) if app.tickets.has_ticket_for(&number).await? => {
            tracing::info!(%agent, phone_number = %number.masked(), "agent calls a customer");
            Ok(VoiceResponse::new().dial(Dial {
                caller_id: Some(app.config.twilio.number.to_string()),
                timeout_seconds: None,
                noun: DialNoun::Number(number.to_string()),
            }))
        }
        _ => {
            tracing::warn!(%agent, "refused to dial a number that is on no ticket");
            Ok(refusal())
        }
    }
}

/// What a browser call hears when it may not be placed.
pub fn refusal() -> VoiceResponse {
    VoiceResponse::new().say(REFUSAL).hangup()
}

// --- Ringing agents --------------------------------------------------------------------------

/// What became of a call placed to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rung {
    /// It rings, and the conference knows the call, so it can be canceled when it ends.
    Ringing(CallSid),
    /// The conference ended while the call was being placed; the call has been canceled.
    ConferenceGone,
}

/// Rings `agent` into `conference`: a bounded ring time, a status callback that tells Warmline
/// how the call ended, and the call's SID kept on the conference.
async fn ring_agent(app: &App, links: &Links, conference: &CallSid, agent: &AgentId) -> Result<Rung, TwilioError> {
    let call = OutboundCall {
        timeout_seconds: Some(AGENT_RING_SECONDS),
        status_callback: Some(
            links.url(&Route::AgentCallStatus { conference: conference.clone(), agent: agent.clone() }),
        ),
        ..OutboundCall::new(
            format!("client:{agent}"),
            app.config.twilio.number.to_string(),
            links.url(&Route::AgentJoin { conference: conference.clone(), agent: agent.clone() }),
        )
    };
    let agent_call = app.dialer.place_call(&call).await?;
    match app.calls.add_agent_call(conference, &agent_call, app.clock.now()).await {
        Ok(true) => Ok(Rung::Ringing(agent_call)),
        Ok(false) => {
            tracing::info!(%agent, %agent_call, "the conference ended while the agent was dialed; canceling");
            cancel_call(app, &agent_call).await;
            Ok(Rung::ConferenceGone)
        }
        // Still ringing: if the conference ends before the agent answers, they are told so
        // then (`agent_answers` finds no conference).
        Err(err) => {
            tracing::error!(error = %err, %agent, %agent_call, "could not remember the agent's call");
            Ok(Rung::Ringing(agent_call))
        }
    }
}

/// Stops a call that may still be ringing. Twilio refuses to cancel a call that was answered
/// or has ended, and that is fine, so a failure is only logged.
async fn cancel_call(app: &App, call: &CallSid) {
    match app.dialer.update_call(call, &CallUpdate::Cancel).await {
        Ok(()) => tracing::info!(%call, "canceled the agent's call"),
        Err(err) => tracing::info!(error = %err, %call, "could not cancel the agent's call (answered or over)"),
    }
}
