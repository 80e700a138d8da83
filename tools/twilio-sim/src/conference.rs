//! Conferences with Twilio's rules:
//! - named rooms, one live conference per name; a name can be reused once its conference ended;
//! - a conference starts when it has two participants and at least one of them has
//!   `startConferenceOnEnter` (a moderator); until then everyone hears the wait music;
//! - it ends when a participant with `endConferenceOnExit` leaves, when the last participant
//!   leaves, or through the REST API; everyone still in it is disconnected, and their calls go on
//!   with the TwiML after `<Dial>` (usually nothing, so they hang up).

use std::time::Duration;

use time::OffsetDateTime;

use crate::model::{Callback, ConferenceStatus, Signal, new_sid};
use crate::state::{ConferenceRecord, Participant, Sim, State};
use crate::timeline::Event;
use crate::twiml::ConferenceOptions;

pub(crate) struct Joined {
    /// Not started yet: the participant hears the wait music.
    pub waiting: bool,
}

impl Sim {
    pub(crate) fn join_conference(
        &self,
        call_sid: &str,
        party: &str,
        options: &ConferenceOptions,
        label: Option<String>,
    ) -> Joined {
        let mut state = self.state();
        let index = match state
            .conferences
            .iter()
            .position(|c| c.name == options.name && c.status != ConferenceStatus::Completed)
        {
            Some(index) => index,
            None => {
                let callback = options.status_callback.as_ref().map(|url| Callback {
                    url: url.clone(),
                    method: options.status_callback_method,
                    events: options.status_callback_events.clone(),
                });
                state.conferences.push(ConferenceRecord {
                    sid: new_sid("CF"),
                    name: options.name.clone(),
                    status: ConferenceStatus::Init,
                    participants: Vec::new(),
                    history: Vec::new(),
                    created_at: OffsetDateTime::now_utc(),
                    ended_reason: None,
                    callback,
                    callback_sequence: 0,
                });
                state.conferences.len() - 1
            }
        };
        let participant = Participant {
            call_sid: call_sid.to_owned(),
            party: party.to_owned(),
            label,
            start_conference_on_enter: options.start_conference_on_enter,
            end_conference_on_exit: options.end_conference_on_exit,
            muted: options.muted,
            hold: false,
        };
        let conference = &mut state.conferences[index];
        conference.participants.push(participant.clone());
        conference.history.push(party.to_owned());
        let starts = conference.status == ConferenceStatus::Init
            && conference.participants.len() >= 2
            && conference.participants.iter().any(|p| p.start_conference_on_enter);
        let waiting = conference.status == ConferenceStatus::Init && !starts;
        if starts {
            conference.status = ConferenceStatus::InProgress;
        }
        let conference_sid = conference.sid.clone();
        let name = conference.name.clone();
        let others: Vec<String> =
            conference.participants.iter().filter(|p| p.call_sid != call_sid).map(|p| p.call_sid.clone()).collect();
        let talking: Vec<String> = conference.participants.iter().map(|p| p.party.clone()).collect();
        // Everyone in a started conference with someone else in it talks now.
        let in_talk: Vec<String> = if conference.status == ConferenceStatus::InProgress && talking.len() >= 2 {
            conference.participants.iter().map(|p| p.call_sid.clone()).collect()
        } else {
            Vec::new()
        };
        if let Some(call) = state.calls.get_mut(call_sid) {
            call.conference = Some(conference_sid.clone());
        }
        let hang_ups = first_talks(&mut state, &in_talk);
        drop(state);
        for (sid, party, after) in hang_ups {
            self.hang_up_after(&sid, &party, after);
        }

        // Callbacks are queued before the timeline shows the change, so that whatever a test
        // does on seeing it comes after them.
        self.conference_event(&conference_sid, "join", participant_params(&participant));
        if starts {
            self.conference_event(&conference_sid, "start", Vec::new());
        }
        self.record(
            Some(call_sid),
            Some(party),
            Event::ConferenceJoined {
                conference: name.clone(),
                start_conference_on_enter: options.start_conference_on_enter,
                end_conference_on_exit: options.end_conference_on_exit,
                waiting,
            },
        );
        if starts {
            self.record(None, None, Event::ConferenceStarted { conference: name, participants: talking });
            for other in others {
                self.send(&other, Signal::ConferenceStarted);
            }
        }
        Joined { waiting }
    }

    /// The participant on this call leaves (hung up, or redirected elsewhere).
    pub(crate) fn leave_conference(&self, call_sid: &str, reason: &str) {
        let mut state = self.state();
        let Some((index, participant)) = detach(&mut state, call_sid) else {
            return;
        };
        let conference = &state.conferences[index];
        let (conference_sid, name) = (conference.sid.clone(), conference.name.clone());
        let ends = if participant.end_conference_on_exit {
            Some(format!("{} left, with endConferenceOnExit", participant.party))
        } else if conference.participants.is_empty() {
            Some("the last participant left".to_owned())
        } else {
            None
        };
        drop(state);
        self.conference_event(&conference_sid, "leave", participant_params(&participant));
        self.record(
            Some(call_sid),
            Some(&participant.party),
            Event::ConferenceLeft { conference: name, reason: reason.to_owned() },
        );
        if let Some(reason) = ends {
            self.end_conference(&conference_sid, &reason);
        }
    }

    /// Ends a conference and disconnects everyone still in it.
    pub(crate) fn end_conference(&self, conference_sid: &str, reason: &str) {
        let mut state = self.state();
        let Some(conference) =
            state.conferences.iter_mut().find(|c| c.sid == conference_sid && c.status != ConferenceStatus::Completed)
        else {
            return;
        };
        conference.status = ConferenceStatus::Completed;
        conference.ended_reason = Some(reason.to_owned());
        let name = conference.name.clone();
        let remaining = std::mem::take(&mut conference.participants);
        for participant in &remaining {
            if let Some(call) = state.calls.get_mut(&participant.call_sid) {
                call.conference = None;
            }
        }
        drop(state);
        self.conference_event(conference_sid, "end", vec![("Reason".into(), reason.to_owned())]);
        self.flush_callbacks(conference_sid);
        self.record(None, None, Event::ConferenceEnded { conference: name.clone(), reason: reason.to_owned() });
        for participant in &remaining {
            self.record(
                Some(&participant.call_sid),
                Some(&participant.party),
                Event::ConferenceLeft { conference: name.clone(), reason: "the conference ended".into() },
            );
            self.send(&participant.call_sid, Signal::RemovedFromConference);
        }
    }

    /// The REST API removes a participant: they leave the conference, and their call goes on
    /// with the TwiML after `<Dial>`.
    pub(crate) fn remove_participant(&self, conference_sid: &str, call_sid: &str) -> bool {
        let in_it = self
            .state()
            .conferences
            .iter()
            .any(|c| c.sid == conference_sid && c.participants.iter().any(|p| p.call_sid == call_sid));
        if !in_it {
            return false;
        }
        self.leave_conference(call_sid, "removed through the REST API");
        self.send(call_sid, Signal::RemovedFromConference);
        true
    }
}

/// The calls among `talking` scripted to hang up after their first talk that have not talked
/// before, marked as having talked: each with its party and how long until it hangs up.
fn first_talks(state: &mut State, talking: &[String]) -> Vec<(String, String, Duration)> {
    let mut hang_ups = Vec::new();
    for sid in talking {
        if let Some(call) = state.calls.get_mut(sid)
            && !call.talked
            && let Some(after) = call.hangup_after_talking
        {
            call.talked = true;
            hang_ups.push((sid.clone(), call.party.clone(), after));
        }
    }
    hang_ups
}

fn detach(state: &mut State, call_sid: &str) -> Option<(usize, Participant)> {
    let index = state.conferences.iter().position(|c| {
        c.status != ConferenceStatus::Completed && c.participants.iter().any(|p| p.call_sid == call_sid)
    })?;
    let conference = &mut state.conferences[index];
    let position = conference.participants.iter().position(|p| p.call_sid == call_sid)?;
    let participant = conference.participants.remove(position);
    if let Some(call) = state.calls.get_mut(call_sid) {
        call.conference = None;
    }
    Some((index, participant))
}

pub(crate) fn participant_params(participant: &Participant) -> Vec<(String, String)> {
    vec![
        ("CallSid".into(), participant.call_sid.clone()),
        ("Muted".into(), participant.muted.to_string()),
        ("Hold".into(), participant.hold.to_string()),
        ("Coaching".into(), "false".into()),
        ("EndConferenceOnExit".into(), participant.end_conference_on_exit.to_string()),
        ("StartConferenceOnEnter".into(), participant.start_conference_on_enter.to_string()),
    ]
}
