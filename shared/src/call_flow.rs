//! The call flow: everything that happens to a support call, in one place. The webhook
//! handlers are adapters that parse Twilio's request, call one function here and render its
//! TwiML; nothing here knows about HTTP beyond the links Twilio calls back.
//!
//! The story of a support call:
//! 1. **A customer calls** (`caller_arrives`, phone and browser alike): they are put in line and
//!    into a conference of their own, named after their CallSid, on hold music. Nothing slow
//!    stands between Twilio and that answer: one write, no call to Twilio's REST API.
//! 2. **They join their conference** (`conference_event`, `participant-join`): the router runs.
//! 3. **The router** (`route`) offers the longest-waiting caller to the available agent who has
//!    been idle longest, one caller per agent at a time; both change together or not at all, so
//!    two routers running at once never offer one agent two callers nor one caller to two
//!    agents. It runs when a caller arrives, when an agent becomes available, when an agent's
//!    call ends, and at every turn of a waiting caller's hold music: never while the line is idle.
//! 4. **While they wait** (`hold_music`, the conference's waitUrl): the music, their place in line
//!    at most once a minute, and a watch: a ring that outlasted its timeout is ended, the
//!    router runs, and after `QUEUE_MAX_WAIT_SECONDS` they are offered to leave a message.
//! 5. **The agent doesn't answer or rejects** (`agent_call_ended`): the agent is set away (their
//!    dashboard says they missed a call) and the caller is back in line, in their place.
//! 6. **The agent answers** (`agent_answers`): they join and are busy until they leave.
//! 7. **Warm transfer** (`dial_colleague`): an agent in the call dials an available colleague in.
//!    **Hold, consult, complete, cancel and cold transfer** (`act_on_call`, in `agent_actions`):
//!    the customer on hold through Twilio's Participants API while a colleague is rung; a cold
//!    transfer nobody answers sends the customer back to the front of the line.
//! 8. **An agent leaves** (`conference_event`, `participant-leave`): they are free again; a
//!    customer left with nobody hears a short message and goes back to the front of the line.
//! 9. **The call ends** (`conference_event`, `conference-end`): the caller's record goes, their
//!    agents are free, and an agent call still ringing is canceled.
//!
//! Agents call customers too (`agent_calls_customer`): only numbers on a ticket, in
//! `DIAL_COUNTRIES`, while the agent's account is enabled and their session the one their
//! browser's token came from. Warmline calls the customer into a conference of the agent's, and
//! from their pick-up (`customer_answers`) on it is a call like any other: held, consulted,
//! transferred; one nobody picks up ends the agent's call (`customer_call_ended`).
//!
//! Browser callers are counted (`admit_browser_call`): a customer identity, and the source
//! address its token was fetched from, may have only so many calls at once
//! (`BROWSER_CALLS_PER_IDENTITY`, `BROWSER_CALLS_PER_ADDRESS`); the excess is refused before
//! anyone is rung, and a call gives its slots back when it ends.
//!
//! Each call's outcome (answered from the line, abandoned, a message left) is counted for the
//! dashboard's wallboard where its metric is emitted (`count`), once per call.
//!
//! Each call is also written into the call ledger, event by event (`record_event` from Twilio's status
//! callbacks, which Twilio delivers again when the ledger fails; `note` where a caller or an agent
//! waits for the answer, which the ledger never costs their call), and read back as the fold of
//! its events (`ticket_calls`, `calls_on`).
//!
//! Twilio reports arrive late, twice or out of order, and two functions may act on one caller
//! at once: every change is decided over what was read and committed only over it
//! (`CallStore::commit`), so a repeat changes nothing and a lost race is decided again.

use std::time::Duration;

mod agent_actions;

pub use agent_actions::{HOLD_LIMIT_SECONDS, act_on_call};

use crate::App;
use crate::domain::{
    self, Agent, AgentId, AgentState, AgentToken, Availability, BROWSER_CALL_SLOT_SECONDS, CallRecord, CallSid,
    CallSlots, Caller, CallerIntro, CallerState, Channel, ColleagueOutcome, Conference, DAY_COUNTS_TTL_SECONDS,
    LedgerEvent, Outcome, PhoneNumber, SlotHolder, SourceAddress, Team, Ticket, TicketId, TicketRecord, Voicemail,
    Wallboard,
};
use crate::error::AppError;
use crate::http::Links;
use crate::routes::Route;
use crate::store::Write;
use crate::telemetry::{self, CallEvent};
use crate::twilio::{CallUpdate, OutboundCall, TwilioError};
use crate::twiml::{self, Dial, DialNoun, Method, Verb, VoiceResponse};

/// What a caller hears first while waiting.
pub const HOLD_MESSAGE: &str =
    "Thank you for calling. Please wait in line for a few seconds. An agent will be with you shortly.";

/// What a customer hears whose agent left the call with nobody else in it.
pub const BACK_IN_LINE: &str =
    "Your agent has left the call. Please stay on the line: you are first in line for the next agent.";

/// What a caller hears outside business hours, before they may leave a message.
pub const AFTER_HOURS: &str = "Thank you for calling. Our support line is closed right now.";

/// What a caller hears when nobody can take their call now, or they have waited long.
pub const VOICEMAIL_OFFER: &str =
    "All our agents are busy. To leave a message, press 1. To keep your place in line, stay on the line.";

/// What a caller hears before the beep.
pub const LEAVE_A_MESSAGE: &str =
    "Please leave your message after the beep. Press the pound key or hang up when you are done.";

/// What a caller hears after leaving a message.
pub const MESSAGE_TAKEN: &str = "Thank you for your message. We will call you back. Goodbye.";

/// What a caller hears outside business hours who said nothing.
pub const NO_MESSAGE: &str = "We did not hear a message. Please call again during business hours. Goodbye.";

/// The longest message a caller may leave.
pub const VOICEMAIL_MAX_SECONDS: u32 = 120;

/// How long the offer to leave a message waits for a key before the caller stays in line.
const VOICEMAIL_OFFER_SECONDS: u32 = 8;

/// What an agent hears who answers a call whose customer has gone.
pub const CALL_ENDED: &str = "This support call has already ended. Goodbye.";

/// What a browser call hears when it may not be placed.
pub const REFUSAL: &str = "Sorry, this call cannot be placed. Goodbye.";

/// What an agent hears when Twilio would not place their call to a customer.
pub const CUSTOMER_NOT_CALLED: &str = "Sorry, the customer could not be called right now. Please try again.";

/// What an agent hears whose customer did not pick up (no answer, busy, or the call failed).
pub const CUSTOMER_NOT_REACHED: &str = "The customer did not answer. Goodbye.";

/// What a customer hears when the agent who called them hangs up.
pub const GOODBYE: &str = "Thank you for talking with us. Goodbye.";

/// What a customer hears who picks up a call whose agent has hung up meanwhile.
pub const AGENT_GONE: &str = "Sorry, our agent is no longer on the line. Please call us back. Goodbye.";

/// What an agent's call to a number outside `DIAL_COUNTRIES` hears.
pub const OUTSIDE_DIAL_COUNTRIES: &str =
    "Sorry, this number is outside the countries this support line calls. The call cannot be placed. Goodbye.";

/// What a browser caller hears who has as many calls going as they may, or whose address has.
pub const TOO_MANY_CALLS: &str =
    "Sorry, there are too many calls from your connection right now. Please try again later. Goodbye.";

/// What an agent hears who answers a ring after their account was disabled.
pub const ACCOUNT_DISABLED: &str = "This agent account is disabled. Goodbye.";

/// The parameter an agent's Access Token passes with every call its browser places
/// (`agent_token_issued`): the id of the token's record, which names the session it was issued
/// to.
pub const AGENT_SESSION_PARAM: &str = "agentSession";

/// How long an agent's browser rings before Twilio gives up (`no-answer`) and the caller is
/// offered to the next agent; Twilio's own default, 60 s, is a long time for a customer on hold.
pub const AGENT_RING_SECONDS: u32 = 20;

/// How many times the music plays before Twilio comes back: the longest a customer waits for a
/// check is this many plays of the hold music.
pub const PLAYS_PER_CHECK: u32 = 1;

/// A ring still on this long after it began has lost the report that would have ended it
/// (Twilio gives up after `AGENT_RING_SECONDS`, and adds a few).
pub const STALLED_RING_SECONDS: i64 = 60;

/// A ring whose call Twilio never took (the work placing it was cut short) is ended after this
/// long: well past the REST client's timeout.
pub const UNPLACED_RING_SECONDS: i64 = 10;

/// A caller is told their place in line at most this often.
pub const ANNOUNCE_EVERY_SECONDS: i64 = 60;

/// The hold-music check's share of the webhook deadline, so the customer always gets their
/// music in time.
const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// How many pairs one run of the router makes at most; the next trigger makes the rest.
const PAIRS_PER_ROUTE: usize = 10;

/// How many waiting callers the router reads at once to find one who is not in transit.
const CALLERS_PER_READ: u32 = 5;

/// How many agents the router reads at once to find one whose lease still holds.
const AGENTS_PER_READ: u32 = 10;

/// How often a change that lost a race is decided again before the next trigger takes over.
const RACES: usize = 5;

/// The outcomes of an agent's call that mean they never took it; all but `canceled` (Warmline
/// stopped the ring because the caller left) count as a missed call.
const NOT_TAKEN: [&str; 4] = ["no-answer", "busy", "failed", "canceled"];

// --- 1. A customer calls -------------------------------------------------------------------

/// Puts a customer in line and into their own conference, with one write: a retried webhook
/// finds them recorded and only gets the TwiML again. If the write fails they still get their
/// conference and music, and the first turn of the music records them.
pub async fn caller_arrives(
    app: &App,
    links: &Links,
    customer: &CallSid,
    from: Option<&str>,
    intro: CallerIntro,
) -> VoiceResponse {
    let mut record = Conference::arriving(customer.clone(), Caller::from_twilio(from), app.clock.now_millis());
    record.intro = intro;
    let mut admitted = true;
    if let Caller::Browser(identity) = &record.caller {
        match admit_browser_call(app, identity, customer).await {
            Ok(true) => {}
            Ok(false) => return too_many_calls(),
            // Out of line until the first turn of the hold music counts them again: being in
            // line without a slot would let a flood through whenever the store stumbles.
            Err(err) => {
                tracing::error!(error = %err, "could not count the browser caller's calls; the hold music will");
                admitted = false;
            }
        }
    }
    if app.config.business_hours.as_ref().is_some_and(|hours| !hours.is_open(app.clock.now())) {
        // Nobody is rung; the record keeps who called, for the ticket their message becomes.
        record.offer_voicemail(app.clock.now());
        let (_, _, enqueued) = tokio::join!(
            note(app, customer, began(app, &record)),
            note(app, customer, LedgerEvent::AfterHours { at_ms: record.arrived_at_ms }),
            app.calls.enqueue(&record),
        );
        if let Err(err) = enqueued {
            tracing::error!(error = %err, "could not record the caller; their message will say less about them");
        }
        hold_browser_call(app, &record.caller, customer, app.clock.now() + VOICEMAIL_SLOT_SECONDS).await;
        tracing::info!("a caller outside business hours may leave a message");
        return VoiceResponse::new()
            .say(AFTER_HOURS)
            .say(LEAVE_A_MESSAGE)
            .verb(record_message(links, customer))
            .say(NO_MESSAGE)
            .hangup();
    }
    // Recorded again when they join their conference (a report Twilio delivers until it is
    // recorded); here too, because that report may come only after their call is over. Beside
    // the enqueue, not after it: the caller's first TwiML waits one round trip, not two.
    let began = note(app, customer, began(app, &record));
    if !admitted {
        began.await;
        return conference_twiml(links, customer);
    }
    let ((), enqueued) = tokio::join!(began, app.calls.enqueue(&record));
    match enqueued {
        // The metric's line (`CallsOffered`, with the CallSid) is the log's record of the arrival.
        Ok(true) => telemetry::call(CallEvent::Offered, customer.as_str()),
        Ok(false) => tracing::info!("the caller is in line already: a retried webhook"),
        Err(err) => tracing::error!(error = %err, "could not put the caller in line; the hold music will"),
    }
    conference_twiml(links, customer)
}

fn too_many_calls() -> VoiceResponse {
    VoiceResponse::new().say(TOO_MANY_CALLS).hangup()
}

/// Takes a slot of the browser customer `identity` and one of the address their token was
/// fetched from, for `call`, both or neither; `false` when either has none free. A retried
/// webhook finds its call holding them already.
async fn admit_browser_call(app: &App, identity: &str, call: &CallSid) -> Result<bool, AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let until = now + BROWSER_CALL_SLOT_SECONDS;
        let holder = SlotHolder::Customer(identity.to_owned());
        let mut mine = app.calls.call_slots(&holder, now).await?.unwrap_or_else(|| CallSlots::new(holder, now));
        if mine.holds(call, now) {
            return Ok(true);
        }
        if !mine.take(call, app.config.browser_calls_per_identity, now, until) {
            tracing::warn!(%call, customer = identity, "refused a browser call: the customer has calls going already");
            return Ok(false);
        }
        let mut writes = Vec::new();
        match mine.address.clone() {
            Some(address) => {
                let holder = SlotHolder::Address(address);
                let mut theirs =
                    app.calls.call_slots(&holder, now).await?.unwrap_or_else(|| CallSlots::new(holder, now));
                if !theirs.take(call, app.config.browser_calls_per_address, now, until) {
                    tracing::warn!(%call, customer = identity, "refused a browser call: its address has calls going");
                    return Ok(false);
                }
                writes.push(Write::Slots(theirs));
            }
            // `POST /token` keeps the address of every token it issues; none is only a token
            // from before that, or a request that came through no API Gateway (a local run).
            None => tracing::warn!(%call, customer = identity, "a browser caller of no known address"),
        }
        writes.push(Write::Slots(mine));
        if app.calls.commit(&writes, now).await? {
            return Ok(true);
        }
    }
    Err(AppError::Conflict("the caller's calls changed too often to count them".into()))
}

/// What becomes of a browser call's slots.
#[derive(Debug, Clone, Copy)]
enum SlotChange {
    /// The call is over.
    Release,
    /// Held until then instead: a caller who leaves the queue for voicemail is held only as long
    /// as a message can take, because Twilio reports no conference end for a hang-up there.
    HoldUntil(i64),
}

impl SlotChange {
    fn apply(self, slots: &mut CallSlots, call: &CallSid, now: i64) -> bool {
        match self {
            Self::Release => slots.release(call),
            Self::HoldUntil(until) => slots.hold_until(call, now, until),
        }
    }
}

/// How long a browser caller offered voicemail holds their slots: the offer, the choice, the
/// greeting and the longest message, with room to spare.
pub const VOICEMAIL_SLOT_SECONDS: i64 = 300;

/// The browser customer `identity`'s call is over: it gives its slots back.
async fn release_browser_call(app: &App, identity: &str, call: &CallSid) {
    change_browser_call_slots(app, identity, call, SlotChange::Release).await;
}

/// The browser caller `caller`, if one, holds their slots until `until` (from now on). A
/// failure only leaves them held as they were.
async fn hold_browser_call(app: &App, caller: &Caller, call: &CallSid, until: i64) {
    if let Caller::Browser(identity) = caller {
        change_browser_call_slots(app, identity, call, SlotChange::HoldUntil(until)).await;
    }
}

/// Applies `change` to the slots `call` holds of the customer `identity` and of their address.
/// A failure only leaves them as they were, until they lapse.
async fn change_browser_call_slots(app: &App, identity: &str, call: &CallSid, change: SlotChange) {
    for _ in 0..RACES {
        let now = app.clock.now();
        let released = async {
            let Some(mut mine) = app.calls.call_slots(&SlotHolder::Customer(identity.to_owned()), now).await? else {
                return Ok(true);
            };
            let mut writes = Vec::new();
            if let Some(address) = mine.address.clone()
                && let Some(mut theirs) = app.calls.call_slots(&SlotHolder::Address(address), now).await?
                && change.apply(&mut theirs, call, now)
            {
                writes.push(Write::Slots(theirs));
            }
            if change.apply(&mut mine, call, now) {
                writes.push(Write::Slots(mine));
            }
            Ok::<_, AppError>(writes.is_empty() || app.calls.commit(&writes, now).await?)
        };
        match released.await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, %call, ?change, "could not change the browser call's slots; they lapse");
                return;
            }
        }
    }
}

/// A customer's Access Token is being issued: their record keeps the address it was fetched
/// from for as long as the token may place a call (`until`), so that their calls count against
/// that address too.
pub async fn customer_token_issued(
    app: &App,
    identity: &str,
    address: Option<SourceAddress>,
    until: i64,
) -> Result<(), AppError> {
    let record = CallSlots::bound(identity, address, until);
    // A fresh random identity: one that exists already is a collision, never a retry.
    if !app.calls.commit(&[Write::Slots(record)], app.clock.now()).await? {
        return Err(AppError::Conflict("please ask for a token again".into()));
    }
    Ok(())
}

/// The customer's side of their conference: it waits for an agent, with hold music, and ends
/// when the customer leaves; its events come to `conference_event`.
fn conference_twiml(links: &Links, customer: &CallSid) -> VoiceResponse {
    VoiceResponse::new().dial(customer_conference(links, customer))
}

fn customer_conference(links: &Links, customer: &CallSid) -> Dial {
    Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(twiml::Conference {
            start_conference_on_enter: Some(false),
            end_conference_on_exit: Some(true),
            wait_url: Some(links.url(&Route::HoldMusic { returning: false })),
            wait_method: Some(Method::Post),
            // The first participant's callback is the conference's: this is how Warmline
            // learns that the customer joined or left, or that an agent did.
            status_callback: Some(links.url(&Route::ConferenceEvents { conference: customer.clone() })),
            status_callback_event: Some("join leave end".to_owned()),
            status_callback_method: Some(Method::Post),
            ..twiml::Conference::named(customer.as_str())
        }),
    }
}

// --- 2, 8, 9. What happens in the conference -----------------------------------------------

/// A support conference's status callback.
#[derive(Debug, Clone, Copy)]
pub struct ConferenceEvent<'a> {
    /// `StatusCallbackEvent`.
    pub name: Option<&'a str>,
    /// The participant's `CallSid`, for participant events.
    pub participant: Option<&'a str>,
    /// Twilio's `ConferenceSid` (`CF…`): which run of the conference this is.
    pub conference_sid: Option<&'a str>,
    /// Twilio's `SequenceNumber`: the event's place among the run's events, the same on every
    /// delivery of it.
    pub sequence: Option<&'a str>,
    /// Twilio's `Timestamp`: when it happened (RFC 2822).
    pub timestamp: Option<&'a str>,
}

pub async fn conference_event(
    app: &App,
    links: &Links,
    conference: &CallSid,
    event: ConferenceEvent<'_>,
) -> Result<(), AppError> {
    match event.name {
        Some("participant-join") if event.participant == Some(conference.as_str()) => {
            customer_joined(app, conference, event.conference_sid).await?;
            route(app, links).await?;
            if nobody_can_answer_soon(app).await?
                && let Some(record) = app.calls.conference(conference, app.clock.now()).await?
            {
                offer_voicemail(app, links, record, Offer::OnArrival).await?;
            }
            Ok(())
        }
        // An agent joined: the colleague of a cold transfer takes the customer off hold. Here,
        // where Twilio says they are in, by the function that holds the REST API's key.
        Some("participant-join") => {
            if let Some(call) = event.participant.and_then(CallSid::parse)
                && let Some(record) = app.calls.conference(conference, app.clock.now()).await?
                && let Some(agent) = record.agent_on(&call)
            {
                agent_actions::colleague_answered(app, &record, agent).await;
            }
            Ok(())
        }
        Some("participant-leave") => {
            let call = event
                .participant
                .and_then(CallSid::parse)
                .ok_or(AppError::bad_request("CallSid is missing or malformed"))?;
            // The customer leaving ends the conference; its own event does the clean-up.
            if call != *conference && agent_left(app, links, conference, &call).await? {
                route(app, links).await?;
            }
            Ok(())
        }
        Some("conference-end") => conference_ended(app, links, conference, event).await,
        other => {
            tracing::debug!(%conference, event = other.unwrap_or_default(), "conference event ignored");
            Ok(())
        }
    }
}

/// The customer is in their conference, run `conference_sid`: what a later `conference-end`
/// is checked against.
async fn customer_joined(app: &App, customer: &CallSid, conference_sid: Option<&str>) -> Result<(), AppError> {
    let Some(conference_sid) = conference_sid else { return Ok(()) };
    let mut recorded = false;
    for _ in 0..RACES {
        let Some(mut record) = app.calls.conference(customer, app.clock.now()).await? else { return Ok(()) };
        // Again (see `caller_arrives`): a report Twilio delivers again until the ledger has it. A
        // caller back in line joins again, and their beginning is recorded already.
        if !recorded && record.moving_from.is_none() {
            record_event(app, customer, began(app, &record)).await?;
            recorded = true;
        }
        if record.conference_sid.as_deref() == Some(conference_sid) {
            return Ok(());
        }
        record.conference_sid = Some(conference_sid.to_owned());
        // In the new conference: no longer on the way back into line.
        if record.moving_from.as_deref() != Some(conference_sid) {
            record.moving_from = None;
        }
        if app.calls.commit(&[Write::Caller(record)], app.clock.now()).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// The agent on `call` left the customer's conference: they are free again. A customer left
/// with nobody, in the call or ringing, goes back to the front of the line. `true` when an agent
/// was freed (the router has someone new to offer a call to).
async fn agent_left(app: &App, links: &Links, customer: &CallSid, call: &CallSid) -> Result<bool, AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(mut record) = app.calls.conference(customer, now).await? else { return Ok(false) };
        let Some(agent) = record.agent_on(call).cloned() else { return Ok(false) };
        if !record.joined.contains(&agent) {
            return Ok(false);
        }
        let alone = record.left(&agent, now);
        // An agent who hung up on their own call to a customer before it was answered: the call
        // is over, and the customer's phone stops ringing.
        let given_up = record.state == CallerState::Dialing && record.joined.is_empty();
        // The agent hung up on the customer they called, nobody else in the call or on the way:
        // that is the end of it (a customer whose support call is dropped goes back in line).
        let hung_up = alone && record.dialed_by.as_ref() == Some(&agent);
        // The agent who started a consultation hung up instead of completing it: a colleague in
        // the call has the customer now; one still ringing gets them as a cold transfer would.
        let handed_over = agent_actions::started_by_leaving(&mut record, &agent);
        let mut writes = Vec::new();
        let mut talked = None;
        if let Some(mut state) = app.calls.agent_state(&agent, now).await?
            && state.in_call.as_ref() == Some(customer)
        {
            talked = state.busy_since.map(|since| (now - since) * 1000);
            state.call_ended(app.clock.now_millis());
            writes.push(Write::Agent(state));
        }
        if alone && !hung_up {
            record.requeue();
        }
        writes.push(if given_up { Write::ForgetCaller(record) } else { Write::Caller(record) });
        if !app.calls.commit(&writes, now).await? {
            continue;
        }
        tracing::info!(%customer, %agent, alone, given_up, "an agent left the call");
        if given_up {
            cancel_call(app, customer).await;
        }
        // Talk time is time with a customer: none for a call they never picked up.
        talked
            .filter(|_| !given_up)
            .into_iter()
            .for_each(|talked_ms| telemetry::call(CallEvent::Talked { talked_ms }, customer.as_str()));
        if hung_up {
            let goodbye = VoiceResponse::new().say(GOODBYE).hangup().to_xml();
            if let Err(err) = app.dialer.update_call(customer, &CallUpdate::Twiml(goodbye)).await {
                tracing::error!(error = %err, %customer, "could not end the call the agent hung up on");
            }
        } else if alone {
            take_back_into_line(app, links, customer).await;
        } else if let Some(conference_sid) = handed_over {
            agent_actions::resume_and_forget_transfer(app, &conference_sid, customer).await;
        }
        return Ok(true);
    }
    Ok(false)
}

/// The conference ended. Unless the customer left it on purpose (back into line, or to leave a
/// message), their call is over: their record goes, every agent ringing for or talking with
/// them is free again, and an agent call still ringing is canceled.
async fn conference_ended(
    app: &App,
    links: &Links,
    customer: &CallSid,
    event: ConferenceEvent<'_>,
) -> Result<(), AppError> {
    let conference_sid = event.conference_sid;
    let ended = LedgerEvent::Ended {
        at_ms: domain::reported_at_ms(event.timestamp, app.clock.now_millis()),
        run: match (conference_sid, event.sequence) {
            (Some(run), Some(sequence)) => format!("{run}#{sequence}"),
            (run, _) => run.unwrap_or_default().to_owned(),
        },
    };
    let mut ledgered = None;
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(record) = app.calls.conference(customer, now).await? else {
            // Over already: a report delivered again, perhaps because the ledger failed.
            return match ledgered {
                Some(result) => result,
                None => record_event(app, customer, ended).await,
            };
        };
        // The end of a conference the customer left on purpose, or of an earlier one than they
        // are in now, is not the end of their call.
        let left_on_purpose = conference_sid.is_some() && record.moving_from.as_deref() == conference_sid;
        let earlier = matches!((conference_sid, record.conference_sid.as_deref()), (Some(ended), Some(now_in)) if ended != now_in);
        if left_on_purpose || earlier {
            tracing::info!(%customer, "a conference the customer has left ended; the call goes on");
            return Ok(());
        }
        // Before the record goes, so a failure is delivered again and recorded then; the call's
        // end is cleared up now whatever the ledger does.
        if ledgered.is_none() {
            ledgered = Some(record_event(app, customer, ended.clone()).await);
        }
        let mut writes = Vec::new();
        let mut talked = Vec::new();
        for agent in record.ringing.iter().chain(&record.joined) {
            if let Some(mut state) = app.calls.agent_state(agent, now).await? {
                if state.ringing_for.as_ref() == Some(customer) {
                    state.ring_ended(false, app.clock.now_millis());
                    writes.push(Write::Agent(state));
                } else if state.in_call.as_ref() == Some(customer) {
                    talked.extend(state.busy_since.map(|since| (now - since) * 1000));
                    state.call_ended(app.clock.now_millis());
                    writes.push(Write::Agent(state));
                }
            }
        }
        let freed = !writes.is_empty();
        writes.push(Write::ForgetCaller(record.clone()));
        if !app.calls.commit(&writes, now).await? {
            continue;
        }
        tracing::info!(%customer, agent_calls = record.agent_calls.len(), "the call ended");
        // An agent's call to a customer whose phone still rings.
        if record.state == CallerState::Dialing {
            cancel_call(app, customer).await;
        }
        let abandoned = matches!(record.state, CallerState::Waiting | CallerState::Ringing);
        if abandoned {
            let waited_ms = app.clock.now_millis() - record.arrived_at_ms;
            telemetry::call(CallEvent::Abandoned { waited_ms }, customer.as_str());
        }
        talked.into_iter().for_each(|talked_ms| telemetry::call(CallEvent::Talked { talked_ms }, customer.as_str()));
        if let Caller::Browser(identity) = &record.caller {
            release_browser_call(app, identity, customer).await;
        }
        // Only the calls still ringing (the latest to each agent still ringing: an earlier one
        // was answered or refused): an answered agent call ends with its conference, and a
        // needless request to Twilio here delays the router below. One at a time: a call rings
        // a handful of agents at most.
        for call in record.ringing.iter().filter_map(|agent| record.latest_call_to(agent)) {
            cancel_call(app, call).await;
        }
        // The count last: a browser still ringing into an ended call, and a caller waiting for
        // the agent just freed, matter more than a figure on the wallboard.
        let routed = if freed { route(app, links).await } else { Ok(()) };
        if abandoned {
            count(app, customer, Outcome::Abandoned).await;
        }
        return ledgered.unwrap_or(Ok(())).and(routed);
    }
    Ok(())
}

// --- 3. The router ---------------------------------------------------------------------------

/// Offers the longest-waiting callers to the available agents who have been idle longest, one
/// pair at a time, until either runs out (or `PAIRS_PER_ROUTE`: the next trigger goes on).
pub async fn route(app: &App, links: &Links) -> Result<(), AppError> {
    let mut paired = 0;
    let mut lost_races = 0;
    while paired < PAIRS_PER_ROUTE && lost_races < RACES {
        let now = app.clock.now();
        // The agents first: while a queue is long, every hold-music turn runs the router and
        // finds nobody free, with one read instead of two.
        let free = free_agents(app, now).await?;
        if free.is_empty() {
            return Ok(());
        }
        // A caller on their way back into line (out of one conference, not yet in the next) is
        // offered once they have joined: an agent joining now would meet the old conference.
        let waiting = app.calls.waiting(CALLERS_PER_READ, now).await?;
        let Some(caller) = waiting.into_iter().find(|caller| caller.moving_from.is_none()) else { return Ok(()) };
        let Some(agent) = first_enabled(app, free, now).await? else { return Ok(()) };
        match offer(app, links, caller, agent).await? {
            true => paired += 1,
            false => lost_races += 1,
        }
    }
    Ok(())
}

/// The available agents whose presence still holds, idle longest first.
async fn free_agents(app: &App, now: i64) -> Result<Vec<AgentState>, AppError> {
    let available = app.calls.available_agents(AGENTS_PER_READ, now).await?;
    Ok(available.into_iter().filter(|state| state.can_take_a_call(now)).collect())
}

/// The agent idle longest whose presence still holds and whose account is enabled.
async fn next_free_agent(app: &App, now: i64) -> Result<Option<AgentState>, AppError> {
    first_enabled(app, free_agents(app, now).await?, now).await
}

/// The first of `free` (idle longest first) whose account is enabled. An agent whose account
/// was disabled is set away on the way, so the router does not meet them again.
async fn first_enabled(app: &App, free: Vec<AgentState>, now: i64) -> Result<Option<AgentState>, AppError> {
    for state in free {
        match app.agents.agent(&state.agent).await? {
            Some(account) if account.is_enabled() => return Ok(Some(state)),
            _ => {
                tracing::warn!(agent = %state.agent, "an agent who may no longer sign in was available; set away");
                let mut away = state;
                away.say(Availability::Away, app.clock.now_millis());
                app.calls.commit(&[Write::Agent(away)], now).await?;
            }
        }
    }
    Ok(None)
}

/// Offers `caller` to `agent` and rings them. `false` when another router or report changed
/// either first (nothing happened; decide again).
async fn offer(app: &App, links: &Links, mut caller: Conference, mut agent: AgentState) -> Result<bool, AppError> {
    let now = app.clock.now();
    caller.offer_to(&agent.agent, now);
    agent.ring_for(&caller.id, now);
    if !app.calls.commit(&[Write::Caller(caller.clone()), Write::Agent(agent.clone())], now).await? {
        return Ok(false);
    }
    tracing::info!(customer = %caller.id, agent = %agent.agent, "offered the caller to the agent");
    let call = ring_agent(app, links, &caller, &agent.agent, None).await?;
    note(app, &caller.id, rang(app, &agent.agent, &call, false)).await;
    Ok(true)
}

/// Rings `agent` for the caller of `record`: a bounded ring time, a status callback that tells
/// Warmline how the call ended, the call's context for the agent's browser (`ring_address`),
/// and the call's SID kept on the caller's record. If Twilio cannot place the call, the ring is
/// undone (the caller back in their place, the agent free) and the error returned: the next
/// trigger tries again.
async fn ring_agent(
    app: &App,
    links: &Links,
    record: &Conference,
    agent: &AgentId,
    handed_over: Option<HandOver<'_>>,
) -> Result<CallSid, AppError> {
    let customer = &record.id;
    let call = OutboundCall {
        timeout_seconds: Some(AGENT_RING_SECONDS),
        status_callback: Some(
            links.url(&Route::AgentCallStatus { conference: customer.clone(), agent: agent.clone() }),
        ),
        ..OutboundCall::new(
            ring_address(record, agent, handed_over),
            app.config.twilio.number.to_string(),
            links.url(&Route::AgentJoin { conference: customer.clone(), agent: agent.clone() }),
        )
    };
    let placed = match app.dialer.place_call(&call).await {
        Ok(placed) => placed,
        Err(err) => {
            tracing::error!(error = %err, %customer, %agent, "could not ring the agent; undoing the offer");
            ring_ended(app, links, customer, agent, None, ColleagueOutcome::Unreached).await?;
            return Err(err.into());
        }
    };
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(mut record) = app.calls.conference(customer, now).await? else {
            // The caller left while their agent was being dialed.
            cancel_call(app, &placed).await;
            return Ok(placed);
        };
        record.placed(&placed, agent);
        if app.calls.commit(&[Write::Caller(record)], now).await? {
            return Ok(placed);
        }
    }
    // Still ringing: if the caller leaves before the agent answers, the agent is told then.
    tracing::error!(%customer, %agent, call = %placed, "could not remember the agent's call");
    Ok(placed)
}

/// Who hands a call to the colleague being rung, and how (`warm`, `consult`, `cold`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandOver<'a> {
    pub from: &'a AgentId,
    pub kind: &'static str,
}

/// The longest value of `callerName` a ring carries: Twilio asks that a call's custom parameters
/// stay small, and a name in a non-Latin script grows up to nine times when percent-encoded. A
/// longer one is left out of the ring; `GET /calls/current` has it.
const RING_NAME_MAX_ENCODED: usize = 240;

/// `client:<agent>` with the call's context as custom parameters, a query string Twilio hands
/// to the agent's Voice SDK as the incoming call's `customParameters` (Twilio's Participants
/// and "share information between your applications" pages): `conference` (the customer's
/// call, `GET /calls/current`'s `id`), what a browser caller said (`callerName`, `ticketId`,
/// checked at `/call/connect`), and for a colleague rung by an agent, `transferFrom` and
/// `transferKind`. No phone number: the dashboard reads it from `GET /calls/current`.
fn ring_address(record: &Conference, agent: &AgentId, handed_over: Option<HandOver<'_>>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("conference", record.id.as_str());
    if let Some(name) = &record.intro.name {
        let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        if encoded.len() <= RING_NAME_MAX_ENCODED {
            query.append_pair("callerName", name);
        }
    }
    if let Some(ticket) = &record.intro.ticket {
        query.append_pair("ticketId", ticket.as_str());
    }
    if let Some(HandOver { from, kind }) = handed_over {
        query.append_pair("transferFrom", from.as_str());
        query.append_pair("transferKind", kind);
    }
    format!("client:{agent}?{}", query.finish())
}

/// `agent` stopped ringing for `customer` without answering, on `call` when Twilio said which,
/// as `outcome` says. A ring let run out or rejected is missed: the agent is set away. A caller
/// offered from the line is back in it in their place; one a colleague was dialed for by a cold
/// transfer, left with nobody, goes back to the front of the line. `true` when this changed
/// anything: a repeated report, or one about an earlier ring than the one on now, changes
/// nothing.
async fn ring_ended(
    app: &App,
    links: &Links,
    customer: &CallSid,
    agent: &AgentId,
    call: Option<&CallSid>,
    outcome: ColleagueOutcome,
) -> Result<bool, AppError> {
    let missed = matches!(outcome, ColleagueOutcome::NoAnswer | ColleagueOutcome::Declined);
    for _ in 0..RACES {
        let now = app.clock.now();
        let mut writes = Vec::new();
        let record = app.calls.conference(customer, now).await?;
        let latest = record.as_ref().and_then(|record| record.latest_call_to(agent));
        if call.is_some_and(|call| record.as_ref().is_some_and(|r| r.agent_on(call).is_some()) && latest != Some(call))
        {
            tracing::info!(%customer, %agent, "a report about an earlier ring");
            return Ok(false);
        }
        let mut alone = false;
        if let Some(mut record) = record.clone()
            && record.ring_ended(agent)
        {
            record.colleague_done(agent, outcome, now);
            alone = record.alone();
            if alone {
                record.requeue();
            }
            writes.push(Write::Caller(record));
        }
        if let Some(mut state) = app.calls.agent_state(agent, now).await?
            && state.ringing_for.as_ref() == Some(customer)
        {
            // A caller who left first is no missed call.
            state.ring_ended(missed && record.is_some(), app.clock.now_millis());
            writes.push(Write::Agent(state));
        }
        if writes.is_empty() {
            return Ok(false);
        }
        if app.calls.commit(&writes, now).await? {
            if alone {
                tracing::info!(%customer, %agent, "nobody took the transferred call; back to the front of the line");
                take_back_into_line(app, links, customer).await;
            }
            return Ok(true);
        }
    }
    Ok(false)
}

/// Out of the conference they are in and into a new one of the same name, where the hold music
/// plays and the router finds them an agent: their record says they are waiting, in their
/// place, and the end of the conference they leave is not their end.
async fn take_back_into_line(app: &App, links: &Links, customer: &CallSid) {
    let back = VoiceResponse::new().say(BACK_IN_LINE).dial(customer_conference(links, customer));
    if let Err(err) = app.dialer.update_call(customer, &CallUpdate::Twiml(back.to_xml())).await {
        tracing::error!(error = %err, %customer, "could not take the customer back into line");
    }
}

// --- The call ledger --------------------------------------------------------------------------

/// How many of a ticket's calls one page holds.
pub const TICKET_CALLS_PER_PAGE: u32 = 20;

/// When an event written now leaves the ledger (`LEDGER_RETENTION_DAYS`).
fn ledger_expiry(app: &App) -> i64 {
    app.clock.now() + app.config.ledger_retention_days * 86_400
}

/// Records `event` of `call` from a status callback: a failure fails the callback with a 503,
/// so that Twilio delivers the report again, and the retry records it once.
async fn record_event(app: &App, call: &CallSid, event: LedgerEvent) -> Result<(), AppError> {
    match app.ledger.record(call, &event, ledger_expiry(app)).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::debug!(%call, event = event.key(), "in the ledger already: a report delivered again");
            Ok(())
        }
        Err(err) => Err(AppError::Ledger(err)),
    }
}

/// Records `event` of `call` where a caller or an agent waits for the answer: the ledger never
/// costs anyone their call, so a failure is logged and counted (`Errors`, kind `Ledger`), and
/// the event is lost.
async fn note(app: &App, call: &CallSid, event: LedgerEvent) {
    if let Err(err) = app.ledger.record(call, &event, ledger_expiry(app)).await {
        tracing::error!(error = %err, %call, event = event.key(), "could not record the call in the ledger");
        telemetry::error("Ledger");
    }
}

/// The support line's day (`today`) of the instant `at_ms`.
fn day_at(app: &App, at_ms: i64) -> String {
    domain::day_of(app.config.business_hours.as_ref().map(|hours| hours.zone()), at_ms.div_euclid(1000))
}

/// The beginning of `caller`'s call to the support line, at `at_ms`.
/// The call of `record` began: a customer calling support, or an agent calling a customer.
fn began(app: &App, record: &Conference) -> LedgerEvent {
    let (channel, who) = match (&record.caller, &record.dialed_by) {
        (Caller::Phone(number), Some(_)) => (Channel::Agent, number.to_string()),
        (Caller::Phone(number), None) => (Channel::Phone, number.to_string()),
        (Caller::Browser(identity), _) => (Channel::Browser, identity.clone()),
        (Caller::Unknown, _) => (Channel::Phone, String::new()),
    };
    let party = (!who.is_empty()).then(|| who.clone());
    let at_ms = record.arrived_at_ms;
    let agent = record.dialed_by.as_ref().map(ToString::to_string);
    LedgerEvent::Began { at_ms, channel, caller: who, party, day: day_at(app, at_ms), agent }
}

/// `agent`'s browser rings on `call`.
fn rang(app: &App, agent: &AgentId, call: &CallSid, transfer: bool) -> LedgerEvent {
    LedgerEvent::Rang { at_ms: app.clock.now_millis(), agent: agent.to_string(), call: call.to_string(), transfer }
}

/// The records of `calls`, in their order, each the fold of its events (read at once); a call
/// whose beginning is not recorded yet is left out.
async fn fold_calls(app: &App, calls: &[CallSid]) -> Result<Vec<CallRecord>, AppError> {
    let mut reads = tokio::task::JoinSet::new();
    for (at, call) in calls.iter().cloned().enumerate() {
        let ledger = app.ledger.clone();
        reads.spawn(async move {
            let events = ledger.events(&call).await;
            (at, call, events)
        });
    }
    let mut folded = Vec::with_capacity(calls.len());
    while let Some(read) = reads.join_next().await {
        let (at, call, events) =
            read.map_err(|err| AppError::Store(crate::store::StoreError::Unavailable(Box::new(err))))?;
        folded.extend(CallRecord::fold(&call, &events?, app.clock.now_millis()).map(|record| (at, record)));
    }
    folded.sort_by_key(|(at, _)| *at);
    Ok(folded.into_iter().map(|(_, record)| record).collect())
}

/// A page of `ticket`'s calls, newest first, below the index position `before`: the calls of
/// its phone number, or of its browser caller's identity. The position of the page's last call
/// when more follow.
pub async fn ticket_calls(
    app: &App,
    ticket: &Ticket,
    before: Option<&str>,
) -> Result<(Vec<CallRecord>, Option<String>), AppError> {
    let party = ticket.phone_number.as_ref().map(ToString::to_string).or_else(|| ticket.customer.clone());
    let Some(party) = party else { return Ok((Vec::new(), None)) };
    let page = app.ledger.calls_of(&party, TICKET_CALLS_PER_PAGE, before).await?;
    Ok((fold_calls(app, &page.calls).await?, page.next_after))
}

/// Up to `limit` calls that began on `day`, in the order they began, after the index position
/// `after`; the position of the last one when more follow.
pub async fn calls_on(
    app: &App,
    day: &str,
    limit: u32,
    after: Option<&str>,
) -> Result<(Vec<CallRecord>, Option<String>), AppError> {
    let page = app.ledger.calls_on(day, limit, after).await?;
    Ok((fold_calls(app, &page.calls).await?, page.next_after))
}

// --- The wallboard ----------------------------------------------------------------------------

/// The support line's day now: midnight in the zone of `BUSINESS_HOURS`, or in UTC.
fn today(app: &App) -> String {
    domain::day_of(app.config.business_hours.as_ref().map(|hours| hours.zone()), app.clock.now())
}

/// Counts `outcome` of `call` in today's figures, once however often Twilio reports it. A count
/// that cannot be written is logged and lost, never the call's failure (as a metric is).
/// Counts `outcome` of `call` in the day's figures; `true` when this counted it (not a repeat,
/// nor a failure).
async fn count(app: &App, call: &CallSid, outcome: Outcome) -> bool {
    let expires_at = app.clock.now() + DAY_COUNTS_TTL_SECONDS;
    match app.calls.count_outcome(&today(app), call, outcome, expires_at).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::info!(%call, outcome = outcome.as_str(), "counted already: a retried report");
            false
        }
        Err(err) => {
            tracing::warn!(error = %err, %call, outcome = outcome.as_str(), "could not count the outcome");
            false
        }
    }
}

/// The line, the team and today's figures now: three keyed reads, whatever the day's traffic.
pub async fn wallboard(app: &App) -> Result<Wallboard, AppError> {
    let now_ms = app.clock.now_millis();
    let now = now_ms.div_euclid(1000);
    let day = today(app);
    let (line, team, today) = tokio::try_join!(app.calls.line(now), app.calls.team(now), app.calls.day_counts(&day))?;
    let mut available_agents: Vec<AgentId> =
        team.iter().filter(|state| state.can_take_a_call(now)).map(|state| state.agent.clone()).collect();
    available_agents.sort();
    Ok(Wallboard { line, team: Team::at(&team, now), available_agents, day, today, now_ms })
}

// --- Presence ---------------------------------------------------------------------------------

/// What `agent` is now (a never-seen agent is offline).
pub async fn presence_of(app: &App, agent: &AgentId) -> Result<AgentState, AppError> {
    Ok(app.calls.agent_state(agent, app.clock.now()).await?.unwrap_or_else(|| AgentState::new(agent.clone())))
}

/// The call an agent's dashboard shows: the caller whose offer rings their browser, or who they
/// are talking with, and the tickets filed from the caller's number.
#[derive(Debug)]
pub struct CurrentCall {
    pub caller: Conference,
    /// Whether the agent answered (else their browser rings for the caller).
    pub answered: bool,
    /// When their browser started ringing, or when they answered.
    pub since: Option<i64>,
    /// Newest first, at most `CALLER_TICKETS_SHOWN`.
    pub tickets: Vec<TicketRecord>,
    /// Whether the number has more tickets than those.
    pub more_tickets: bool,
}

/// How many of a caller's tickets an offer shows (the newest; the rest are a search away).
pub const CALLER_TICKETS_SHOWN: usize = 5;

/// How many of a number's tickets are read to find its newest: the number's index has no sort
/// key, so a page of it is any of the number's tickets, not the newest. A number rarely has more
/// (filing again adds to its open ticket).
const CALLER_TICKETS_READ: u32 = 20;

/// What `agent` is offered or on now: two keyed reads, and a query of the tickets index for a
/// caller by phone (or a read of the ticket a browser caller named). `None` while they are on no
/// support call.
pub async fn current_call(app: &App, agent: &AgentId) -> Result<Option<CurrentCall>, AppError> {
    let now = app.clock.now();
    let Some(state) = app.calls.agent_state(agent, now).await? else { return Ok(None) };
    let (caller, answered) = match (&state.in_call, &state.ringing_for) {
        (Some(caller), _) => (caller, true),
        (None, Some(caller)) => (caller, false),
        (None, None) => return Ok(None),
    };
    let Some(caller) = app.calls.conference(caller, now).await? else { return Ok(None) };
    let (tickets, more_tickets) = match &caller.caller {
        Caller::Phone(number) => {
            let mut page = app.tickets.tickets_for_number(number, CALLER_TICKETS_READ, None).await?;
            page.tickets.sort_by(|a, b| b.ticket.id.cmp(&a.ticket.id));
            let more = page.tickets.len() > CALLER_TICKETS_SHOWN || page.next_after.is_some();
            page.tickets.truncate(CALLER_TICKETS_SHOWN);
            (page.tickets, more)
        }
        // The ticket a caller on the customer page said they call about, if it is one.
        Caller::Browser(_) | Caller::Unknown => match &caller.intro.ticket {
            Some(id) => (app.tickets.ticket_record(id).await?.into_iter().collect(), false),
            None => (Vec::new(), false),
        },
    };
    Ok(Some(CurrentCall { caller, answered, since: state.busy_since, tickets, more_tickets }))
}

/// `agent` says they are `availability`, from their dashboard, which says it again every so
/// often to keep their presence (a lease). An agent free to take a call runs the router at
/// once, so a caller waiting in line is offered to them before this answers.
pub async fn agent_says(
    app: &App,
    links: &Links,
    agent: &AgentId,
    availability: Availability,
) -> Result<AgentState, AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let mut state = presence_of(app, agent).await?;
        // The dashboard renews every 30 s: an agent free already gives the router nothing new
        // (a caller waiting has it at each hold-music turn), so a renewal is one read and one
        // write, and only becoming free runs the router (docs/PERFORMANCE.md, the cost).
        let was_free = state.can_take_a_call(now);
        state.say(availability, app.clock.now_millis());
        if !app.calls.commit(&[Write::Agent(state.clone())], now).await? {
            continue;
        }
        if state.can_take_a_call(now) && !was_free {
            // Their presence is stored whatever the router meets; the next trigger retries it.
            if let Err(err) = route(app, links).await {
                tracing::warn!(error = %err, %agent, "could not route at once");
            }
            return presence_of(app, agent).await;
        }
        return Ok(state);
    }
    Err(AppError::Conflict("the presence changed too often; try again".into()))
}

// --- 4. While they wait ----------------------------------------------------------------------

/// The conference's waitUrl: the hold message on arrival, then their place in line at most once
/// a minute, the music once, and a `<Redirect>` back (wait TwiML that runs out of verbs would
/// leave the caller in silence). Each return is a check that someone is coming for this
/// customer (`check_on`); whatever it meets, the customer keeps their music, and a check that
/// fails or runs out of time is done again at the next turn.
pub async fn hold_music(
    app: &App,
    links: &Links,
    customer: Option<&CallSid>,
    from: Option<&str>,
    returning: bool,
) -> VoiceResponse {
    let mut hold = if returning { VoiceResponse::new() } else { VoiceResponse::new().say(HOLD_MESSAGE) };
    // On arrival the record was written a moment ago and nothing can have stalled yet: the
    // customer hears the welcome at once, without waiting for a read.
    if let Some(customer) = customer.filter(|_| returning) {
        match tokio::time::timeout(CHECK_BUDGET, check_on(app, links, customer, from)).await {
            Ok(Ok(Some(announcement))) => hold = hold.say(announcement),
            Ok(Ok(None)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, %customer, "could not check on the customer; next turn"),
            Err(_) => tracing::warn!(%customer, "checking on the customer ran out of time; next turn"),
        }
    }
    hold.play(&app.config.hold_music_url, Some(PLAYS_PER_CHECK))
        .verb(Verb::Redirect { url: links.url(&Route::HoldMusic { returning: true }), method: Some(Method::Post) })
}

/// Makes sure someone is coming for `customer`: a caller the store lost is put back in line, a
/// ring that outlasted its timeout is ended, and the router runs. Returns what to tell them
/// about their place in line, when it is time to.
async fn check_on(
    app: &App,
    links: &Links,
    customer: &CallSid,
    from: Option<&str>,
) -> Result<Option<String>, AppError> {
    let now = app.clock.now();
    let Some(record) = app.calls.conference(customer, now).await? else {
        let caller = Caller::from_twilio(from);
        if let Caller::Browser(identity) = &caller
            && !admit_browser_call(app, identity, customer).await?
        {
            app.dialer.update_call(customer, &CallUpdate::Twiml(too_many_calls().to_xml())).await?;
            return Ok(None);
        }
        tracing::warn!(%customer, "a customer on hold was not in line; putting them back");
        let record = Conference::arriving(customer.clone(), caller, app.clock.now_millis());
        if app.calls.enqueue(&record).await? {
            telemetry::call(CallEvent::Offered, customer.as_str());
        }
        route(app, links).await?;
        return Ok(None);
    };
    if agent_actions::held_too_long(app, &record, now).await? {
        agent_actions::back_from_hold(app, links, record, now).await?;
        return Ok(None);
    }
    let ringing_seconds = record.ringing_since.map_or(0, |since| now - since);
    if !record.ring_placed && ringing_seconds >= UNPLACED_RING_SECONDS {
        tracing::warn!(%customer, "a ring Twilio never took; ending it");
        for agent in &record.ringing {
            ring_ended(app, links, customer, agent, None, ColleagueOutcome::Unreached).await?;
        }
    } else if ringing_seconds >= STALLED_RING_SECONDS {
        tracing::warn!(%customer, "a ring outlasted its timeout; ending it");
        for agent in &record.ringing {
            ring_ended(app, links, customer, agent, None, ColleagueOutcome::NoAnswer).await?;
        }
    }
    route(app, links).await?;
    // The record read above, not a fresh one: a turn is most of what a long queue costs, and
    // the commits are versioned, so a record the ring checks or the router changed meanwhile
    // changes nothing more this turn.
    if offer_voicemail(app, links, record.clone(), Offer::AfterWaiting).await? {
        return Ok(None);
    }
    announcement(app, record).await
}

/// "You are number 2 in line", for a caller still waiting who was not told in the last minute.
async fn announcement(app: &App, mut record: Conference) -> Result<Option<String>, AppError> {
    let now = app.clock.now();
    if record.state != CallerState::Waiting || record.announced_at.is_some_and(|at| now - at < ANNOUNCE_EVERY_SECONDS) {
        return Ok(None);
    }
    let position = app.calls.ahead_of(&record).await? + 1;
    record.announced_at = Some(now);
    // Told once even when two turns race: the one that records it says it.
    if !app.calls.commit(&[Write::Caller(record)], now).await? {
        return Ok(None);
    }
    Ok(Some(format!("You are number {position} in line.")))
}

// --- Voicemail -------------------------------------------------------------------------------

/// When a caller is offered to leave a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// As they join their conference, if nobody is there who could answer soon; once.
    OnArrival,
    /// After `QUEUE_MAX_WAIT_SECONDS` in line, and again after as long again.
    AfterWaiting,
}

/// Whether no agent is available, or busy but available after their call: then a caller would
/// wait for nobody.
async fn nobody_can_answer_soon(app: &App) -> Result<bool, AppError> {
    let online = app.calls.online_agents(app.clock.now()).await?;
    Ok(!online.iter().any(|agent| agent.availability == Availability::Available))
}

/// Takes a waiting caller out of their conference to be offered to leave a message, or to stay
/// in line (`VOICEMAIL_OFFER`). Nothing happens to a caller already offered, ringing, with an
/// agent, or on their way between conferences; `true` when it was offered.
async fn offer_voicemail(app: &App, links: &Links, mut record: Conference, when: Offer) -> Result<bool, AppError> {
    let now = app.clock.now();
    let customer = record.id.clone();
    let due = match when {
        Offer::OnArrival => record.voicemail_offered_at.is_none(),
        Offer::AfterWaiting => {
            let since = record.voicemail_offered_at.unwrap_or(record.arrived_at_ms.div_euclid(1000));
            now - since >= app.config.queue_max_wait_seconds
        }
    };
    if !due || record.state != CallerState::Waiting || record.moving_from.is_some() {
        return Ok(false);
    }
    record.offer_voicemail(now);
    let caller = record.caller.clone();
    if !app.calls.commit(&[Write::Caller(record)], now).await? {
        // Changed meanwhile (offered to an agent, say): the next trigger decides again.
        return Ok(false);
    }
    hold_browser_call(app, &caller, &customer, now + VOICEMAIL_SLOT_SECONDS).await;
    tracing::info!(%customer, ?when, "offering the caller to leave a message");
    let offered = LedgerEvent::VoicemailOffered { at_ms: app.clock.now_millis(), nobody: when == Offer::OnArrival };
    note(app, &customer, offered).await;
    let offer = VoiceResponse::new()
        .verb(Verb::Gather(twiml::Gather {
            action: links.url(&Route::VoicemailChoice { conference: customer.clone() }),
            method: Some(Method::Post),
            num_digits: Some(1),
            timeout_seconds: Some(VOICEMAIL_OFFER_SECONDS),
            prompt: VOICEMAIL_OFFER.to_owned(),
        }))
        .verb(Verb::Redirect {
            url: links.url(&Route::BackInLine { conference: customer.clone() }),
            method: Some(Method::Post),
        });
    if let Err(err) = app.dialer.update_call(&customer, &CallUpdate::Twiml(offer.to_xml())).await {
        tracing::error!(error = %err, %customer, "could not offer the caller to leave a message; back in line");
        put_back_in_line(app, &customer).await?;
    }
    Ok(true)
}

/// The key the caller pressed when offered to leave a message: 1 records it, anything else
/// keeps their place in line.
pub async fn voicemail_choice(
    app: &App,
    links: &Links,
    customer: &CallSid,
    digits: Option<&str>,
) -> Result<VoiceResponse, AppError> {
    if digits == Some("1") {
        tracing::info!(%customer, "the caller leaves a message");
        // A message not left after all takes them back into line.
        let back = links.url(&Route::BackInLine { conference: customer.clone() });
        return Ok(VoiceResponse::new()
            .say(LEAVE_A_MESSAGE)
            .verb(record_message(links, customer))
            .verb(Verb::Redirect { url: back, method: Some(Method::Post) }));
    }
    back_in_line(app, links, customer).await
}

/// A caller who left no message goes back into line, in their place, and into a conference of
/// their own again (whose join runs the router).
pub async fn back_in_line(app: &App, links: &Links, customer: &CallSid) -> Result<VoiceResponse, AppError> {
    put_back_in_line(app, customer).await?;
    tracing::info!(%customer, "the caller stays in line");
    Ok(conference_twiml(links, customer))
}

async fn put_back_in_line(app: &App, customer: &CallSid) -> Result<(), AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(mut record) = app.calls.conference(customer, now).await? else { return Ok(()) };
        if record.state != CallerState::Voicemail {
            return Ok(());
        }
        record.back_in_line();
        let caller = record.caller.clone();
        let offered_at = record.voicemail_offered_at.unwrap_or(now);
        if app.calls.commit(&[Write::Caller(record)], now).await? {
            note(app, customer, LedgerEvent::StayedInLine { at_ms: app.clock.now_millis(), offered_at }).await;
            hold_browser_call(app, &caller, customer, now + BROWSER_CALL_SLOT_SECONDS).await;
            return Ok(());
        }
    }
    Ok(())
}

/// The caller's message is recorded (or they hung up): they are thanked and the call ends.
pub fn message_taken() -> VoiceResponse {
    VoiceResponse::new().say(MESSAGE_TAKEN).hangup()
}

/// Twilio has the caller's recording: it becomes a ticket, with the caller's number (or their
/// browser identity), "Voicemail" as the description, and the recording, once however often
/// Twilio reports it.
pub async fn message_recorded(
    app: &App,
    customer: &CallSid,
    recording_sid: &str,
    duration_seconds: u32,
) -> Result<(), AppError> {
    let now = app.clock.now();
    let record = app.calls.conference(customer, now).await?;
    let (caller, called_at_ms) = match &record {
        Some(record) => (record.caller.clone(), record.arrived_at_ms),
        None => (Caller::Unknown, app.clock.now_millis()),
    };
    let (name, phone_number, customer_identity) = match caller.clone() {
        Caller::Phone(number) => ("Phone caller".to_owned(), Some(number), None),
        Caller::Browser(identity) => ("Browser caller".to_owned(), None, Some(identity)),
        Caller::Unknown => ("Caller with no number".to_owned(), None, None),
    };
    let ticket = Ticket {
        id: TicketId::for_recording(recording_sid, called_at_ms),
        name,
        description: "Voicemail".to_owned(),
        created_at: domain::rfc3339(called_at_ms.div_euclid(1000)),
        outside_dial_countries: phone_number.as_ref().is_some_and(|number| !app.config.dial_countries.allows(number)),
        phone_number,
        customer: customer_identity,
        voicemail: Some(Voicemail { recording_sid: recording_sid.to_owned(), duration_seconds }),
    };
    // A repeated report makes the same ticket, which is there already and counts as stored.
    if !app.tickets.create_ticket(&ticket).await? {
        return Err(AppError::Conflict(format!("another ticket has the id {}", ticket.id)));
    }
    let message = LedgerEvent::Voicemail {
        at_ms: app.clock.now_millis(),
        recording: recording_sid.to_owned(),
        ticket: ticket.id.to_string(),
    };
    record_event(app, customer, message).await?;
    tracing::info!(%customer, ticket = %ticket.id, duration_seconds, "a voicemail is a ticket");
    telemetry::call(CallEvent::Voicemail, customer.as_str());
    count(app, customer, Outcome::Voicemail).await;
    // Their call ends with the message (a caller who left line for it ends no conference).
    if let Caller::Browser(identity) = &caller {
        release_browser_call(app, identity, customer).await;
    }
    Ok(())
}

/// `<Record>` the caller's message, with a beep, for at most `VOICEMAIL_MAX_SECONDS`.
fn record_message(links: &Links, customer: &CallSid) -> Verb {
    Verb::Record(twiml::Record {
        action: links.url(&Route::VoicemailDone { conference: customer.clone() }),
        method: Some(Method::Post),
        max_length_seconds: Some(VOICEMAIL_MAX_SECONDS),
        timeout_seconds: None,
        finish_on_key: Some("#".to_owned()),
        play_beep: Some(true),
        recording_status_callback: Some(links.url(&Route::VoicemailRecorded { conference: customer.clone() })),
        recording_status_callback_event: Some("completed".to_owned()),
        recording_status_callback_method: Some(Method::Post),
    })
}

// --- 5. The agent doesn't answer -------------------------------------------------------------

/// How a call Warmline placed to `agent` for `conference` ended (`CallStatus`). An agent who
/// let it ring out or rejected it is set away, and the caller offered to the next agent.
pub async fn agent_call_ended(
    app: &App,
    links: &Links,
    conference: &CallSid,
    agent: &AgentId,
    call_sid: &str,
    status: &str,
) -> Result<(), AppError> {
    if !NOT_TAKEN.contains(&status) {
        tracing::debug!(%conference, %agent, status, "the agent's call ended; nothing to do");
        return Ok(());
    }
    let call = CallSid::parse(call_sid).ok_or(AppError::bad_request("CallSid is missing or malformed"))?;
    let not_taken = LedgerEvent::NotTaken {
        at_ms: app.clock.now_millis(),
        agent: agent.to_string(),
        call: call.to_string(),
        status: status.to_owned(),
    };
    record_event(app, conference, not_taken).await?;
    let outcome = ColleagueOutcome::of_call_status(status);
    if ring_ended(app, links, conference, agent, Some(&call), outcome).await? {
        tracing::info!(%conference, %agent, status, "the agent did not take the call");
        route(app, links).await?;
    }
    Ok(())
}

// --- 6. The agent answers --------------------------------------------------------------------

/// `agent` answered the call that brings them into `conference`, on their own call
/// `agent_call`. They join and are busy, unless the caller has gone (or was passed on after
/// the ring timed out): then they are told the call has ended.
pub async fn agent_answers(
    app: &App,
    links: &Links,
    conference: &CallSid,
    agent: &AgentId,
    agent_call: &CallSid,
) -> Result<VoiceResponse, AppError> {
    // The `from_line` of this answer's commit when the store refused it: finding the agent in
    // the call after that means the commit landed and its reply was lost (the SDK sent it again,
    // and the retry failed its condition), so nothing of the answer is recorded yet.
    let mut refused: Option<Option<i64>> = None;
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(mut record) = app.calls.conference(conference, now).await? else {
            tracing::info!(%conference, %agent, "agent answered a call that is over");
            ring_ended(app, links, conference, agent, Some(agent_call), ColleagueOutcome::Canceled).await?;
            return Ok(call_ended());
        };
        if record.joined.contains(agent) {
            if let Some(from_line) = refused {
                tracing::info!(%conference, %agent, "the agent answered (the store lost the reply)");
                record_answer(app, conference, agent, agent_call, from_line, Metric::IfNew).await;
            }
            // Else a retried webhook: they joined already.
            return Ok(agent_conference_twiml(conference));
        }
        if !record.ringing.contains(agent) {
            tracing::info!(%conference, %agent, "agent answered a ring that had ended");
            return Ok(call_ended());
        }
        // Disabled while their browser rang: the caller goes back to their place in line.
        if !app.agents.agent(agent).await?.is_some_and(|account| account.is_enabled()) {
            tracing::warn!(%conference, %agent, "an agent who may no longer sign in answered; not joined");
            ring_ended(app, links, conference, agent, Some(agent_call), ColleagueOutcome::Canceled).await?;
            return Ok(VoiceResponse::new().say(ACCOUNT_DISABLED).hangup());
        }
        record.placed(agent_call, agent);
        // Offered from the line, not a colleague dialed into a call that was answered already.
        let from_line = (record.state == CallerState::Ringing).then_some(record.arrived_at_ms);
        record.answered(agent, now);
        let mut state = app.calls.agent_state(agent, now).await?.unwrap_or_else(|| AgentState::new(agent.clone()));
        state.answered(conference, now);
        if app.calls.commit(&[Write::Caller(record), Write::Agent(state)], now).await? {
            tracing::info!(%conference, %agent, "the agent answered");
            record_answer(app, conference, agent, agent_call, from_line, Metric::Always).await;
            return Ok(agent_conference_twiml(conference));
        }
        refused = Some(from_line);
    }
    Err(AppError::Conflict("the call changed too often to join it".into()))
}

/// When an answer's `CallsAnswered` metric line is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    Always,
    /// Only if the day's count took the answer now: it was not counted, nor the metric written.
    IfNew,
}

/// What `agent`'s answer on `agent_call` leaves behind: the ledger's event and, for a caller
/// answered from the line (who arrived at `from_line`), the day's count and the metric. Side by
/// side: the agent hears nothing until both are written.
async fn record_answer(
    app: &App,
    conference: &CallSid,
    agent: &AgentId,
    agent_call: &CallSid,
    from_line: Option<i64>,
    metric: Metric,
) {
    let answered_at_ms = app.clock.now_millis();
    let answered = LedgerEvent::Answered {
        at_ms: answered_at_ms,
        agent: agent.to_string(),
        call: agent_call.to_string(),
        from_line: from_line.is_some(),
    };
    let counted = async {
        if let Some(arrived_ms) = from_line {
            let waited_ms = answered_at_ms - arrived_ms;
            if metric == Metric::Always {
                telemetry::call(CallEvent::Answered { waited_ms }, conference.as_str());
            }
            if count(app, conference, Outcome::Answered { waited_ms }).await && metric == Metric::IfNew {
                telemetry::call(CallEvent::Answered { waited_ms }, conference.as_str());
            }
        }
    };
    tokio::join!(note(app, conference, answered), counted);
}

/// An agent's side of the conference: it starts as they enter, and their leaving does not end
/// it (a customer left alone goes back into line instead).
fn agent_conference_twiml(conference: &CallSid) -> VoiceResponse {
    VoiceResponse::new().dial(Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(twiml::Conference {
            start_conference_on_enter: Some(true),
            end_conference_on_exit: Some(false),
            ..twiml::Conference::named(conference.as_str())
        }),
    })
}

fn call_ended() -> VoiceResponse {
    VoiceResponse::new().say(CALL_ENDED).hangup()
}

// --- 7. Warm transfer ------------------------------------------------------------------------

/// The colleague an agent dialed into their call, and the call that rings them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialedColleague {
    pub conference: CallSid,
    pub colleague: AgentId,
    pub call: CallSid,
}

/// `agent`, in a call, dials `colleague` (by default the available agent idle longest) into
/// it. 409 when the agent is in no call, or the colleague is not available.
pub async fn dial_colleague(
    app: &App,
    links: &Links,
    agent: &AgentId,
    colleague: Option<&str>,
) -> Result<DialedColleague, AppError> {
    let colleague = match colleague.filter(|to| !to.is_empty()) {
        Some(to) => Some(
            AgentId::parse(to)
                .map_err(|_| AppError::invalid_fields([("to".into(), "is not an agent id".into())].into()))?,
        ),
        None => None,
    };
    if colleague.as_ref() == Some(agent) {
        return Err(AppError::invalid_fields([("to".into(), "must be another agent".into())].into()));
    }
    let not_in_a_call = || AppError::Conflict(format!("{agent} is not in a call right now"));
    for _ in 0..RACES {
        let now = app.clock.now();
        let conference =
            app.calls.agent_state(agent, now).await?.and_then(|state| state.in_call).ok_or_else(not_in_a_call)?;
        let mut record = app.calls.conference(&conference, now).await?.ok_or_else(not_in_a_call)?;
        if !record.joined.contains(agent) {
            return Err(not_in_a_call());
        }
        if record.state == CallerState::Dialing {
            return Err(AppError::Conflict("the customer has not picked up yet".into()));
        }
        let mut state = agent_actions::colleague_to_ring(app, agent, colleague.as_ref(), now).await?;
        let colleague = state.agent.clone();
        record.ring(&colleague, now);
        state.ring_for(&conference, now);
        if !app.calls.commit(&[Write::Caller(record.clone()), Write::Agent(state)], now).await? {
            continue;
        }
        let warm = HandOver { from: agent, kind: "warm" };
        let call = ring_agent(app, links, &record, &colleague, Some(warm)).await?;
        tracing::info!(%agent, %colleague, %conference, %call, "dialed a colleague into the call");
        note(app, &conference, rang(app, &colleague, &call, true)).await;
        telemetry::call(CallEvent::Transfer, conference.as_str());
        return Ok(DialedColleague { conference, colleague, call });
    }
    Err(AppError::Conflict("the call changed too often; try again".into()))
}

// --- Agents call customers -------------------------------------------------------------------

/// An agent's browser call to `number`: dialed with the support number as caller id, only if
/// the agent may still sign in, the call comes from the session their token was issued to
/// (`session`, the `AGENT_SESSION_PARAM` the token passes), and the number is in
/// `DIAL_COUNTRIES` and on a ticket. Nothing else makes Warmline dial a phone number.
///
/// A call with no `session` is judged by the agent's record alone: every token `POST /token`
/// issues carries one, and Twilio passes a token's parameters with each call it places.
pub async fn agent_calls_customer(
    app: &App,
    links: &Links,
    call: &CallSid,
    agent: &AgentId,
    number: Option<&str>,
    session: Option<&str>,
) -> Result<VoiceResponse, AppError> {
    let Some(account) = app.agents.agent(agent).await?.filter(Agent::is_enabled) else {
        tracing::warn!(%agent, "refused a browser call from an agent who may not sign in");
        return Ok(refusal());
    };
    if let Some(token) = session
        && !agent_token_holds(app, &account, token).await?
    {
        tracing::warn!(%agent, "refused a browser call from a token of an ended session");
        return Ok(refusal());
    }
    let Some(Ok(number)) = number.map(PhoneNumber::parse) else {
        tracing::warn!(%agent, "refused to dial something that is no phone number");
        return Ok(refusal());
    };
    if !app.config.dial_countries.allows(&number) {
        tracing::warn!(%agent, phone_number = %number.masked(), "refused to dial a number outside DIAL_COUNTRIES");
        return Ok(VoiceResponse::new().say(OUTSIDE_DIAL_COUNTRIES).hangup());
    }
    if !app.tickets.has_ticket_for(&number).await? {
        tracing::warn!(%agent, "refused to dial a number that is on no ticket");
        return Ok(refusal());
    }
    // Twilio asking again for the same call: the customer is called already.
    if let Some(customer) = customer_called_on(app, call, agent).await? {
        return Ok(VoiceResponse::new().dial(agent_dials_conference(links, &customer)));
    }
    tracing::info!(%agent, phone_number = %number.masked(), "agent calls a customer");
    let dial = OutboundCall {
        // How the customer's side ended: for the ledger, and for an agent left waiting.
        status_callback: Some(links.url(&Route::CustomerCallStatus { agent: agent.clone() })),
        ..OutboundCall::new(
            number.to_string(),
            app.config.twilio.number.to_string(),
            links.url(&Route::CustomerAnswers { agent: agent.clone() }),
        )
    };
    let customer = match app.dialer.place_call(&dial).await {
        Ok(customer) => customer,
        Err(err) => {
            // Twilio's message may quote the number it would not call: its status and code only.
            match &err {
                TwilioError::Api { status, code, .. } => {
                    tracing::error!(status, code, %agent, "Twilio would not call the customer");
                }
                other => tracing::error!(error = %other, %agent, "could not call the customer"),
            }
            return Ok(VoiceResponse::new().say(CUSTOMER_NOT_CALLED).hangup());
        }
    };
    let record = match start_dialed_call(app, &customer, number, agent, call).await {
        Ok(record) => record,
        Err(err) => {
            cancel_call(app, &customer).await;
            return Err(err);
        }
    };
    note(app, &customer, began(app, &record)).await;
    Ok(VoiceResponse::new().dial(agent_dials_conference(links, &customer)))
}

/// The customer `agent` called from their call `agent_call`, if they did: the call the agent is
/// in, when its record names `agent_call` as theirs.
async fn customer_called_on(app: &App, agent_call: &CallSid, agent: &AgentId) -> Result<Option<CallSid>, AppError> {
    let now = app.clock.now();
    let Some(customer) = app.calls.agent_state(agent, now).await?.and_then(|state| state.in_call) else {
        return Ok(None);
    };
    let record = app.calls.conference(&customer, now).await?;
    Ok(record.filter(|record| record.agent_on(agent_call) == Some(agent)).map(|record| record.id))
}

/// The customer `agent` is calling on `customer`, from their own call `agent_call`: the caller's
/// record, and the agent busy with it, written together. A commit whose reply was lost is
/// found on the record.
async fn start_dialed_call(
    app: &App,
    customer: &CallSid,
    number: PhoneNumber,
    agent: &AgentId,
    agent_call: &CallSid,
) -> Result<Conference, AppError> {
    let record = Conference::dialed(customer.clone(), number, agent, agent_call, app.clock.now_millis());
    for _ in 0..RACES {
        let now = app.clock.now();
        let mut state = app.calls.agent_state(agent, now).await?.unwrap_or_else(|| AgentState::new(agent.clone()));
        state.answered(customer, now);
        let committed = app.calls.commit(&[Write::Caller(record.clone()), Write::Agent(state)], now).await;
        if let Ok(true) = committed {
            return Ok(record);
        }
        // Refused, or failed: either may be a commit that landed and lost its reply.
        if let Some(stored) = app.calls.conference(customer, now).await?
            && stored.agent_on(agent_call) == Some(agent)
        {
            return Ok(stored);
        }
        committed?;
    }
    Err(AppError::Conflict("the agent's presence changed too often to place the call".into()))
}

/// The agent's side of a call to a customer: they are in first, so theirs is the conference's
/// status callback, and their leaving does not end it (a cold transfer leaves the customer with
/// a colleague).
fn agent_dials_conference(links: &Links, customer: &CallSid) -> Dial {
    Dial {
        action: None,
        caller_id: None,
        timeout_seconds: None,
        noun: DialNoun::Conference(twiml::Conference {
            start_conference_on_enter: Some(true),
            end_conference_on_exit: Some(false),
            status_callback: Some(links.url(&Route::ConferenceEvents { conference: customer.clone() })),
            status_callback_event: Some("join leave end".to_owned()),
            status_callback_method: Some(Method::Post),
            ..twiml::Conference::named(customer.as_str())
        }),
    }
}

/// The customer `agent` called answered, on `customer`: they join the agent's conference, and
/// their leaving ends it. An agent who gave up while it rang is gone, and the customer is told.
pub async fn customer_answers(app: &App, customer: &CallSid, agent: &AgentId) -> Result<VoiceResponse, AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(mut record) = app.calls.conference(customer, now).await? else {
            tracing::info!(%customer, %agent, "the customer answered after the agent hung up");
            return Ok(VoiceResponse::new().say(AGENT_GONE).hangup());
        };
        if record.dialed_by.as_ref() != Some(agent) {
            tracing::warn!(%customer, %agent, "an answer for a call this agent did not place");
            return Ok(VoiceResponse::new().say(AGENT_GONE).hangup());
        }
        // Else a retried webhook: they picked up already.
        if record.state == CallerState::Dialing {
            record.picked_up(now);
            if !app.calls.commit(&[Write::Caller(record)], now).await? {
                continue;
            }
            tracing::info!(%customer, %agent, "the customer the agent called answered");
        }
        return Ok(VoiceResponse::new().dial(Dial {
            action: None,
            caller_id: None,
            timeout_seconds: None,
            noun: DialNoun::Conference(twiml::Conference {
                start_conference_on_enter: Some(true),
                end_conference_on_exit: Some(true),
                ..twiml::Conference::named(customer.as_str())
            }),
        }));
    }
    Err(AppError::Conflict("the call changed too often to join it".into()))
}

/// How the call to the customer `agent` called ended (`CallStatus`, `CallDuration`). A customer
/// who never picked up leaves the agent alone in the conference, perhaps not even in it yet: the
/// record goes and the agents are free at once, then their calls are ended with a word. Then the
/// ledger has it; a ledger failure is answered so that Twilio delivers the report again.
pub async fn customer_call_ended(
    app: &App,
    customer: &CallSid,
    agent: &AgentId,
    status: Option<&str>,
    seconds: Option<&str>,
) -> Result<(), AppError> {
    let done = LedgerEvent::Dialed {
        at_ms: app.clock.now_millis(),
        agent: agent.to_string(),
        status: status.unwrap_or("failed").to_owned(),
        seconds: seconds.and_then(|seconds| seconds.parse().ok()),
    };
    if let Some(waiting) = forget_unanswered(app, customer).await? {
        tracing::info!(%customer, %agent, status = status.unwrap_or_default(), "the customer the agent called did not answer");
        let not_reached = VoiceResponse::new().say(CUSTOMER_NOT_REACHED).hangup().to_xml();
        for call in waiting {
            if let Err(err) = app.dialer.update_call(&call, &CallUpdate::Twiml(not_reached.clone())).await {
                tracing::error!(error = %err, %customer, %call, "could not end the agent's call; they can hang up");
            }
        }
    }
    record_event(app, customer, done).await
}

/// The record of a customer an agent called who never picked up goes, and its agents are free:
/// the calls of the agents it held, to end. `None` when there was no such record.
async fn forget_unanswered(app: &App, customer: &CallSid) -> Result<Option<Vec<CallSid>>, AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let Some(record) = app.calls.conference(customer, now).await? else { return Ok(None) };
        if record.state != CallerState::Dialing {
            return Ok(None);
        }
        let mut writes = Vec::new();
        for agent in &record.joined {
            if let Some(mut state) = app.calls.agent_state(agent, now).await?
                && state.in_call.as_ref() == Some(customer)
            {
                state.call_ended(app.clock.now_millis());
                writes.push(Write::Agent(state));
            }
        }
        writes.push(Write::ForgetCaller(record.clone()));
        if app.calls.commit(&writes, now).await? {
            let calls = record.agent_calls.iter().filter(|(_, who)| record.joined.contains(who));
            return Ok(Some(calls.map(|(call, _)| call.clone()).collect()));
        }
    }
    Err(AppError::Conflict("the call changed too often to end it".into()))
}

/// An Access Token is being issued to `agent`, valid until `expires_at`: it is recorded with
/// the agent's session epoch, and what it passes with every call its browser places (its
/// record's id) is returned. Signing out, a new password or disabling moves the epoch on, and
/// the records of every earlier token stop matching.
pub async fn agent_token_issued(
    app: &App,
    agent: &Agent,
    expires_at: i64,
) -> Result<serde_json::Map<String, serde_json::Value>, AppError> {
    let token = AgentToken::issue(agent.id.clone(), agent.session_epoch, expires_at)?;
    // 128 random bits: an id taken already is a collision, never a retry.
    if !app.calls.record_agent_token(&token).await? {
        return Err(AppError::Conflict("please ask for a token again".into()));
    }
    Ok([(AGENT_SESSION_PARAM.to_owned(), serde_json::Value::String(token.id))].into_iter().collect())
}

/// Whether the token `id` was issued to `account` in its current session epoch.
async fn agent_token_holds(app: &App, account: &Agent, id: &str) -> Result<bool, AppError> {
    if !AgentToken::is_id(id) {
        return Ok(false);
    }
    let token = app.calls.agent_token(id, app.clock.now()).await?;
    Ok(token.is_some_and(|token| token.agent == account.id && token.session_epoch == account.session_epoch))
}

/// What a browser call hears when it may not be placed.
pub fn refusal() -> VoiceResponse {
    VoiceResponse::new().say(REFUSAL).hangup()
}

/// Stops a call that may still be ringing. Twilio refuses to cancel a call that was answered
/// or has ended, and that is fine, so a failure is only logged.
async fn cancel_call(app: &App, call: &CallSid) {
    match app.dialer.update_call(call, &CallUpdate::Cancel).await {
        Ok(()) => tracing::info!(%call, "canceled the agent's call"),
        Err(err) => tracing::info!(error = %err, %call, "could not cancel the agent's call (answered or over)"),
    }
}
