use super::{AgentId, CallSid};

/// Call records live at most this long; DynamoDB's TTL removes them (late), reads ignore them
/// as soon as they expire.
pub const CALL_RECORD_TTL_SECONDS: i64 = 12 * 3600;

/// A support conference, named after the CallSid of the customer's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub id: CallSid,
    /// The agent dialed when the customer arrived.
    pub first_agent: AgentId,
    /// The first-responder chain: the agents rung one after another until one answers, in
    /// order, `first_agent` first. The last one is ringing now, or answered.
    pub tried: Vec<AgentId>,
    /// The agents who answered and joined, sorted. The chain goes on only while it is empty.
    pub joined: Vec<AgentId>,
    /// Every call Warmline placed to an agent for this conference, sorted, so that a call that
    /// still rings can be canceled when the conference ends.
    pub agent_calls: Vec<CallSid>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the chain last moved on (the record was created, or the next agent was rung). An
    /// agent rings for a bounded time, so a chain that has not moved for much longer, with
    /// nobody joined, has lost the report that would have moved it.
    pub chain_moved_at: i64,
    /// Unique to the webhook delivery that created the record. When the reply to that write is
    /// lost and the SDK sends it again, the retry finds this value and knows the record as its
    /// own, rather than mistaking it for the trace of another delivery.
    pub delivery: String,
}

impl Conference {
    /// A conference whose first agent is about to be dialed, created by a delivery of its own.
    pub fn new(id: CallSid, first_agent: AgentId, now: i64) -> Self {
        Self {
            id,
            tried: vec![first_agent.clone()],
            first_agent,
            joined: Vec::new(),
            agent_calls: Vec::new(),
            created_at: now,
            expires_at: now + CALL_RECORD_TTL_SECONDS,
            chain_moved_at: now,
            delivery: delivery_nonce(),
        }
    }
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
