//! The call ledger: what happened to each call, kept for months after the short-lived call
//! state has gone. Each thing that happens is one `LedgerEvent`, stored once under a key that
//! is the same on every delivery of it (`LedgerEvent::key`), and a call's record is the fold of
//! its events (`CallRecord::fold`): the order they arrive in, and how often, change nothing.

use serde::{Deserialize, Serialize};

use super::{CallSid, TicketId};

/// How long the ledger keeps a call by default: 13 months (`LedgerRetentionDays`).
pub const LEDGER_RETENTION_DAYS: i64 = 396;

/// How a call came in, or went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// A customer dialed the support number.
    Phone,
    /// A customer pressed "Call support" in their browser.
    Browser,
    /// An agent called a ticket's number from the dashboard.
    Agent,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Browser => "browser",
            Self::Agent => "agent",
        }
    }

    pub fn direction(self) -> &'static str {
        match self {
            Self::Agent => "outbound",
            Self::Phone | Self::Browser => "inbound",
        }
    }
}

/// One thing that happened to a call. `at_ms` is when Warmline learnt of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LedgerEvent {
    /// The call began: who called (an E.164 number, a customer identity, or empty; for an
    /// agent's call, the number called), the party its index is kept under (the number, or the
    /// identity), if any, and the support line's day it began on. `agent`: who placed it.
    Began {
        at_ms: i64,
        channel: Channel,
        caller: String,
        party: Option<String>,
        day: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// The call came outside business hours: nobody was rung.
    AfterHours { at_ms: i64 },
    /// An agent's browser rang for it (`call`: the call to the agent); `transfer` when a
    /// colleague was dialed into a call already answered.
    Rang { at_ms: i64, agent: String, call: String, transfer: bool },
    /// The agent on `call` answered; `from_line` when the caller waited in line for it.
    Answered { at_ms: i64, agent: String, call: String, from_line: bool },
    /// The call to an agent ended unanswered, as Twilio reported it (`CallStatus`).
    NotTaken { at_ms: i64, agent: String, call: String, status: String },
    /// The caller was offered to leave a message; `nobody` when no agent could answer soon.
    VoicemailOffered { at_ms: i64, nobody: bool },
    /// The caller left no message after the offer of `offered_at` (seconds) and is back in line.
    StayedInLine { at_ms: i64, offered_at: i64 },
    /// The caller left a message: it is the ticket `ticket`.
    Voicemail { at_ms: i64, recording: String, ticket: String },
    /// The customer's call ended: their conference's `conference-end`, by its `SequenceNumber`
    /// within the conference run (`ConferenceSid`) when Twilio sent one.
    Ended { at_ms: i64, run: String },
    /// An agent's call to a customer ended, as Twilio reported it (`DialCallStatus`).
    Dialed { at_ms: i64, agent: String, status: String, seconds: Option<i64> },
}

impl LedgerEvent {
    /// The event's deduplication key within its call: the same on every delivery of it.
    pub fn key(&self) -> String {
        match self {
            Self::Began { .. } => "began".to_owned(),
            Self::AfterHours { .. } => "after-hours".to_owned(),
            Self::Rang { call, .. } => format!("rang#{call}"),
            Self::Answered { call, .. } => format!("answered#{call}"),
            Self::NotTaken { call, status, .. } => format!("status#{call}#{status}"),
            Self::VoicemailOffered { at_ms, .. } => format!("offered-voicemail#{}", at_ms.div_euclid(1000)),
            Self::StayedInLine { offered_at, .. } => format!("stayed#{offered_at}"),
            Self::Voicemail { recording, .. } => format!("recording#{recording}"),
            Self::Ended { run, .. } => format!("end#{run}"),
            Self::Dialed { status, .. } => format!("dialed#{status}"),
        }
    }

    pub fn at_ms(&self) -> i64 {
        match self {
            Self::Began { at_ms, .. }
            | Self::AfterHours { at_ms }
            | Self::Rang { at_ms, .. }
            | Self::Answered { at_ms, .. }
            | Self::NotTaken { at_ms, .. }
            | Self::VoicemailOffered { at_ms, .. }
            | Self::StayedInLine { at_ms, .. }
            | Self::Voicemail { at_ms, .. }
            | Self::Ended { at_ms, .. }
            | Self::Dialed { at_ms, .. } => *at_ms,
        }
    }
}

/// Where a call sits in the ledger's indexes: sorted by when it began, then by its id, so two
/// calls that began in the same millisecond both have a place.
pub fn started_key(began_at_ms: i64, call: &CallSid) -> String {
    format!("{began_at_ms:015}#{call}")
}

/// The call at the index position `key` (`started_key`), if it is one: what a page cursor holds.
pub fn parse_started_key(key: &str) -> Option<(i64, CallSid)> {
    let (at_ms, call) = key.split_once('#')?;
    let well_formed = at_ms.len() == 15 && at_ms.bytes().all(|b| b.is_ascii_digit());
    Some((at_ms.parse().ok().filter(|_| well_formed)?, CallSid::parse(call)?))
}

/// When something Twilio reports happened, in epoch milliseconds: its `Timestamp` (RFC 2822,
/// whole seconds) when it has one, else `now_ms`. A report can come late (a queue, a retry after
/// a failure), so Twilio's time is the event's; within its second, the middle of what is left
/// of it by `now_ms`.
pub fn reported_at_ms(timestamp: Option<&str>, now_ms: i64) -> i64 {
    let parsed = timestamp.and_then(|timestamp| {
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc2822).ok()
    });
    let Some(second) = parsed.map(|at| at.unix_timestamp() * 1000) else { return now_ms };
    let latest = (second + 999).min(now_ms);
    // A Twilio clock ahead of ours: ours is all there is.
    if latest < second { now_ms } else { (second + latest) / 2 }
}

/// What one agent had to do with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRole {
    pub agent: String,
    /// `offered`, `answered`, `declined`, `missed`, `transferred-to` or `called`.
    pub role: &'static str,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Answered,
    Abandoned,
    Voicemail,
    AfterHours,
    Failed,
    NoAgent,
    InProgress,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Abandoned => "abandoned",
            Self::Voicemail => "voicemail",
            Self::AfterHours => "after-hours",
            Self::Failed => "failed",
            Self::NoAgent => "no-agent",
            Self::InProgress => "in-progress",
        }
    }
}

/// A call as its events tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub call: CallSid,
    pub channel: Channel,
    pub caller: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub agents: Vec<AgentRole>,
    pub waited_ms: Option<i64>,
    pub talked_ms: Option<i64>,
    pub holds: u32,
    pub transfers: u32,
    pub outcome: CallOutcome,
    /// The voicemail's ticket, when the caller left a message.
    pub voicemail_ticket: Option<TicketId>,
}

/// A caller offered to leave a message who has done nothing Warmline hears of for this long
/// hung up: Twilio reports no end of a call outside its conference. The offer, the choice, the
/// greeting and the longest message fit in it (`call_flow::VOICEMAIL_SLOT_SECONDS`).
pub const VOICEMAIL_SILENCE_SECONDS: i64 = 300;

/// The statuses of an agent's call that mean they refused it rather than let it ring out.
const DECLINED: [&str; 2] = ["busy", "failed"];

/// The outcomes of an agent's call to a customer that mean the customer never picked up.
const DIAL_FAILED: [&str; 4] = ["busy", "failed", "no-answer", "canceled"];

impl CallRecord {
    /// The record `events` of `call` make at `now_ms`, whatever their order; `None` until the
    /// call's beginning is among them (a report that came before it waits for it). `now_ms`
    /// matters only to a caller who went quiet after an offer to leave a message
    /// (`VOICEMAIL_SILENCE_SECONDS`).
    pub fn fold(call: &CallSid, events: &[LedgerEvent], now_ms: i64) -> Option<Self> {
        let mut events: Vec<&LedgerEvent> = events.iter().collect();
        events.sort_by_key(|event| (event.at_ms(), event.key()));
        // One event a key, as the ledger stores them: the earliest delivery of each.
        let mut seen = std::collections::HashSet::new();
        events.retain(|event| seen.insert(event.key()));
        let (channel, caller, started_ms, placed_by) = events.iter().find_map(|event| match event {
            LedgerEvent::Began { at_ms, channel, caller, agent, .. } => {
                Some((*channel, caller.clone(), *at_ms, agent.clone()))
            }
            _ => None,
        })?;
        let mut record = Self {
            call: call.clone(),
            channel,
            caller,
            started_ms,
            ended_ms: None,
            agents: Vec::new(),
            waited_ms: None,
            talked_ms: None,
            holds: 0,
            transfers: 0,
            outcome: CallOutcome::InProgress,
            voicemail_ticket: None,
        };
        if let Some(agent) = &placed_by {
            record.set_role(agent, "called");
        }
        let mut answered_ms = None;
        let (mut after_hours, mut nobody, mut dial_status) = (false, false, None);
        // The latest offer to leave a message, unless something was heard of the caller after it.
        let mut quiet_since = None;
        for event in &events {
            quiet_since = match event {
                LedgerEvent::VoicemailOffered { at_ms, .. } => Some(*at_ms),
                LedgerEvent::NotTaken { .. } | LedgerEvent::AfterHours { .. } => quiet_since,
                _ => None,
            };
            match event {
                LedgerEvent::Began { .. } => {}
                LedgerEvent::AfterHours { .. } => after_hours = true,
                LedgerEvent::Rang { agent, transfer, .. } => {
                    record.transfers += u32::from(*transfer);
                    record.set_role(agent, if *transfer { "transferred-to" } else { "offered" });
                }
                LedgerEvent::Answered { at_ms, agent, from_line, .. } => {
                    if *from_line || answered_ms.is_none() {
                        answered_ms = Some(answered_ms.map_or(*at_ms, |first: i64| first.min(*at_ms)));
                    }
                    record.set_role(agent, "answered");
                }
                LedgerEvent::NotTaken { agent, status, .. } => {
                    let role = if DECLINED.contains(&status.as_str()) { "declined" } else { "missed" };
                    if status != "canceled" {
                        record.set_role(agent, role);
                    }
                }
                LedgerEvent::VoicemailOffered { nobody: offered_for_nobody, .. } => nobody |= *offered_for_nobody,
                LedgerEvent::StayedInLine { .. } => {}
                LedgerEvent::Voicemail { at_ms, ticket, .. } => {
                    record.voicemail_ticket = TicketId::parse(ticket);
                    // The caller left the conference for it: this report is their call's last.
                    record.ended_ms = record.ended_ms.or(Some(*at_ms));
                }
                LedgerEvent::Ended { at_ms, .. } => {
                    // Twilio's clock, which may be a little behind ours at the start.
                    let at_ms = (*at_ms).max(started_ms);
                    record.ended_ms = Some(record.ended_ms.map_or(at_ms, |first| first.min(at_ms)));
                }
                LedgerEvent::Dialed { at_ms, agent, status, seconds } => {
                    record.set_role(agent, "called");
                    record.ended_ms = Some(*at_ms);
                    record.talked_ms = seconds.filter(|_| status == "completed").map(|s| s * 1000);
                    dial_status = Some(status.clone());
                }
            }
        }
        if let Some(offered) = quiet_since.filter(|offered| now_ms - offered >= VOICEMAIL_SILENCE_SECONDS * 1000)
            && record.ended_ms.is_none()
        {
            record.ended_ms = Some(offered);
        }
        let talked_since = |answered: i64| record.ended_ms.map(|ended| (ended - answered).max(0));
        record.outcome = if let Some(status) = dial_status {
            if DIAL_FAILED.contains(&status.as_str()) { CallOutcome::Failed } else { CallOutcome::Answered }
        } else if let Some(answered) = answered_ms {
            record.waited_ms = Some((answered - started_ms).max(0));
            record.talked_ms = talked_since(answered);
            CallOutcome::Answered
        } else if record.voicemail_ticket.is_some() {
            CallOutcome::Voicemail
        } else if after_hours {
            CallOutcome::AfterHours
        } else if let Some(ended) = record.ended_ms {
            record.waited_ms = Some((ended - started_ms).max(0));
            let offered = record.agents.iter().any(|role| role.role != "called");
            if nobody && !offered { CallOutcome::NoAgent } else { CallOutcome::Abandoned }
        } else {
            CallOutcome::InProgress
        };
        Some(record)
    }

    /// Gives `agent` `role`, unless they have one that says more: an answer outranks a miss,
    /// and a miss the ring it ended; a colleague dialed in stays `transferred-to` once answered.
    fn set_role(&mut self, agent: &str, role: &'static str) {
        fn rank(role: &str) -> u8 {
            match role {
                "answered" | "called" => 2,
                "missed" | "declined" => 1,
                _ => 0,
            }
        }
        match self.agents.iter_mut().find(|existing| existing.agent == agent) {
            None => self.agents.push(AgentRole { agent: agent.to_owned(), role }),
            Some(existing) if existing.role == "transferred-to" && role == "answered" => {}
            Some(existing) if rank(role) > rank(existing.role) => existing.role = role,
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> CallSid {
        CallSid::parse("CA00000000000000000000000000000001").unwrap()
    }

    fn began(at_ms: i64) -> LedgerEvent {
        LedgerEvent::Began {
            at_ms,
            channel: Channel::Phone,
            caller: "+15551230000".into(),
            party: Some("+15551230000".into()),
            day: "2026-12-03".into(),
            agent: None,
        }
    }

    fn answered_call() -> Vec<LedgerEvent> {
        vec![
            began(1_000),
            LedgerEvent::Rang { at_ms: 3_000, agent: "agent1".into(), call: "CAa".into(), transfer: false },
            LedgerEvent::NotTaken {
                at_ms: 23_000,
                agent: "agent1".into(),
                call: "CAa".into(),
                status: "no-answer".into(),
            },
            LedgerEvent::Rang { at_ms: 23_500, agent: "agent2".into(), call: "CAb".into(), transfer: false },
            LedgerEvent::Answered { at_ms: 25_000, agent: "agent2".into(), call: "CAb".into(), from_line: true },
            LedgerEvent::Rang { at_ms: 40_000, agent: "agent3".into(), call: "CAc".into(), transfer: true },
            LedgerEvent::Answered { at_ms: 44_000, agent: "agent3".into(), call: "CAc".into(), from_line: false },
            LedgerEvent::Ended { at_ms: 85_000, run: "CF1".into() },
        ]
    }

    #[test]
    fn an_answered_call_folds_the_same_in_any_order() {
        let events = answered_call();
        let record = CallRecord::fold(&sid(), &events, 0).unwrap();
        assert_eq!(record.outcome, CallOutcome::Answered);
        assert_eq!(record.waited_ms, Some(24_000));
        assert_eq!(record.talked_ms, Some(60_000));
        assert_eq!(record.transfers, 1);
        let roles: Vec<_> = record.agents.iter().map(|r| (r.agent.as_str(), r.role)).collect();
        assert_eq!(roles, [("agent1", "missed"), ("agent2", "answered"), ("agent3", "transferred-to")]);
        let mut reversed = events.clone();
        reversed.reverse();
        reversed.extend(events.iter().cloned());
        assert_eq!(CallRecord::fold(&sid(), &reversed, 0), Some(record));
    }

    #[test]
    fn a_report_happened_when_twilio_says() {
        // Sat, 21 Nov 2026 11:00:00 +0000
        let second = 1_795_258_800_000;
        let stamp = Some("Sat, 21 Nov 2026 11:00:00 +0000");
        assert_eq!(reported_at_ms(stamp, second + 60_000), second + 499, "late: the middle of its second");
        assert_eq!(reported_at_ms(stamp, second + 200), second + 100, "at once: no later than now");
        assert_eq!(reported_at_ms(stamp, second - 5), second - 5, "Twilio's clock ahead of ours");
        assert_eq!(reported_at_ms(Some("yesterday"), 7), 7);
        assert_eq!(reported_at_ms(None, 7), 7);
    }

    #[test]
    fn index_positions_read_back() {
        let key = started_key(1_700_000_000_123, &sid());
        assert_eq!(parse_started_key(&key), Some((1_700_000_000_123, sid())));
        for bad in [
            "",
            "1#CA00000000000000000000000000000001",
            "000000000000001#CA1",
            "00000000000000x#CA00000000000000000000000000000001",
        ] {
            assert_eq!(parse_started_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_call_without_its_beginning_is_not_a_record_yet() {
        assert_eq!(CallRecord::fold(&sid(), &[LedgerEvent::Ended { at_ms: 5, run: "CF1".into() }], 0), None);
    }

    #[test]
    fn outcomes_of_calls_nobody_answered() {
        let ended = LedgerEvent::Ended { at_ms: 31_000, run: "CF1".into() };
        let abandoned = CallRecord::fold(&sid(), &[began(1_000), ended.clone()], 0).unwrap();
        assert_eq!(
            (abandoned.outcome, abandoned.waited_ms, abandoned.talked_ms),
            (CallOutcome::Abandoned, Some(30_000), None)
        );
        let offered = LedgerEvent::VoicemailOffered { at_ms: 2_000, nobody: true };
        let nobody = CallRecord::fold(&sid(), &[began(1_000), offered.clone(), ended.clone()], 0).unwrap();
        assert_eq!(nobody.outcome, CallOutcome::NoAgent);
        let message = LedgerEvent::Voicemail {
            at_ms: 20_000,
            recording: "RE1".into(),
            ticket: "01J0000000000000000000000A".into(),
        };
        let voicemail = CallRecord::fold(&sid(), &[began(1_000), offered, message, ended], 0).unwrap();
        assert_eq!(voicemail.outcome, CallOutcome::Voicemail);
        let closed = CallRecord::fold(&sid(), &[began(1_000), LedgerEvent::AfterHours { at_ms: 1_000 }], 0).unwrap();
        assert_eq!(closed.outcome, CallOutcome::AfterHours);
        assert_eq!(CallRecord::fold(&sid(), &[began(1_000)], 0).unwrap().outcome, CallOutcome::InProgress);
        // Quiet after an offer to leave a message: in progress for a while, then hung up.
        let offered = LedgerEvent::VoicemailOffered { at_ms: 4_000, nobody: true };
        let quiet = [began(1_000), offered.clone()];
        assert_eq!(CallRecord::fold(&sid(), &quiet, 303_999).unwrap().outcome, CallOutcome::InProgress);
        let gone = CallRecord::fold(&sid(), &quiet, 304_000).unwrap();
        assert_eq!((gone.outcome, gone.ended_ms, gone.waited_ms), (CallOutcome::NoAgent, Some(4_000), Some(3_000)));
        let stayed = LedgerEvent::StayedInLine { at_ms: 9_000, offered_at: 4 };
        let back = CallRecord::fold(&sid(), &[began(1_000), offered, stayed], 400_000).unwrap();
        assert_eq!(back.outcome, CallOutcome::InProgress);
    }

    #[test]
    fn an_agents_call_to_a_customer() {
        let began = LedgerEvent::Began {
            at_ms: 1_000,
            channel: Channel::Agent,
            caller: "+15551230000".into(),
            party: Some("+15551230000".into()),
            day: "2026-12-03".into(),
            agent: Some("agent1".into()),
        };
        let done = LedgerEvent::Dialed {
            at_ms: 50_000,
            agent: "agent1".into(),
            status: "completed".into(),
            seconds: Some(42),
        };
        let record = CallRecord::fold(&sid(), &[done, began.clone()], 0).unwrap();
        assert_eq!((record.outcome, record.talked_ms), (CallOutcome::Answered, Some(42_000)));
        assert_eq!(record.agents, [AgentRole { agent: "agent1".into(), role: "called" }]);
        let busy = LedgerEvent::Dialed { at_ms: 9_000, agent: "agent1".into(), status: "busy".into(), seconds: None };
        assert_eq!(CallRecord::fold(&sid(), &[began, busy], 0).unwrap().outcome, CallOutcome::Failed);
    }
}
