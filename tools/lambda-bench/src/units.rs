//! What DynamoDB bills a request in on-demand mode, from the items it reads and writes: item
//! sizes as the developer guide computes them ("DynamoDB item sizes and formats",
//! CapacityUnitCalculations.html) and the units per request ("DynamoDB read and write
//! operations", read-write-operations.html):
//!
//! - a read: the item size rounded up to 4 KB, one read unit per 4 KB when strongly consistent,
//!   half that when eventually consistent (every read of a global secondary index), at least
//!   one such step even when nothing is found; a Query sums the sizes of the items it reads first;
//! - a write: the larger of the item before and after, rounded up to 1 KB, one write unit per
//!   KB, at least one; transactions cost twice as much; a conditional write that fails still
//!   costs the existing item's size (at least one unit);
//! - each global secondary index an item enters, leaves or changes in costs the index entry's
//!   size in write units as well (two writes when its key changes).
//!
//! Items are in DynamoDB's JSON (`{"name": {"S": "…"}}`), as the wire carries them.

use serde_json::{Map, Value};

pub const READ_STEP: u64 = 4096;
pub const WRITE_STEP: u64 = 1024;

/// Bytes of one item: every attribute's name and value.
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter().map(|(name, value)| name.len() as u64 + value_size(value)).sum()
}

/// Bytes of one attribute value (without its name).
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|typed| typed.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, base64_len),
        "BOOL" | "NULL" => 1,
        "SS" => strings(inner).map(|s| s.len() as u64).sum(),
        "NS" => strings(inner).map(number_size).sum(),
        "BS" => strings(inner).map(base64_len).sum(),
        // 3 bytes for the container, 1 more per element.
        "L" => 3 + inner.as_array().map_or(0, |items| items.iter().map(|item| 1 + value_size(item)).sum()),
        "M" => {
            3 + inner
                .as_object()
                .map_or(0, |map| map.iter().map(|(name, item)| 1 + name.len() as u64 + value_size(item)).sum())
        }
        _ => 0,
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// One byte per two significant digits, plus one; leading and trailing zeros do not count.
fn number_size(number: &str) -> u64 {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

fn base64_len(encoded: &str) -> u64 {
    let padding = encoded.bytes().rev().take_while(|b| *b == b'=').count() as u64;
    (encoded.len() as u64 / 4 * 3).saturating_sub(padding)
}

/// Read units for `bytes` read at once (a Query's items together).
pub fn read_units(bytes: u64, strongly_consistent: bool) -> f64 {
    let steps = bytes.div_ceil(READ_STEP).max(1) as f64;
    if strongly_consistent { steps } else { steps / 2.0 }
}

/// Write units for writing an item of `bytes` (before or after, whichever is larger).
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(WRITE_STEP).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn strings_count_their_utf8_bytes_and_the_name() {
        assert_eq!(item_size(&item(json!({"pk": {"S": "CONF#CA1"}}))), 2 + 8);
        assert_eq!(item_size(&item(json!({"name": {"S": "Zoë"}}))), 4 + 4);
    }

    #[test]
    fn numbers_cost_a_byte_per_two_significant_digits_plus_one() {
        assert_eq!(value_size(&json!({"N": "1764709564"})), 6);
        assert_eq!(value_size(&json!({"N": "1700000000"})), 2, "trailing zeros do not count");
        assert_eq!(value_size(&json!({"N": "-0.0012"})), 2);
        assert_eq!(value_size(&json!({"N": "123"})), 3);
    }

    #[test]
    fn lists_maps_and_sets() {
        // 3 for the list, then 1 + the value per element.
        let calls = json!({"L": [{"L": [{"S": "CA1"}, {"S": "agent1"}]}]});
        assert_eq!(value_size(&calls), 3 + (1 + (3 + (1 + 3) + (1 + 6))));
        assert_eq!(value_size(&json!({"M": {"a": {"BOOL": true}}})), 3 + 1 + 1 + 1);
        assert_eq!(value_size(&json!({"SS": ["agent1", "agent22"]})), 13);
        assert_eq!(value_size(&json!({"B": "aGVsbG8="})), 5, "the decoded bytes");
        assert_eq!(value_size(&json!({"NULL": true})), 1);
    }

    #[test]
    fn units_round_up_with_a_minimum_of_one_step() {
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(3500, true), 1.0);
        assert_eq!(read_units(3500, false), 0.5);
        assert_eq!(read_units(8 * 1024, false), 1.0);
        assert_eq!(read_units(10 * 1024, true), 3.0);
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }
}
