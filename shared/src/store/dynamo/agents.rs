//! The Agents table: who may sign in, and their recent failed sign-ins.
//!
//! | pk           | what                                                                        |
//! |--------------|-----------------------------------------------------------------------------|
//! | `AGENT#<id>` | an agent: `id`, `display_name`, `password_hash`, `created_at`,              |
//! |              | `disabled_at` (absent while enabled), `session_epoch`                       |
//! | `LOGIN#<id>` | failed sign-ins for that id (whether or not it exists): `failures`,         |
//! |              | `expires_at` (the table's TTL attribute)                                    |

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use super::{Item, is_condition_failure, n, number_attr, s, string_attr, unavailable};
use crate::domain::{Agent, AgentId, LOGIN_LOCKOUT_SECONDS};
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
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
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

fn login_pk(id: &AgentId) -> String {
    format!("LOGIN#{id}")
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

    async fn login_failures(&self, id: &AgentId, now: i64) -> Result<u32, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(login_pk(id)))
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

    async fn record_login_failure(&self, id: &AgentId, now: i64) -> Result<u32, StoreError> {
        let expires_at = n(now + LOGIN_LOCKOUT_SECONDS);
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(login_pk(id)))
            .update_expression("SET expires_at = :expires_at ADD failures :one")
            .condition_expression("attribute_not_exists(pk) OR expires_at > :now")
            .expression_attribute_values(":expires_at", expires_at.clone())
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match counted {
            Ok(output) => output.attributes.as_ref().map_or(Ok(1), failures_of),
            // An expired count that the table has not deleted yet: start over, once. Two
            // failures racing here may both restart at 1; the lockout then comes one try later.
            Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(login_pk(id)))
                    .item("failures", n(1))
                    .item("expires_at", expires_at)
                    .send()
                    .await
                    .map_err(unavailable)?;
                Ok(1)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn clear_login_failures(&self, id: &AgentId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(login_pk(id)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
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
    async fn failed_sign_ins_carry_their_expiry_for_the_tables_ttl() {
        let tables = test_support::emulator_tables().await;
        let store = DynamoAgentStore::new(tables.client.clone(), tables.name("AgentsTable"));
        let agent1 = AgentId::parse("agent1").unwrap();
        store.record_login_failure(&agent1, contract::NOW).await.unwrap();
        let item = tables
            .client
            .get_item()
            .table_name(tables.name("AgentsTable"))
            .key("pk", s("LOGIN#agent1"))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(number_attr(&item, "expires_at").unwrap(), contract::NOW + LOGIN_LOCKOUT_SECONDS);
    }
}
