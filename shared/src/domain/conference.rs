use super::{AgentId, CallSid, FieldErrors, MAX_NAME_CHARS, PhoneNumber, TicketId, optional_text};

/// Call records live at most this long; DynamoDB's TTL removes them (late), reads ignore them
/// as soon as they expire.
pub const CALL_RECORD_TTL_SECONDS: i64 = 12 * 3600;

/// Who is calling: a phone number, or a browser's customer identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Phone(PhoneNumber),
    Browser(String),
    /// A number Twilio could not tell (withheld, or not E.164).
    Unknown,
}

impl Caller {
    /// From a webhook's `From`: `client:<identity>` for a browser, else a phone number.
    pub fn from_twilio(from: Option<&str>) -> Self {
        match from {
            Some(from) if from.starts_with("client:") => Self::Browser(from.trim_start_matches("client:").to_owned()),
            Some(from) => PhoneNumber::parse(from).map_or(Self::Unknown, Self::Phone),
            None => Self::Unknown,
        }
    }

    /// As stored: the E.164 number, `client:<identity>`, or empty.
    pub fn stored(&self) -> String {
        match self {
            Self::Phone(number) => number.to_string(),
            Self::Browser(identity) => format!("client:{identity}"),
            Self::Unknown => String::new(),
        }
    }
}

/// What a caller on the customer page may say before calling, passed with their call as the
/// Voice SDK's parameters (`callerName`, `ticketId`): their name, and the ticket they call about.
/// Checked like a ticket's fields; a claim, not proof (anyone filing for a number learns the id
/// of its open ticket).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerIntro {
    pub name: Option<String>,
    pub ticket: Option<TicketId>,
}

impl CallerIntro {
    /// The parameters as given; what is wrong with any, by parameter, beside what was fine.
    pub fn parse(name: Option<&str>, ticket: Option<&str>) -> (Self, FieldErrors) {
        let mut errors = FieldErrors::new();
        let name = optional_text(name, MAX_NAME_CHARS, false)
            .map_err(|problem| errors.insert("callerName".into(), problem))
            .ok()
            .flatten();
        let ticket = match ticket.map(str::trim).filter(|id| !id.is_empty()) {
            None => None,
            Some(id) => {
                let parsed = TicketId::parse(id);
                if parsed.is_none() {
                    errors.insert("ticketId".into(), "is not a ticket id".into());
                }
                parsed
            }
        };
        (Self { name, ticket }, errors)
    }
}

/// Where a caller stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerState {
    /// In line, on hold music, in arrival order.
    Waiting,
    /// Offered to an agent whose browser rings (`ringing`).
    Ringing,
    /// With an agent.
    Answered,
    /// Out of the line: offered to leave a message, or leaving one.
    Voicemail,
    /// Called by an agent (`dialed_by`), whose phone rings: the agent waits in the conference.
    Dialing,
}

impl CallerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Voicemail => "voicemail",
            Self::Dialing => "dialing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting" => Some(Self::Waiting),
            "ringing" => Some(Self::Ringing),
            "answered" => Some(Self::Answered),
            "voicemail" => Some(Self::Voicemail),
            "dialing" => Some(Self::Dialing),
            _ => None,
        }
    }
}

/// A support caller: their place in the queue and the conference they wait in, named after the
/// CallSid of their call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub id: CallSid,
    pub caller: Caller,
    /// What a browser caller said about themselves before calling.
    pub intro: CallerIntro,
    /// The agent who called this customer (a ticket's number, from the dashboard); `None` for a
    /// customer who called support.
    pub dialed_by: Option<AgentId>,
    /// When they arrived, in milliseconds: their place in the queue, kept when they go back to
    /// it (an agent who let them down, a message they chose not to leave).
    pub arrived_at_ms: i64,
    pub state: CallerState,
    /// Agents whose browsers ring for this caller now, sorted: the one they were offered, or a
    /// colleague dialed in.
    pub ringing: Vec<AgentId>,
    /// When the last agent started ringing: a ring that outlasts Twilio's timeout by far has
    /// lost the report that would have ended it.
    pub ringing_since: Option<i64>,
    /// Whether Twilio took the call of the last ring: one it never did (the work placing it was
    /// cut short) rings nobody, and is ended soon.
    pub ring_placed: bool,
    /// Agents in the call now, sorted.
    pub joined: Vec<AgentId>,
    /// When an agent last answered them from the line: where their wait ended (a colleague
    /// dialed into the call later does not move it).
    pub answered_at: Option<i64>,
    /// Since when the customer is on hold: they hear hold music and nobody hears them.
    pub held_since: Option<i64>,
    /// A consultation or cold transfer under way.
    pub transfer: Option<Transfer>,
    /// Every call Warmline placed to an agent for this caller, and to whom, in the order placed:
    /// a call that still rings is canceled when the caller leaves, a call that leaves tells whose
    /// it was, and a report about an agent's earlier call is told from one about their ring now.
    pub agent_calls: Vec<(CallSid, AgentId)>,
    /// Twilio's id (`CF…`) of the conference the caller is in now.
    pub conference_sid: Option<String>,
    /// A conference the caller is leaving on purpose (back to the queue, or to leave a message):
    /// its end is not the end of the call.
    pub moving_from: Option<String>,
    /// When they were last told their place in line.
    pub announced_at: Option<i64>,
    /// When they were last offered to leave a message.
    pub voicemail_offered_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Unique to the webhook delivery that created the record. When the reply to that write is
    /// lost and the SDK sends it again, the retry finds this value and knows the record as its
    /// own, rather than mistaking it for the trace of another delivery.
    pub delivery: String,
    /// The stored version this was read at (0: not stored yet); a write applies only over it.
    pub version: u64,
}

impl Conference {
    /// A caller who has just arrived and waits in line, recorded by a delivery of its own.
    pub fn arriving(id: CallSid, caller: Caller, now_ms: i64) -> Self {
        let now = now_ms.div_euclid(1000);
        Self {
            id,
            caller,
            intro: CallerIntro::default(),
            dialed_by: None,
            arrived_at_ms: now_ms,
            state: CallerState::Waiting,
            ringing: Vec::new(),
            ringing_since: None,
            ring_placed: false,
            joined: Vec::new(),
            answered_at: None,
            held_since: None,
            transfer: None,
            agent_calls: Vec::new(),
            conference_sid: None,
            moving_from: None,
            announced_at: None,
            voicemail_offered_at: None,
            created_at: now,
            expires_at: now + CALL_RECORD_TTL_SECONDS,
            delivery: delivery_nonce(),
            version: 0,
        }
    }

    /// The customer `agent` is calling from the dashboard, on their own call `agent_call`: the
    /// agent is in the conference already, the customer's phone rings.
    pub fn dialed(id: CallSid, number: PhoneNumber, agent: &AgentId, agent_call: &CallSid, now_ms: i64) -> Self {
        let mut record = Self::arriving(id, Caller::Phone(number), now_ms);
        record.state = CallerState::Dialing;
        record.dialed_by = Some(agent.clone());
        record.joined = vec![agent.clone()];
        record.agent_calls = vec![(agent_call.clone(), agent.clone())];
        record
    }

    /// The customer an agent called answered: they are in the call with that agent.
    pub fn picked_up(&mut self, now: i64) {
        if self.state == CallerState::Dialing {
            self.state = CallerState::Answered;
            self.answered_at = Some(now);
        }
    }

    /// Offered to `agent`, whose browser now rings.
    pub fn offer_to(&mut self, agent: &AgentId, now: i64) {
        self.state = CallerState::Ringing;
        self.ring(agent, now);
    }

    /// `agent` rings for this caller: the one offered, or a colleague dialed in.
    pub fn ring(&mut self, agent: &AgentId, now: i64) {
        insert_sorted(&mut self.ringing, agent.clone());
        self.ringing_since = Some(now);
        self.ring_placed = false;
    }

    /// Remembers the call placed to `agent`.
    pub fn placed(&mut self, call: &CallSid, agent: &AgentId) {
        if !self.agent_calls.iter().any(|(known, _)| known == call) {
            self.agent_calls.push((call.clone(), agent.clone()));
        }
        self.ring_placed = true;
    }

    /// The last call placed to `agent` for this caller.
    pub fn latest_call_to(&self, agent: &AgentId) -> Option<&CallSid> {
        self.agent_calls.iter().rev().find(|(_, to)| to == agent).map(|(call, _)| call)
    }

    /// The agent whose call this is.
    pub fn agent_on(&self, call: &CallSid) -> Option<&AgentId> {
        self.agent_calls.iter().find(|(known, _)| known == call).map(|(_, agent)| agent)
    }

    /// `agent` stopped ringing without answering; a caller whose only ring that was is back in
    /// line, in their place. `false` when they were not ringing (a repeated report).
    pub fn ring_ended(&mut self, agent: &AgentId) -> bool {
        let Some(position) = self.ringing.iter().position(|ringing| ringing == agent) else { return false };
        self.ringing.remove(position);
        if self.ringing.is_empty() {
            self.ringing_since = None;
            if self.state == CallerState::Ringing {
                self.state = CallerState::Waiting;
            }
        }
        true
    }

    /// `agent`'s ring for a transfer ended without an answer, as `outcome` says.
    pub fn colleague_done(&mut self, agent: &AgentId, outcome: ColleagueOutcome, now: i64) {
        if let Some(transfer) = &mut self.transfer
            && transfer.to == *agent
            && transfer.outcome.is_none()
        {
            transfer.outcome = Some((outcome, now));
        }
    }

    /// `agent` answered and is in the call.
    pub fn answered(&mut self, agent: &AgentId, now: i64) {
        if self.state == CallerState::Ringing {
            self.answered_at = Some(now);
        }
        self.ring_ended(agent);
        insert_sorted(&mut self.joined, agent.clone());
        // A customer an agent is calling is answered when they pick up, not when an agent joins.
        if self.state != CallerState::Dialing {
            self.state = CallerState::Answered;
        }
    }

    /// `agent` left the call at `now`. `true` when that leaves the caller with nobody, in the
    /// call or ringing: they must not be left alone in a silent conference.
    pub fn left(&mut self, agent: &AgentId, now: i64) -> bool {
        self.joined.retain(|joined| joined != agent);
        if let Some(transfer) = &mut self.transfer
            && transfer.to == *agent
        {
            transfer.outcome = Some((ColleagueOutcome::Left, now));
        }
        self.alone()
    }

    /// Back in line, in their place, out of the conference they are in now.
    pub fn requeue(&mut self) {
        self.state = CallerState::Waiting;
        self.moving_from = self.conference_sid.clone();
        // Hold belongs to the conference they leave.
        self.held_since = None;
        self.transfer = None;
    }

    /// Whether they are with an agent's call but nobody is in it or ringing for it: they must
    /// not be left alone in a silent conference.
    pub fn alone(&self) -> bool {
        self.state == CallerState::Answered && self.joined.is_empty() && self.ringing.is_empty()
    }

    /// Out of the line and out of the conference they are in now, to be offered to leave a
    /// message (they keep their place should they stay).
    pub fn offer_voicemail(&mut self, now: i64) {
        self.state = CallerState::Voicemail;
        self.moving_from = self.conference_sid.clone();
        self.voicemail_offered_at = Some(now);
    }

    /// Back in line, in their place, after leaving no message.
    pub fn back_in_line(&mut self) {
        self.state = CallerState::Waiting;
    }

    /// The caller's key in the queue: arrival order, then the CallSid to tell apart two callers
    /// of the same millisecond.
    pub fn queue_key(&self) -> String {
        queue_key(self.arrived_at_ms, &self.id)
    }
}

fn insert_sorted<T: Ord>(items: &mut Vec<T>, item: T) {
    if let Err(position) = items.binary_search(&item) {
        items.insert(position, item);
    }
}

/// What an agent in a support call asks for from the dashboard (`POST /calls/{id}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAction {
    Hold,
    Resume,
    Consult,
    Complete,
    Cancel,
    /// Cold transfer.
    Transfer,
}

impl CallAction {
    pub const ALL: [Self; 6] = [Self::Hold, Self::Resume, Self::Consult, Self::Complete, Self::Cancel, Self::Transfer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Resume => "resume",
            Self::Consult => "consult",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
            Self::Transfer => "transfer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

/// What an agent in the call is doing with a colleague: `from` put the customer on hold and
/// dialed `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub kind: TransferKind,
    pub from: AgentId,
    pub to: AgentId,
    pub since: i64,
    /// How the colleague's part ended, if it did, and when.
    pub outcome: Option<(ColleagueOutcome, i64)>,
}

impl Transfer {
    /// The colleague is still ringing or in the call.
    pub fn colleague_engaged(&self) -> bool {
        self.outcome.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// The agents talk privately while the customer holds; then the first agent completes
    /// (leaves them together) or cancels (takes the customer back).
    Consult,
    /// The first agent left at once; the customer holds until the colleague answers, or goes
    /// back to the front of the line.
    Cold,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consult => "consult",
            Self::Cold => "cold",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "consult" => Some(Self::Consult),
            "cold" => Some(Self::Cold),
            _ => None,
        }
    }
}

/// How a colleague dialed in for a transfer ended their part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColleagueOutcome {
    /// Let it ring out.
    NoAnswer,
    /// Rejected it, or Twilio could not reach them.
    Declined,
    /// Their ring was canceled: by the first agent, or because the call ended or they may no
    /// longer sign in.
    Canceled,
    /// Twilio could not place the call that rings them.
    Unreached,
    /// Answered, then left.
    Left,
}

impl ColleagueOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAnswer => "no-answer",
            Self::Declined => "declined",
            Self::Canceled => "canceled",
            Self::Unreached => "unreached",
            Self::Left => "left",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::NoAnswer, Self::Declined, Self::Canceled, Self::Unreached, Self::Left]
            .into_iter()
            .find(|o| o.as_str() == text)
    }

    /// From the `CallStatus` of a call that was not taken.
    pub fn of_call_status(status: &str) -> Self {
        match status {
            "no-answer" => Self::NoAnswer,
            "canceled" => Self::Canceled,
            _ => Self::Declined,
        }
    }
}

pub fn queue_key(arrived_at_ms: i64, id: &CallSid) -> String {
    format!("{arrived_at_ms:013}#{id}")
}

/// A value that no other delivery's write carries: 128 random bits.
fn delivery_nonce() -> String {
    super::random_hex(16).unwrap_or_else(|_| {
        // Never seen on Lambda; the time and a per-process counter still tell deliveries apart.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("t{nanos:x}-{:x}-{count:x}", std::process::id())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_key_sorts_by_arrival() {
        let a = CallSid::parse(&format!("CA{}", "f".repeat(32))).unwrap();
        let b = CallSid::parse(&format!("CA{}", "0".repeat(32))).unwrap();
        assert!(queue_key(999, &a) < queue_key(1000, &b));
        assert!(queue_key(1000, &b) < queue_key(1000, &a));
    }

    #[test]
    fn tells_callers_apart() {
        assert_eq!(Caller::from_twilio(Some("client:customer_ab")), Caller::Browser("customer_ab".into()));
        assert_eq!(Caller::from_twilio(Some("+15551234567")).stored(), "+15551234567");
        assert_eq!(Caller::from_twilio(Some("anonymous")), Caller::Unknown);
        assert_eq!(Caller::from_twilio(None).stored(), "");
    }
}
