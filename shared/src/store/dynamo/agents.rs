//! The Agents table: who may sign in, and the recent sign-in attempts counted against agent ids
//! and source addresses (`domain::sign_in`).
//!
//! | pk                | what                                                                   |
//! |-------------------|------------------------------------------------------------------------|
//! | `AGENT#<id>`      | an agent: `id`, `display_name`, `password_hash`, `created_at`,         |
//! |                   | `disabled_at` (absent while enabled), `session_epoch`                  |
//! | `LOGIN#<id>`      | attempts counted against that id (whether or not it exists), and       |
//! | `SOURCE#<address>`| against that source address: `failures`, `last_failure_at`,            |
//! |                   | `expires_at` (the table's TTL attribute)                               |

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{Item, is_condition_failure, n, number_attr, s, string_attr, unavailable};
use crate::domain::{Agent, AgentId, SIGN_IN_WINDOW_SECONDS, SignInAttempt, SignInCounter, SignInLimit};
use crate::secret::Secret;
use crate::store::{AgentStore, StoreError};

const AGENT_PREFIX: &str = "AGENT#";
/// Part of every change to an agent: it ends their sessions.
const SESSION_EPOCH_BUMP: &str = "ADD session_epoch :one";

#[derive(Debug, Clone)]
pub struct DynamoAgentStore {
    client: Client,
    table: String,
}

impl DynamoAgentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Applies `update` to an existing agent and ends their sessions; `Ok(false)` if unknown.
    async fn change(
        &self,
        id: &AgentId,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(agent_pk(id)))
            .update_expression(if update.is_empty() {
                SESSION_EPOCH_BUMP.to_owned()
            } else {
                format!("{update} {SESSION_EPOCH_BUMP}")
            })
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }
}

fn agent_pk(id: &AgentId) -> String {
    format!("{AGENT_PREFIX}{id}")
}

fn counter_pk(counter: &SignInCounter) -> String {
    match counter {
        SignInCounter::AgentId(id) => format!("LOGIN#{id}"),
        SignInCounter::Address(address) => format!("SOURCE#{address}"),
    }
}

/// How many times a sign-in attempt is counted again after racing another one; each round
/// sees what the other wrote, so a second is already rare.
const COUNTING_ROUNDS: usize = 4;

/// The condition under which one more attempt is counted: `limit`'s steps spelled out over the
/// stored `failures` and `last_failure_at`, so that deciding and counting are one atomic write.
/// An expired count fails it and is started over separately.
fn counting_condition(limit: &SignInLimit, now: i64) -> (String, Vec<(String, AttributeValue)>) {
    let steps = limit.steps();
    let mut values = vec![(":now".to_owned(), n(now)), (":free".to_owned(), n(i64::from(limit.free)))];
    let mut allowed = vec!["failures < :free".to_owned()];
    for (i, (from, wait)) in steps.iter().enumerate() {
        values.push((format!(":from{i}"), n(i64::from(*from))));
        values.push((format!(":since{i}"), n(now - wait)));
        // Each step holds from its count up to the next step's; the last one has no end.
        let below_next = if i + 1 < steps.len() { format!(" AND failures < :from{}", i + 1) } else { String::new() };
        allowed.push(format!("(failures >= :from{i}{below_next} AND last_failure_at <= :since{i})"));
    }
    let condition = format!("attribute_not_exists(pk) OR (expires_at > :now AND ({}))", allowed.join(" OR "));
    (condition, values)
}

fn agent_from_item(item: &Item) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: AgentId::parse(string_attr(item, "id")?)
            .map_err(|_| StoreError::Corrupt("an agent's id is not an agent id".into()))?,
        display_name: string_attr(item, "display_name")?.to_owned(),
        password_hash: Secret::new(string_attr(item, "password_hash")?),
        created_at: number_attr(item, "created_at")?,
        disabled_at: item.contains_key("disabled_at").then(|| number_attr(item, "disabled_at")).transpose()?,
        session_epoch: number_attr(item, "session_epoch")?,
    })
}

#[async_trait]
impl AgentStore for DynamoAgentStore {
    async fn create_agent(&self, agent: &Agent) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(agent_pk(&agent.id)))
            .item("id", s(agent.id.as_str()))
            .item("display_name", s(&agent.display_name))
            .item("password_hash", s(agent.password_hash.expose()))
            .item("created_at", n(agent.created_at))
            .item("session_epoch", n(agent.session_epoch))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(disabled_at) = agent.disabled_at {
            request = request.item("disabled_at", n(disabled_at));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(agent_pk(id)))
            // A password change or sign-out must take effect on the very next request.
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(agent_from_item).transpose()
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        // An administrator's command on a table of a few dozen items: a scan is fine here.
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :agent)")
            .expression_attribute_values(":agent", s(AGENT_PREFIX))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(unavailable)?;
        let mut agents = items.iter().map(agent_from_item).collect::<Result<Vec<_>, _>>()?;
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(agents)
    }

    async fn set_password(&self, id: &AgentId, password_hash: &Secret) -> Result<bool, StoreError> {
        self.change(id, "SET password_hash = :hash", vec![(":hash", s(password_hash.expose()))]).await
    }

    async fn set_disabled(&self, id: &AgentId, disabled_at: Option<i64>) -> Result<bool, StoreError> {
        match disabled_at {
            Some(at) => self.change(id, "SET disabled_at = :at", vec![(":at", n(at))]).await,
            None => self.change(id, "REMOVE disabled_at", Vec::new()).await,
        }
    }

    async fn end_sessions(&self, id: &AgentId) -> Result<(), StoreError> {
        self.change(id, "", Vec::new()).await.map(|_| ())
    }

    async fn count_sign_in_attempt(&self, counter: &SignInCounter, now: i64) -> Result<SignInAttempt, StoreError> {
        let limit = counter.limit();
        let pk = counter_pk(counter);
        let expires_at = now + SIGN_IN_WINDOW_SECONDS;
        let (condition, values) = counting_condition(&limit, now);
        for _ in 0..COUNTING_ROUNDS {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression("ADD failures :one SET last_failure_at = :now, expires_at = :expires_at")
                .condition_expression(&condition)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":expires_at", n(expires_at))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            for (name, value) in &values {
                request = request.expression_attribute_values(name, value.clone());
            }
            let refused = match request.send().await {
                Ok(output) => {
                    let failures = output.attributes.as_ref().map_or(Ok(1), failures_of)?;
                    return Ok(SignInAttempt::Counted { failures });
                }
                Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => {
                    match err.into_service_error() {
                        UpdateItemError::ConditionalCheckFailedException(refused) => refused.item,
                        _ => None,
                    }
                }
                Err(err) => return Err(unavailable(err)),
            };
            // Gone meanwhile (the table's TTL): the next round counts from nothing.
            let Some(old) = refused else { continue };
            let old_expiry = number_attr(&old, "expires_at")?;
            match (old.contains_key("last_failure_at"), old_expiry > now) {
                (true, true) => {
                    if let Err(retry_after) =
                        limit.check(failures_of(&old)?, number_attr(&old, "last_failure_at")?, now)
                    {
                        return Ok(SignInAttempt::Refused { retry_after });
                    }
                    // Another attempt changed the count between; decide again over what it wrote.
                }
                // Expired but not deleted yet (or written without `last_failure_at`): start over
                // at this attempt, unless a concurrent one did so first.
                _ => {
                    let restarted = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .item("pk", s(&pk))
                        .item("failures", n(1))
                        .item("last_failure_at", n(now))
                        .item("expires_at", n(expires_at))
                        .condition_expression("expires_at = :old_expiry")
                        .expression_attribute_values(":old_expiry", n(old_expiry))
                        .send()
                        .await;
                    match restarted {
                        Ok(_) => return Ok(SignInAttempt::Counted { failures: 1 }),
                        Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => {
                        }
                        Err(err) => return Err(unavailable(err)),
                    }
                }
            }
        }
        // Outraced every round: the caller may simply try again.
        Ok(SignInAttempt::Refused { retry_after: 1 })
    }

    async fn forgive_sign_in_attempt(&self, counter: &SignInCounter) -> Result<(), StoreError> {
        let forgiven = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(counter_pk(counter)))
            .update_expression("ADD failures :minus_one")
            .condition_expression("failures > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match forgiven {
            // Nothing counted (any more): nothing to take back.
            Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => Ok(()),
            Err(err) => Err(unavailable(err)),
            Ok(_) => Ok(()),
        }
    }

    async fn clear_sign_in_failures(&self, counter: &SignInCounter) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(counter_pk(counter)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn sign_in_failures(&self, counter: &SignInCounter, now: i64) -> Result<u32, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(counter_pk(counter)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match output.item {
            // The table deletes expired items late, if at all: an expired count is no count.
            Some(item) if number_attr(&item, "expires_at")? > now => failures_of(&item),
            _ => Ok(0),
        }
    }
}

fn failures_of(item: &Item) -> Result<u32, StoreError> {
    u32::try_from(number_attr(item, "failures")?).map_err(|_| StoreError::Corrupt("failures is out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use crate::test_support;

    async fn fresh_store() -> Box<dyn AgentStore> {
        let tables = test_support::emulator_tables().await;
        Box::new(DynamoAgentStore::new(tables.client.clone(), tables.name("AgentsTable")))
    }

    contract::agent_store_contract!(fresh_store());

    #[tokio::test]
    async fn sign_in_counts_carry_their_expiry_for_the_tables_ttl() {
        let tables = test_support::emulator_tables().await;
        let store = DynamoAgentStore::new(tables.client.clone(), tables.name("AgentsTable"));
        let agent1 = SignInCounter::AgentId(AgentId::parse("agent1").unwrap());
        let address = SignInCounter::Address(crate::domain::SourceAddress::parse("2001:db8::7").unwrap());
        store.count_sign_in_attempt(&agent1, contract::NOW).await.unwrap();
        store.count_sign_in_attempt(&address, contract::NOW + 5).await.unwrap();
        for (pk, at) in [("LOGIN#agent1", contract::NOW), ("SOURCE#2001:db8:0:0::/64", contract::NOW + 5)] {
            let item = tables
                .client
                .get_item()
                .table_name(tables.name("AgentsTable"))
                .key("pk", s(pk))
                .send()
                .await
                .unwrap()
                .item
                .unwrap();
            assert_eq!(number_attr(&item, "expires_at").unwrap(), at + SIGN_IN_WINDOW_SECONDS, "{pk}");
            assert_eq!(number_attr(&item, "last_failure_at").unwrap(), at, "{pk}");
        }
    }
}
