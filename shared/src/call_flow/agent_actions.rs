//! What an agent in a support call does to it from the dashboard: hold and resume the customer,
//! consult a colleague and then complete or cancel, and cold transfer. Each is asked for by name
//! on the call (`CallAction`), by an agent who must be in it, and is idempotent: the change is
//! made at Twilio first (the Participants API, which Twilio applies the same way twice), then
//! committed over the record it was decided on, so a failure at Twilio changes nothing here and
//! a retry after a lost commit rolls the same change forward.
//!
//! Hold is Twilio's: the customer hears the TwiML at `HoldUrl` and nobody hears them. Warmline's
//! hold URL is the waitUrl's music (`Route::HoldMusic`), whose every turn is also the watch over
//! a held customer (`check_on`): a ring that outlasted its timeout is ended, and a customer held
//! past `HOLD_LIMIT_SECONDS` with no agent left in the call goes back to the front of the line.

use super::{
    CallSid, Conference, HandOver, RACES, cancel_call, next_free_agent, note, rang, ring_agent, take_back_into_line,
};
use crate::App;
use crate::domain::{AgentId, AgentState, CallAction, Presence, Transfer, TransferKind};
use crate::error::AppError;
use crate::http::Links;
use crate::routes::Route;
use crate::store::Write;
use crate::telemetry::{self, CallEvent};
use crate::twilio::ParticipantUpdate;

/// How long a customer may be on hold with no agent left in the call before they go back to
/// the front of the line.
pub const HOLD_LIMIT_SECONDS: i64 = 10 * 60;

/// `agent` does `action` to the support call of `customer`; `to` names the colleague of a
/// consult or a transfer (by default the available agent idle longest). Returns the call as it
/// stands after.
///
/// Refused, with nothing changed: 409 for a call that has ended or that the action does not fit
/// (no consultation to complete, a transfer already under way); 403 for an agent not in the
/// call; 400 for a malformed `to`; 503 when Twilio or the store fails.
pub async fn act_on_call(
    app: &App,
    links: &Links,
    agent: &AgentId,
    customer: &CallSid,
    action: CallAction,
    to: Option<&str>,
) -> Result<Conference, AppError> {
    let colleague = colleague_named(agent, to)?;
    // Whether an attempt changed the customer's hold at Twilio and then lost its commit: an
    // answer other than success must then leave Twilio as the record says.
    let mut touched = false;
    let outcome = attempt(app, links, agent, customer, action, colleague.as_ref(), &mut touched).await;
    if outcome.is_err() && touched {
        match app.calls.conference(customer, app.clock.now()).await {
            Ok(Some(record)) => hold_as_recorded(app, links, &record).await,
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, %customer, "could not read the call to set its hold back"),
        }
    }
    outcome
}

async fn attempt(
    app: &App,
    links: &Links,
    agent: &AgentId,
    customer: &CallSid,
    action: CallAction,
    colleague: Option<&AgentId>,
    touched: &mut bool,
) -> Result<Conference, AppError> {
    for _ in 0..RACES {
        let now = app.clock.now();
        let record = app
            .calls
            .conference(customer, now)
            .await?
            .ok_or_else(|| AppError::Conflict("this call has ended".into()))?;
        if !record.joined.contains(agent) {
            // A completion whose commit lost to Twilio's report of the agent leaving: done.
            if *touched && action == CallAction::Complete && record.transfer.is_none() {
                return Ok(record);
            }
            return Err(AppError::Forbidden("an agent may act only on a call they are in"));
        }
        let Some(conference_sid) = record.conference_sid.clone() else {
            return Err(AppError::Conflict("this call is not connected yet; try again in a moment".into()));
        };
        let was_held = record.held_since.is_some();
        let applied = match action {
            CallAction::Hold => hold(app, links, &conference_sid, record, now).await?,
            CallAction::Resume => resume(app, &conference_sid, record).await?,
            CallAction::Consult => {
                hand_over(app, links, &conference_sid, record, agent, TransferKind::Consult, colleague, now).await?
            }
            CallAction::Transfer => {
                hand_over(app, links, &conference_sid, record, agent, TransferKind::Cold, colleague, now).await?
            }
            CallAction::Complete => complete(app, &conference_sid, record, agent).await?,
            CallAction::Cancel => cancel(app, &conference_sid, record, agent).await?,
        };
        let (writes, record, ring) = match applied {
            Applied::Unchanged(record) => return Ok(record),
            Applied::Commit(writes, record) => (writes, record, false),
            Applied::Ring(writes, record) => (writes, record, true),
        };
        *touched = true;
        match app.calls.commit(&writes, now).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                // The store failed after Twilio changed: Twilio goes back to what was read.
                set_hold(app, links, &conference_sid, customer, was_held).await;
                *touched = false;
                return Err(err.into());
            }
        }
        tracing::info!(%customer, %agent, action = action.as_str(), "the agent acted on the call");
        *touched = false;
        return if ring { ring_colleague(app, links, &conference_sid, record).await } else { Ok(record) };
    }
    Err(AppError::Conflict("the call changed too often; try again".into()))
}

/// Puts the customer on hold or takes them off it at Twilio, as `record` says: after a change
/// Warmline made there could not be recorded.
async fn hold_as_recorded(app: &App, links: &Links, record: &Conference) {
    if let Some(conference_sid) = &record.conference_sid {
        set_hold(app, links, conference_sid, &record.id, record.held_since.is_some()).await;
    }
}

/// Best effort: a failure is logged.
async fn set_hold(app: &App, links: &Links, conference_sid: &str, customer: &CallSid, held: bool) {
    let update = if held { participant_hold(links) } else { ParticipantUpdate::Resume };
    if let Err(err) = app.dialer.update_participant(conference_sid, customer, &update).await {
        tracing::error!(error = %err, %customer, "could not set the customer's hold back as recorded");
    }
}

/// What an action decided over the record it read.
enum Applied {
    /// Already so: a repeated click.
    Unchanged(Conference),
    /// These writes, committed over what was read, leave the call as `Conference`.
    Commit(Vec<Write>, Conference),
    /// As `Commit`, then the colleague of the call's new transfer is rung.
    Ring(Vec<Write>, Conference),
}

fn colleague_named(agent: &AgentId, to: Option<&str>) -> Result<Option<AgentId>, AppError> {
    let Some(to) = to.filter(|to| !to.is_empty()) else { return Ok(None) };
    let colleague = AgentId::parse(to)
        .map_err(|_| AppError::invalid_fields([("to".into(), "is not an agent id".into())].into()))?;
    if colleague == *agent {
        return Err(AppError::invalid_fields([("to".into(), "must be another agent".into())].into()));
    }
    Ok(Some(colleague))
}

fn participant_hold(links: &Links) -> ParticipantUpdate {
    ParticipantUpdate::Hold { hold_url: links.url(&Route::HoldMusic { returning: true }) }
}

async fn hold(
    app: &App,
    links: &Links,
    conference_sid: &str,
    mut record: Conference,
    now: i64,
) -> Result<Applied, AppError> {
    if record.held_since.is_some() {
        return Ok(Applied::Unchanged(record));
    }
    app.dialer.update_participant(conference_sid, &record.id, &participant_hold(links)).await?;
    record.held_since = Some(now);
    Ok(Applied::Commit(vec![Write::Caller(record.clone())], record))
}

async fn resume(app: &App, conference_sid: &str, mut record: Conference) -> Result<Applied, AppError> {
    // A consultation keeps the customer on hold until it is completed or canceled; the
    // colleague of a cold transfer, in the call, may take them off hold themselves.
    if record
        .transfer
        .as_ref()
        .is_some_and(|transfer| transfer.kind == TransferKind::Consult && transfer.colleague_engaged())
    {
        return Err(AppError::Conflict("complete or cancel the consultation first".into()));
    }
    // Asked of Twilio even when the record says they are not held: Twilio applies it the same
    // way twice, and it is how an agent undoes a hold the record lost (a resume after a
    // hand-over that Twilio failed).
    app.dialer.update_participant(conference_sid, &record.id, &ParticipantUpdate::Resume).await?;
    if record.held_since.is_none() && record.transfer.is_none() {
        return Ok(Applied::Unchanged(record));
    }
    record.held_since = None;
    // A consultation whose colleague never came is over with it.
    record.transfer = None;
    Ok(Applied::Commit(vec![Write::Caller(record.clone())], record))
}

/// Consult (`kind` `Consult`) or cold transfer (`Cold`): the customer on hold, `colleague` (or
/// the next one the router would pick) rung into the call once the record says so
/// (`ring_colleague`). For a cold transfer, the agent then leaves at once.
#[allow(clippy::too_many_arguments, reason = "one call's context, passed through")]
async fn hand_over(
    app: &App,
    links: &Links,
    conference_sid: &str,
    mut record: Conference,
    agent: &AgentId,
    kind: TransferKind,
    colleague: Option<&AgentId>,
    now: i64,
) -> Result<Applied, AppError> {
    if let Some(transfer) = record.transfer.clone().filter(Transfer::colleague_engaged) {
        let same = transfer.kind == kind && transfer.from == *agent && colleague.is_none_or(|to| *to == transfer.to);
        if !same {
            return Err(AppError::Conflict(format!("a {} to {} is under way", transfer.kind.as_str(), transfer.to)));
        }
        // A repeated click: for a cold transfer, the leaving may be what failed the first time.
        if kind == TransferKind::Cold {
            leave(app, conference_sid, &record, agent).await?;
        }
        return Ok(Applied::Unchanged(record));
    }
    let mut state = colleague_to_ring(app, agent, colleague, now).await?;
    let colleague = state.agent.clone();
    if record.held_since.is_none() {
        app.dialer.update_participant(conference_sid, &record.id, &participant_hold(links)).await?;
        record.held_since = Some(now);
    }
    record.ring(&colleague, now);
    record.transfer = Some(Transfer { kind, from: agent.clone(), to: colleague, since: now, outcome: None });
    state.ring_for(&record.id, now);
    Ok(Applied::Ring(vec![Write::Caller(record.clone()), Write::Agent(state)], record))
}

/// Rings the colleague of the transfer just recorded; for a cold transfer, the agent who
/// started it then leaves. Returns the call as it stands after.
async fn ring_colleague(
    app: &App,
    links: &Links,
    conference_sid: &str,
    record: Conference,
) -> Result<Conference, AppError> {
    let Some(transfer) = record.transfer.clone() else { return Ok(record) };
    let customer = record.id.clone();
    let handed_over = HandOver { from: &transfer.from, kind: transfer.kind.as_str() };
    let call = match ring_agent(app, links, &record, &transfer.to, Some(handed_over)).await {
        Ok(call) => call,
        Err(err) => {
            // Nobody is coming: the customer is back with the agent, as before they asked.
            resume_and_forget_transfer(app, conference_sid, &customer).await;
            return Err(err);
        }
    };
    tracing::info!(%customer, from = %transfer.from, to = %transfer.to, %call, kind = transfer.kind.as_str(), "rang a colleague to hand the call over");
    note(app, &customer, rang(app, &transfer.to, &call, true)).await;
    telemetry::call(CallEvent::Transfer, customer.as_str());
    if transfer.kind == TransferKind::Cold {
        leave(app, conference_sid, &record, &transfer.from).await?;
    }
    Ok(app.calls.conference(&customer, app.clock.now()).await?.unwrap_or(record))
}

/// Takes the customer off hold at Twilio, then records it and forgets the transfer: once the
/// colleague of a cold transfer is in the call, or when the colleague could not be rung. A
/// failure at Twilio leaves the record saying they are held, so the dashboard offers Resume.
pub(super) async fn resume_and_forget_transfer(app: &App, conference_sid: &str, customer: &CallSid) {
    if let Err(err) = app.dialer.update_participant(conference_sid, customer, &ParticipantUpdate::Resume).await {
        tracing::error!(error = %err, %customer, "could not take the customer off hold; the agent can resume them");
        return;
    }
    for _ in 0..RACES {
        let now = app.clock.now();
        let Ok(Some(mut record)) = app.calls.conference(customer, now).await else { return };
        record.held_since = None;
        record.transfer = None;
        if app.calls.commit(&[Write::Caller(record)], now).await.unwrap_or(true) {
            return;
        }
    }
}

/// The colleague to ring (a consult, a transfer, "Dial a colleague in"): `named`, who must be
/// available and enabled, or the available agent idle longest.
pub(super) async fn colleague_to_ring(
    app: &App,
    agent: &AgentId,
    named: Option<&AgentId>,
    now: i64,
) -> Result<AgentState, AppError> {
    match named {
        Some(colleague) => {
            let unavailable = || AppError::Conflict(format!("{colleague} is not available"));
            let state = app.calls.agent_state(colleague, now).await?.ok_or_else(unavailable)?;
            let enabled = app.agents.agent(colleague).await?.is_some_and(|account| account.is_enabled());
            if !state.can_take_a_call(now) || !enabled {
                return Err(unavailable());
            }
            Ok(state)
        }
        None => next_free_agent(app, now)
            .await?
            .filter(|state| state.agent != *agent)
            .ok_or_else(|| AppError::Conflict("no colleague is available".into())),
    }
}

/// `agent` leaves the call through the Participants API; Twilio's `participant-leave` frees
/// them (`agent_left`).
async fn leave(app: &App, conference_sid: &str, record: &Conference, agent: &AgentId) -> Result<(), AppError> {
    let Some(call) = record.latest_call_to(agent) else {
        return Err(AppError::Conflict(format!("{agent}'s call is not known; hang up to leave")));
    };
    app.dialer.update_participant(conference_sid, call, &ParticipantUpdate::Remove).await?;
    Ok(())
}

/// The consultation `agent` started, if they started one.
fn own_consultation(record: &Conference, agent: &AgentId) -> Option<Transfer> {
    record.transfer.clone().filter(|transfer| transfer.kind == TransferKind::Consult && transfer.from == *agent)
}

/// The colleague answered: the customer comes off hold with them, and `agent` leaves.
async fn complete(
    app: &App,
    conference_sid: &str,
    mut record: Conference,
    agent: &AgentId,
) -> Result<Applied, AppError> {
    let transfer = own_consultation(&record, agent)
        .ok_or_else(|| AppError::Conflict("there is no consultation of yours to complete".into()))?;
    if !record.joined.contains(&transfer.to) {
        return Err(AppError::Conflict(format!("{} is not in the call; cancel instead", transfer.to)));
    }
    app.dialer.update_participant(conference_sid, &record.id, &ParticipantUpdate::Resume).await?;
    leave(app, conference_sid, &record, agent).await?;
    record.held_since = None;
    record.transfer = None;
    Ok(Applied::Commit(vec![Write::Caller(record.clone())], record))
}

/// The colleague is taken out of the call (or their ring stopped), and the customer comes off
/// hold with `agent`.
async fn cancel(app: &App, conference_sid: &str, mut record: Conference, agent: &AgentId) -> Result<Applied, AppError> {
    let transfer = own_consultation(&record, agent)
        .ok_or_else(|| AppError::Conflict("there is no consultation of yours to cancel".into()))?;
    let now = app.clock.now();
    let mut writes = Vec::new();
    if let Some(call) = record.latest_call_to(&transfer.to).cloned() {
        if record.joined.contains(&transfer.to) {
            app.dialer.update_participant(conference_sid, &call, &ParticipantUpdate::Remove).await?;
        } else if record.ringing.contains(&transfer.to) {
            cancel_call(app, &call).await;
            // Its status callback (`canceled`) then finds nothing more to change.
            record.ring_ended(&transfer.to);
            if let Some(mut state) = app.calls.agent_state(&transfer.to, now).await?
                && state.ringing_for.as_ref() == Some(&record.id)
            {
                state.ring_ended(false, app.clock.now_millis());
                writes.push(Write::Agent(state));
            }
        }
    }
    app.dialer.update_participant(conference_sid, &record.id, &ParticipantUpdate::Resume).await?;
    record.held_since = None;
    record.transfer = None;
    writes.push(Write::Caller(record.clone()));
    Ok(Applied::Commit(writes, record))
}

/// `colleague` is in the call (Twilio's `participant-join` of their call): if they were rung by
/// a cold transfer and their answer is recorded, the customer comes off hold with them.
pub(super) async fn colleague_answered(app: &App, record: &Conference, colleague: &AgentId) {
    let cold = record.joined.contains(colleague)
        && record
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.kind == TransferKind::Cold && transfer.to == *colleague);
    if let (true, Some(conference_sid)) = (cold, &record.conference_sid) {
        resume_and_forget_transfer(app, conference_sid, &record.id).await;
    }
}

/// `agent` left the call: a consultation they had started becomes a cold transfer, its
/// colleague the customer's agent. `Some` of the conference to take the customer off hold in
/// (`resume_and_forget_transfer`, once the record is committed) when the colleague is in the
/// call already; one still ringing takes them off hold when they answer.
pub(super) fn started_by_leaving(record: &mut Conference, agent: &AgentId) -> Option<String> {
    let transfer =
        record.transfer.as_mut().filter(|transfer| transfer.from == *agent && transfer.colleague_engaged())?;
    transfer.kind = TransferKind::Cold;
    let colleague_in_call = record.joined.contains(&transfer.to);
    colleague_in_call.then(|| record.conference_sid.clone()).flatten()
}

/// A customer held too long with nobody left in the call goes back to the front of the line:
/// the agents the record still names are freed (their leaving was not heard), a ring still
/// going is canceled, and Twilio takes the customer out of the conference into line.
pub(super) async fn back_from_hold(app: &App, links: &Links, mut record: Conference, now: i64) -> Result<(), AppError> {
    let customer = record.id.clone();
    let mut writes = Vec::new();
    for agent in record.joined.iter().chain(&record.ringing) {
        let Some(mut state) = app.calls.agent_state(agent, now).await? else { continue };
        if state.in_call.as_ref() == Some(&customer) {
            state.call_ended(app.clock.now_millis());
            writes.push(Write::Agent(state));
        } else if state.ringing_for.as_ref() == Some(&customer) {
            state.ring_ended(false, app.clock.now_millis());
            writes.push(Write::Agent(state));
        }
    }
    let rings: Vec<CallSid> = record.ringing.iter().filter_map(|agent| record.latest_call_to(agent)).cloned().collect();
    record.joined.clear();
    record.ringing.clear();
    record.ringing_since = None;
    record.requeue();
    writes.push(Write::Caller(record));
    // A lost race: whatever changed is looked at again at the next turn of the music.
    if !app.calls.commit(&writes, now).await? {
        return Ok(());
    }
    tracing::warn!(%customer, "on hold too long with nobody in the call; back to the front of the line");
    for call in &rings {
        cancel_call(app, call).await;
    }
    take_back_into_line(app, links, &customer).await;
    Ok(())
}

/// A customer held past `HOLD_LIMIT_SECONDS` with no agent left in the call (none whose presence
/// still shows them on it: a leave Twilio reported and Warmline lost counts as left).
pub(super) async fn held_too_long(app: &App, record: &Conference, now: i64) -> Result<bool, AppError> {
    if record.held_since.is_none_or(|since| now - since < HOLD_LIMIT_SECONDS) {
        return Ok(false);
    }
    for agent in &record.joined {
        let state = app.calls.agent_state(agent, now).await?;
        if state.is_some_and(|state| {
            state.in_call.as_ref() == Some(&record.id) && state.presence(now).0 != Presence::Offline
        }) {
            return Ok(false);
        }
    }
    Ok(true)
}
