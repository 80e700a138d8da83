//! The Calls table: the live state of callers and agents. One table, generic keys:
//!
//! | pk            | sk      | what                                                             |
//! |---------------|---------|------------------------------------------------------------------|
//! | `CONF#<sid>`  | `CONF`  | a caller (`Conference`): who, arrival, state, agents ringing and |
//! |               |         | joined, the agents' calls, Twilio's conference, `delivery`       |
//! | `AGENT#<id>`  | `STATE` | an agent's presence and call (`AgentState`)                      |
//! | `LIMIT#<key>` | `LIMIT` | a customer's or source address's browser-call slots (`CallSlots`):|
//! |               |         | `calls` (the calls holding one, each until when), `address`      |
//! | `TOKEN#<id>`  | `TOKEN` | an agent token (`AgentToken`): `agent`, `session_epoch`          |
//! | `STATS#<day>` | `STATS` | a day's outcomes (`DayCounts`), counters added to atomically:    |
//! |               |         | `answered`, `answered_wait_ms`, `abandoned`, `voicemails`        |
//! | `COUNTED#<outcome>#<sid>` | `COUNTED` | the mark that a call's outcome is counted    |
//!
//! A day's counts and the marks live `DAY_COUNTS_TTL_SECONDS`; the others' own expiry.
//!
//! Every item carries `version` (a write applies only over the version it read) and
//! `expires_at` (epoch seconds), the table's TTL attribute. Two sparse indexes serve the router:
//! `waiting` (`queue` = `waiting`, `queue_key` = arrival) holds the callers in line, and
//! `available` (`pool` = `available`, `pool_key` = idle since) the agents free to take a call, and
//! `online` (`team` = `agents`, sorted by `lease_until`) every agent whose presence still holds.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem, Update,
};

use super::{Item, is_condition_failure, n, number_attr, s, string_attr, unavailable};
use crate::domain::{
    AgentId, AgentState, AgentToken, Availability, CallSid, CallSlots, Caller, CallerIntro, CallerState,
    ColleagueOutcome, Conference, DayCounts, Line, Outcome, PhoneNumber, SlotHolder, SourceAddress, TicketId, Transfer,
    TransferKind,
};
use crate::store::{CallStore, StoreError, Write};

const CALLER_SK: &str = "CONF";
const AGENT_SK: &str = "STATE";
const SLOTS_SK: &str = "LIMIT";
const TOKEN_SK: &str = "TOKEN";
const STATS_SK: &str = "STATS";
const COUNTED_SK: &str = "COUNTED";
const WAITING_INDEX: &str = "waiting";
const AVAILABLE_INDEX: &str = "available";
const ONLINE_INDEX: &str = "online";
const TEAM: &str = "agents";
/// Over the version read, a record expired at `:now` counting as none.
const AT_VERSION: &str = "version = :version AND expires_at > :now";
const NOT_THERE: &str = "attribute_not_exists(pk) OR expires_at <= :now";

#[derive(Debug, Clone)]
pub struct DynamoCallStore {
    client: Client,
    table: String,
}

impl DynamoCallStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn caller_pk(id: &CallSid) -> String {
    format!("CONF#{id}")
}

fn agent_pk(agent: &AgentId) -> String {
    format!("AGENT#{agent}")
}

fn slots_pk(holder: &SlotHolder) -> String {
    format!("LIMIT#{}", holder.key())
}

fn token_pk(id: &str) -> String {
    format!("TOKEN#{id}")
}

fn stats_pk(day: &str) -> String {
    format!("STATS#{day}")
}

fn counted_pk(outcome: Outcome, call: &CallSid) -> String {
    format!("COUNTED#{}#{call}", outcome.as_str())
}

/// Whether a transaction was refused by one of its conditions, as opposed to failing.
fn refused_by_condition<R>(err: &SdkError<TransactWriteItemsError, R>) -> bool {
    matches!(
        err,
        SdkError::ServiceError(err) if matches!(
            err.err(),
            TransactWriteItemsError::TransactionCanceledException(canceled)
                if canceled.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
        )
    )
}

/// Whether a transaction lost to another one writing the same item at that moment.
fn lost_to_another<R>(err: &SdkError<TransactWriteItemsError, R>) -> bool {
    matches!(
        err,
        SdkError::ServiceError(err) if matches!(
            err.err(),
            TransactWriteItemsError::TransactionCanceledException(canceled)
                if canceled.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict"))
        )
    )
}

/// How often a count that met another one on the day's item is tried again.
const COUNT_ATTEMPTS: usize = 3;

fn optional_number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    if item.contains_key(name) { number_attr(item, name).map(Some) } else { Ok(None) }
}

fn optional_string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn version(item: &Item) -> Result<u64, StoreError> {
    u64::try_from(number_attr(item, "version")?).map_err(|_| StoreError::Corrupt("version is negative".into()))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} holds something unexpected"))
}

fn agents(item: &Item, name: &str) -> Result<Vec<AgentId>, StoreError> {
    let mut agents = match item.get(name) {
        None => Vec::new(),
        Some(AttributeValue::Ss(ids)) => {
            ids.iter().map(|id| AgentId::parse(id).map_err(|_| corrupt(name))).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(corrupt(name)),
    };
    agents.sort();
    Ok(agents)
}

fn agent_set(agents: &[AgentId]) -> Option<AttributeValue> {
    // DynamoDB has no empty sets: an empty one is an absent attribute.
    (!agents.is_empty()).then(|| AttributeValue::Ss(agents.iter().map(ToString::to_string).collect()))
}

fn caller_item(caller: &Conference, version: u64) -> Item {
    let mut item: Item = [
        ("pk".to_owned(), s(caller_pk(&caller.id))),
        ("sk".to_owned(), s(CALLER_SK)),
        ("caller".to_owned(), s(caller.caller.stored())),
        ("arrived_at_ms".to_owned(), n(caller.arrived_at_ms)),
        ("state".to_owned(), s(caller.state.as_str())),
        ("created_at".to_owned(), n(caller.created_at)),
        ("expires_at".to_owned(), n(caller.expires_at)),
        ("delivery".to_owned(), s(caller.delivery.as_str())),
        ("version".to_owned(), AttributeValue::N(version.to_string())),
        ("ring_placed".to_owned(), AttributeValue::Bool(caller.ring_placed)),
    ]
    .into();
    if caller.state == CallerState::Waiting {
        item.insert("queue".to_owned(), s(WAITING_INDEX));
        item.insert("queue_key".to_owned(), s(caller.queue_key()));
    }
    for (name, agents) in [("ringing", &caller.ringing), ("joined", &caller.joined)] {
        if let Some(set) = agent_set(agents) {
            item.insert(name.to_owned(), set);
        }
    }
    if !caller.agent_calls.is_empty() {
        // A list, in the order the calls were placed: the last to an agent is their ring now.
        let calls = caller
            .agent_calls
            .iter()
            .map(|(call, agent)| AttributeValue::L(vec![s(call.as_str()), s(agent.as_str())]))
            .collect();
        item.insert("agent_calls".to_owned(), AttributeValue::L(calls));
    }
    let optional = [
        ("ringing_since", caller.ringing_since.map(n)),
        ("answered_at", caller.answered_at.map(n)),
        ("held_since", caller.held_since.map(n)),
        ("caller_name", caller.intro.name.clone().map(s)),
        ("about_ticket", caller.intro.ticket.as_ref().map(|id| s(id.as_str()))),
        ("dialed_by", caller.dialed_by.as_ref().map(|agent| s(agent.as_str()))),
        ("announced_at", caller.announced_at.map(n)),
        ("voicemail_offered_at", caller.voicemail_offered_at.map(n)),
        ("conference_sid", caller.conference_sid.clone().map(s)),
        ("moving_from", caller.moving_from.clone().map(s)),
    ];
    item.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    if let Some(transfer) = &caller.transfer {
        let mut fields =
            vec![s(transfer.kind.as_str()), s(transfer.from.as_str()), s(transfer.to.as_str()), n(transfer.since)];
        if let Some((outcome, at)) = transfer.outcome {
            fields.extend([s(outcome.as_str()), n(at)]);
        }
        item.insert("transfer".to_owned(), AttributeValue::L(fields));
    }
    item
}

/// `[kind, from, to, since]`, then `[outcome, at]` once the colleague's part ended.
fn transfer_from_item(item: &Item) -> Result<Option<Transfer>, StoreError> {
    let Some(value) = item.get("transfer") else { return Ok(None) };
    let fields = value.as_l().map_err(|_| corrupt("transfer"))?;
    let text = |i: usize| fields.get(i).and_then(|v| v.as_s().ok()).map(String::as_str);
    let number = |i: usize| fields.get(i).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
    let agent = |i: usize| text(i).and_then(|a| AgentId::parse(a).ok()).ok_or_else(|| corrupt("transfer"));
    let outcome = match (text(4), number(5)) {
        (Some(outcome), Some(at)) => Some((ColleagueOutcome::parse(outcome).ok_or_else(|| corrupt("transfer"))?, at)),
        _ => None,
    };
    Ok(Some(Transfer {
        kind: text(0).and_then(TransferKind::parse).ok_or_else(|| corrupt("transfer"))?,
        from: agent(1)?,
        to: agent(2)?,
        since: number(3).ok_or_else(|| corrupt("transfer"))?,
        outcome,
    }))
}

fn caller_from_item(item: &Item) -> Result<Conference, StoreError> {
    let id = string_attr(item, "pk")?
        .strip_prefix("CONF#")
        .and_then(CallSid::parse)
        .ok_or_else(|| corrupt("a caller's pk"))?;
    let caller = match string_attr(item, "caller")? {
        "" => Caller::Unknown,
        browser if browser.starts_with("client:") => Caller::Browser(browser["client:".len()..].to_owned()),
        phone => Caller::Phone(PhoneNumber::parse(phone).map_err(|_| corrupt("caller"))?),
    };
    let agent_calls = match item.get("agent_calls") {
        None => Vec::new(),
        Some(AttributeValue::L(calls)) => calls
            .iter()
            .map(|pair| {
                let pair = pair.as_l().map_err(|_| corrupt("agent_calls"))?;
                let text = |n: usize| pair.get(n).and_then(|v| v.as_s().ok()).map(String::as_str);
                let call = text(0).and_then(CallSid::parse).ok_or_else(|| corrupt("agent_calls"))?;
                let agent = text(1).and_then(|a| AgentId::parse(a).ok()).ok_or_else(|| corrupt("agent_calls"))?;
                Ok((call, agent))
            })
            .collect::<Result<Vec<_>, StoreError>>()?,
        Some(_) => return Err(corrupt("agent_calls")),
    };
    Ok(Conference {
        id,
        caller,
        intro: CallerIntro {
            name: optional_string(item, "caller_name"),
            ticket: optional_string(item, "about_ticket").and_then(|id| TicketId::parse(&id)),
        },
        dialed_by: optional_string(item, "dialed_by")
            .map(|agent| AgentId::parse(&agent).map_err(|_| corrupt("dialed_by")))
            .transpose()?,
        arrived_at_ms: number_attr(item, "arrived_at_ms")?,
        state: CallerState::parse(string_attr(item, "state")?).ok_or_else(|| corrupt("state"))?,
        ringing: agents(item, "ringing")?,
        ringing_since: optional_number(item, "ringing_since")?,
        ring_placed: item.get("ring_placed").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true),
        joined: agents(item, "joined")?,
        answered_at: optional_number(item, "answered_at")?,
        held_since: optional_number(item, "held_since")?,
        transfer: transfer_from_item(item)?,
        agent_calls,
        conference_sid: optional_string(item, "conference_sid"),
        moving_from: optional_string(item, "moving_from"),
        announced_at: optional_number(item, "announced_at")?,
        voicemail_offered_at: optional_number(item, "voicemail_offered_at")?,
        created_at: number_attr(item, "created_at")?,
        expires_at: number_attr(item, "expires_at")?,
        delivery: optional_string(item, "delivery").unwrap_or_default(),
        version: version(item)?,
    })
}

fn agent_item(state: &AgentState, version: u64) -> Item {
    let mut item: Item = [
        ("pk".to_owned(), s(agent_pk(&state.agent))),
        ("sk".to_owned(), s(AGENT_SK)),
        ("availability".to_owned(), s(state.availability.as_str())),
        ("availability_since".to_owned(), n(state.availability_since)),
        ("lease_until".to_owned(), n(state.lease_until)),
        ("idle_since_ms".to_owned(), n(state.idle_since_ms)),
        ("expires_at".to_owned(), n(state.expires_at())),
        ("team".to_owned(), s(TEAM)),
        ("version".to_owned(), AttributeValue::N(version.to_string())),
    ]
    .into();
    if state.in_pool() {
        item.insert("pool".to_owned(), s(AVAILABLE_INDEX));
        item.insert("pool_key".to_owned(), s(state.pool_key()));
    }
    let optional = [
        ("ringing_for", state.ringing_for.as_ref().map(|c| s(c.as_str()))),
        ("in_call", state.in_call.as_ref().map(|c| s(c.as_str()))),
        ("busy_since", state.busy_since.map(n)),
        ("missed_at", state.missed_at.map(n)),
    ];
    item.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    item
}

fn agent_from_item(item: &Item) -> Result<AgentState, StoreError> {
    let agent = string_attr(item, "pk")?
        .strip_prefix("AGENT#")
        .and_then(|id| AgentId::parse(id).ok())
        .ok_or_else(|| corrupt("an agent's pk"))?;
    let call = |name: &str| -> Result<Option<CallSid>, StoreError> {
        optional_string(item, name).map(|sid| CallSid::parse(&sid).ok_or_else(|| corrupt(name))).transpose()
    };
    Ok(AgentState {
        agent,
        availability: Availability::parse(string_attr(item, "availability")?).ok_or_else(|| corrupt("availability"))?,
        availability_since: number_attr(item, "availability_since")?,
        lease_until: number_attr(item, "lease_until")?,
        idle_since_ms: number_attr(item, "idle_since_ms")?,
        ringing_for: call("ringing_for")?,
        in_call: call("in_call")?,
        busy_since: optional_number(item, "busy_since")?,
        missed_at: optional_number(item, "missed_at")?,
        version: version(item)?,
    })
}

fn slots_item(slots: &CallSlots, version: u64) -> Item {
    let mut item: Item = [
        ("pk".to_owned(), s(slots_pk(&slots.holder))),
        ("sk".to_owned(), s(SLOTS_SK)),
        ("expires_at".to_owned(), n(slots.expires_at)),
        ("version".to_owned(), AttributeValue::N(version.to_string())),
    ]
    .into();
    if !slots.calls.is_empty() {
        let calls =
            slots.calls.iter().map(|(call, until)| AttributeValue::L(vec![s(call.as_str()), n(*until)])).collect();
        item.insert("calls".to_owned(), AttributeValue::L(calls));
    }
    if let Some(address) = &slots.address {
        item.insert("address".to_owned(), s(address.as_str()));
    }
    item
}

fn slots_from_item(holder: &SlotHolder, item: &Item) -> Result<CallSlots, StoreError> {
    let calls = match item.get("calls") {
        None => Vec::new(),
        Some(AttributeValue::L(calls)) => calls
            .iter()
            .map(|pair| {
                let pair = pair.as_l().map_err(|_| corrupt("calls"))?;
                let call = pair.first().and_then(|v| v.as_s().ok()).and_then(|sid| CallSid::parse(sid));
                let until = pair.get(1).and_then(|v| v.as_n().ok()).and_then(|until| until.parse().ok());
                call.zip(until).ok_or_else(|| corrupt("calls"))
            })
            .collect::<Result<Vec<_>, StoreError>>()?,
        Some(_) => return Err(corrupt("calls")),
    };
    let address = optional_string(item, "address")
        .map(|address| SourceAddress::parse(address.trim_end_matches("/64")).ok_or_else(|| corrupt("address")))
        .transpose()?;
    Ok(CallSlots {
        holder: holder.clone(),
        address,
        calls,
        expires_at: number_attr(item, "expires_at")?,
        version: version(item)?,
    })
}

/// The key of the record a write is to, its next stored form (none when it goes), and the
/// version it was read at.
fn planned(write: &Write) -> (String, &'static str, Option<Item>, u64) {
    match write {
        Write::Caller(caller) => {
            (caller_pk(&caller.id), CALLER_SK, Some(caller_item(caller, caller.version + 1)), caller.version)
        }
        Write::ForgetCaller(caller) => (caller_pk(&caller.id), CALLER_SK, None, caller.version),
        Write::Agent(state) => {
            (agent_pk(&state.agent), AGENT_SK, Some(agent_item(state, state.version + 1)), state.version)
        }
        Write::Slots(slots) => {
            (slots_pk(&slots.holder), SLOTS_SK, Some(slots_item(slots, slots.version + 1)), slots.version)
        }
    }
}

fn condition(read_version: u64, now: i64) -> (&'static str, HashMap<String, AttributeValue>) {
    let mut values: HashMap<String, AttributeValue> = [(":now".to_owned(), n(now))].into();
    if read_version == 0 {
        (NOT_THERE, values)
    } else {
        values.insert(":version".to_owned(), AttributeValue::N(read_version.to_string()));
        (AT_VERSION, values)
    }
}

impl DynamoCallStore {
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    fn transact_item(&self, write: &Write, now: i64) -> Result<TransactWriteItem, StoreError> {
        let (pk, sk, item, read_version) = planned(write);
        let (expression, values) = condition(read_version, now);
        Ok(match item {
            Some(item) => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(expression)
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(unavailable)?,
                )
                .build(),
            None => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .condition_expression(expression)
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(unavailable)?,
                )
                .build(),
        })
    }

    async fn query_index(&self, index: &str, partition: (&str, &str), limit: u32) -> Result<Vec<Item>, StoreError> {
        let (key, value) = partition;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#key = :value")
            .expression_attribute_names("#key", key)
            .expression_attribute_values(":value", s(value))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.items.unwrap_or_default())
    }
}

/// Whether the record that refused a conditional put is the one `delivery` wrote.
fn written_by<R>(err: &SdkError<PutItemError, R>, delivery: &str) -> bool {
    let SdkError::ServiceError(failure) = err else { return false };
    let PutItemError::ConditionalCheckFailedException(refused) = failure.err() else { return false };
    refused.item().and_then(|item| item.get("delivery")).and_then(|v| v.as_s().ok()).is_some_and(|d| d == delivery)
}

#[async_trait]
impl CallStore for DynamoCallStore {
    async fn enqueue(&self, caller: &Conference) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(caller_item(caller, 1)))
            // An expired record that the TTL sweeper has not removed yet does not count.
            .condition_expression(NOT_THERE)
            .expression_attribute_values(":now", n(caller.created_at))
            // The SDK resends a write whose reply was lost; the record then in the way may be
            // this very write's, and only its `delivery` tells.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => {
                Ok(written_by(&err, &caller.delivery))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        let Some(item) = self.get(caller_pk(id), CALLER_SK).await? else { return Ok(None) };
        if number_attr(&item, "expires_at")? <= now {
            return Ok(None);
        }
        caller_from_item(&item).map(Some)
    }

    async fn agent_state(&self, agent: &AgentId, now: i64) -> Result<Option<AgentState>, StoreError> {
        let Some(item) = self.get(agent_pk(agent), AGENT_SK).await? else { return Ok(None) };
        if number_attr(&item, "expires_at")? <= now {
            return Ok(None);
        }
        agent_from_item(&item).map(Some)
    }

    async fn commit(&self, writes: &[Write], now: i64) -> Result<bool, StoreError> {
        let items = writes.iter().map(|write| self.transact_item(write, now)).collect::<Result<Vec<_>, _>>()?;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if refused_by_condition(&err) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn waiting(&self, limit: u32, now: i64) -> Result<Vec<Conference>, StoreError> {
        let items = self.query_index(WAITING_INDEX, ("queue", WAITING_INDEX), limit).await?;
        let mut callers = Vec::new();
        for item in &items {
            if number_attr(item, "expires_at")? > now {
                callers.push(caller_from_item(item)?);
            }
        }
        Ok(callers)
    }

    async fn ahead_of(&self, caller: &Conference) -> Result<u32, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(WAITING_INDEX)
            .key_condition_expression("#queue = :waiting AND queue_key < :mine")
            .expression_attribute_names("#queue", "queue")
            .expression_attribute_values(":waiting", s(WAITING_INDEX))
            .expression_attribute_values(":mine", s(caller.queue_key()))
            .select(Select::Count)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(u32::try_from(output.count).unwrap_or_default())
    }

    async fn online_agents(&self, now: i64) -> Result<Vec<AgentState>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ONLINE_INDEX)
            .key_condition_expression("team = :team AND lease_until > :now")
            .expression_attribute_values(":team", s(TEAM))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(unavailable)?;
        output.items().iter().map(agent_from_item).collect()
    }

    async fn available_agents(&self, limit: u32, now: i64) -> Result<Vec<AgentState>, StoreError> {
        let items = self.query_index(AVAILABLE_INDEX, ("pool", AVAILABLE_INDEX), limit).await?;
        let mut agents = Vec::new();
        for item in &items {
            if number_attr(item, "expires_at")? > now {
                agents.push(agent_from_item(item)?);
            }
        }
        Ok(agents)
    }

    async fn call_slots(&self, holder: &SlotHolder, now: i64) -> Result<Option<CallSlots>, StoreError> {
        let Some(item) = self.get(slots_pk(holder), SLOTS_SK).await? else { return Ok(None) };
        if number_attr(&item, "expires_at")? <= now {
            return Ok(None);
        }
        slots_from_item(holder, &item).map(Some)
    }

    async fn record_agent_token(&self, token: &AgentToken) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(token_pk(&token.id)))
            .item("sk", s(TOKEN_SK))
            .item("agent", s(token.agent.as_str()))
            .item("session_epoch", n(token.session_epoch))
            .item("expires_at", n(token.expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn agent_token(&self, id: &str, now: i64) -> Result<Option<AgentToken>, StoreError> {
        let Some(item) = self.get(token_pk(id), TOKEN_SK).await? else { return Ok(None) };
        let expires_at = number_attr(&item, "expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(AgentToken {
            id: id.to_owned(),
            agent: AgentId::parse(string_attr(&item, "agent")?).map_err(|_| corrupt("agent"))?,
            session_epoch: number_attr(&item, "session_epoch")?,
            expires_at,
        }))
    }

    async fn line(&self, now: i64) -> Result<Line, StoreError> {
        // Only what the count and the longest wait need: a long line is still one small page.
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(WAITING_INDEX)
            .key_condition_expression("#queue = :waiting")
            .expression_attribute_names("#queue", "queue")
            .expression_attribute_values(":waiting", s(WAITING_INDEX))
            .projection_expression("arrived_at_ms, expires_at")
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(unavailable)?;
        let mut line = Line::default();
        for item in &pages {
            if number_attr(item, "expires_at")? > now {
                line.waiting += 1;
                // The index is in arrival order: the first live caller has waited longest.
                line.longest_since_ms = line.longest_since_ms.or(Some(number_attr(item, "arrived_at_ms")?));
            }
        }
        Ok(line)
    }

    async fn team(&self, now: i64) -> Result<Vec<AgentState>, StoreError> {
        let items = self.query_index(ONLINE_INDEX, ("team", TEAM), 1000).await?;
        let mut team = Vec::new();
        for item in &items {
            if number_attr(item, "expires_at")? > now {
                team.push(agent_from_item(item)?);
            }
        }
        Ok(team)
    }

    async fn count_outcome(
        &self,
        day: &str,
        call: &CallSid,
        outcome: Outcome,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        // The mark and the count together: a retried webhook meets the mark and counts nothing.
        let mark = Put::builder()
            .table_name(&self.table)
            .item("pk", s(counted_pk(outcome, call)))
            .item("sk", s(COUNTED_SK))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let (counter, wait) = match outcome {
            Outcome::Answered { waited_ms } => ("answered", Some(waited_ms.max(0))),
            Outcome::Abandoned => ("abandoned", None),
            Outcome::Voicemail => ("voicemails", None),
        };
        let expression = match wait {
            Some(_) => "ADD #count :one, answered_wait_ms :wait SET expires_at = :expires",
            None => "ADD #count :one SET expires_at = :expires",
        };
        let mut count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(stats_pk(day)))
            .key("sk", s(STATS_SK))
            .update_expression(expression)
            .expression_attribute_names("#count", counter)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires_at));
        if let Some(wait) = wait {
            count = count.expression_attribute_values(":wait", n(wait));
        }
        let items = vec![
            TransactWriteItem::builder().put(mark).build(),
            TransactWriteItem::builder().update(count.build().map_err(unavailable)?).build(),
        ];
        // Every outcome of the day adds to one item: two calls ending at the same moment make
        // one transaction give way to the other, and the one that gave way goes again.
        let mut attempt = 1;
        loop {
            match self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => return Ok(true),
                Err(err) if refused_by_condition(&err) => return Ok(false),
                Err(err) if lost_to_another(&err) && attempt < COUNT_ATTEMPTS => attempt += 1,
                Err(err) => return Err(unavailable(err)),
            }
        }
    }

    async fn day_counts(&self, day: &str) -> Result<DayCounts, StoreError> {
        let Some(item) = self.get(stats_pk(day), STATS_SK).await? else { return Ok(DayCounts::default()) };
        let count = |name: &str| -> Result<u64, StoreError> {
            if !item.contains_key(name) {
                return Ok(0);
            }
            u64::try_from(number_attr(&item, name)?).map_err(|_| corrupt(name))
        };
        Ok(DayCounts {
            answered: count("answered")?,
            answered_wait_ms: optional_number(&item, "answered_wait_ms")?.unwrap_or_default(),
            abandoned: count("abandoned")?,
            voicemails: count("voicemails")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use crate::test_support;

    async fn fresh_store() -> Box<dyn CallStore> {
        let tables = test_support::emulator_tables().await;
        Box::new(DynamoCallStore::new(tables.client.clone(), tables.name("CallsTable")))
    }

    contract::call_store_contract!(fresh_store());

    #[tokio::test]
    async fn an_unreachable_table_is_unavailable_not_a_panic() {
        let tables = test_support::emulator_tables().await;
        let store = DynamoCallStore::new(tables.client.clone(), "no-such-table");
        let err = store.conference(&contract::sid(1), contract::NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let caller = contract::caller(1, contract::NOW);
        let err = store.commit(&[Write::Caller(caller)], contract::NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn stores_items_under_the_documented_keys_and_indexes() {
        let tables = test_support::emulator_tables().await;
        let table = tables.name("CallsTable");
        let store = DynamoCallStore::new(tables.client.clone(), table.clone());
        let now = contract::NOW;
        store.enqueue(&contract::caller(7, now)).await.unwrap();
        store.commit(&[Write::Agent(contract::available("agent2", now))], now).await.unwrap();

        let scan = tables.client.scan().table_name(table).send().await.unwrap();
        let mut keys: Vec<(String, String, Option<String>)> = scan
            .items()
            .iter()
            .map(|item| {
                let index = optional_string(item, "queue_key").or_else(|| optional_string(item, "pool_key"));
                (string_attr(item, "pk").unwrap().to_owned(), string_attr(item, "sk").unwrap().to_owned(), index)
            })
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                ("AGENT#agent2".to_owned(), "STATE".to_owned(), Some(format!("{:013}#agent2", now * 1000))),
                (
                    format!("CONF#{}", contract::sid(7)),
                    "CONF".to_owned(),
                    Some(format!("{:013}#{}", now * 1000 + 7, contract::sid(7)))
                ),
            ]
        );
    }
}
