//! Each invocation with everything it used: its DynamoDB requests (priced), its Twilio REST
//! requests and its log lines. An instance serves one invocation at a time, so whatever an
//! instance did after it took an invocation and before it took the next belongs to that one;
//! what it did before its first is its init (a cold start's cost).

use std::collections::HashMap;

use crate::host::{Invocation, LogLine};
use crate::taps::{Call, DynamoCall, TapRecord};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub dynamodb: Vec<DynamoCall>,
    /// `(method, resource, status)` of each Twilio REST request.
    pub twilio: Vec<(String, String, u16)>,
    pub log_events: u64,
    pub log_bytes: u64,
}

impl Usage {
    pub fn read_units(&self) -> f64 {
        self.dynamodb.iter().fold(0.0, |total, call| total + call.read_units)
    }

    /// The table's and the indexes' write units together.
    pub fn write_units(&self) -> f64 {
        self.dynamodb.iter().fold(0.0, |total, call| total + call.write_units + call.index_write_units)
    }

    fn add(&mut self, call: &Call) {
        match call {
            Call::DynamoDb(call) => self.dynamodb.push(call.clone()),
            Call::Twilio { method, resource, status, .. } => {
                self.twilio.push((method.clone(), resource.clone(), *status))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Used {
    pub invocation: Invocation,
    pub usage: Usage,
}

/// The invocations with their usage, and each instance's init usage.
pub fn attribute(invocations: &[Invocation], taps: &[TapRecord], logs: &[LogLine]) -> (Vec<Used>, HashMap<u64, Usage>) {
    let mut used: Vec<Used> =
        invocations.iter().map(|invocation| Used { invocation: invocation.clone(), usage: Usage::default() }).collect();
    // Per instance, its invocations' positions in `used`, in the order it took them.
    let mut by_instance: HashMap<u64, Vec<usize>> = HashMap::new();
    for (position, entry) in used.iter().enumerate() {
        by_instance.entry(entry.invocation.instance).or_default().push(position);
    }
    for positions in by_instance.values_mut() {
        positions.sort_by_key(|position| used[*position].invocation.handed);
    }
    let mut init: HashMap<u64, Usage> = HashMap::new();
    let owner = |instance: u64, at: std::time::Instant, used: &[Used]| -> Option<usize> {
        let positions = by_instance.get(&instance)?;
        let taken = positions.partition_point(|position| used[*position].invocation.handed <= at);
        taken.checked_sub(1).map(|index| positions[index])
    };
    for record in taps {
        match owner(record.instance, record.at, &used) {
            Some(position) => used[position].usage.add(&record.call),
            None => init.entry(record.instance).or_default().add(&record.call),
        }
    }
    for line in logs {
        let usage = match owner(line.instance, line.at, &used) {
            Some(position) => &mut used[position].usage,
            None => init.entry(line.instance).or_default(),
        };
        usage.log_events += 1;
        usage.log_bytes += line.bytes;
    }
    (used, init)
}
