//! Item sizes and the capacity units a request consumes, by AWS's published rules.
//!
//! Sizes: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>
//! Units: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>

use serde_json::{Map, Value};

/// One write unit covers an item of up to 1 KB (1,024 bytes); larger items round up.
/// Source: read-write-operations.html ("Capacity unit consumption for write operations").
pub const WRITE_UNIT_BYTES: u64 = 1024;
/// One read unit covers a strongly consistent read of up to 4 KB; sizes round up to 4 KB.
/// Source: read-write-operations.html ("Capacity unit consumption for read operations").
pub const READ_UNIT_BYTES: u64 = 4096;
/// Transactional writes cost two write units per KB (prepare + commit).
/// Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
/// ("Capacity management for transactions").
pub const TRANSACTIONAL_WRITE_FACTOR: f64 = 2.0;
/// An eventually consistent read costs half a read unit per 4 KB. Source: read-write-operations.html.
pub const EVENTUAL_READ_FACTOR: f64 = 0.5;

/// Size in bytes of a DynamoDB item (a map of attribute name to AttributeValue JSON):
/// sum of the UTF-8 lengths of the names plus the sizes of the values (CapacityUnitCalculations.html).
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// Size of one AttributeValue, without its attribute name (CapacityUnitCalculations.html):
/// S = UTF-8 bytes; N = 1 byte per two significant digits + 1; B = raw bytes (base64 decoded);
/// BOOL/NULL = 1; L/M = 3 + elements + 1 per element; sets = sum of elements.
pub fn value_size(value: &Value) -> u64 {
    let Some(obj) = value.as_object() else {
        return 0;
    };
    let Some((kind, inner)) = obj.iter().next() else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, base64_decoded_len),
        "BOOL" | "NULL" => 1,
        "SS" => sum_strings(inner, |s| s.len() as u64),
        "NS" => sum_strings(inner, number_size),
        "BS" => sum_strings(inner, base64_decoded_len),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |items| items.iter().map(|v| 1 + value_size(v)).sum())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |members| {
                members
                    .iter()
                    .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                    .sum()
            })
        }
        _ => 0,
    }
}

fn sum_strings(list: &Value, size: impl Fn(&str) -> u64) -> u64 {
    list.as_array().map_or(0, |items| {
        items.iter().filter_map(Value::as_str).map(&size).sum()
    })
}

/// "Numbers are variable length, with up to 38 significant digits. Leading and trailing zeroes
/// are trimmed. The size of a number is approximately (1 byte per two significant digits) + (1 byte)."
pub fn number_size(text: &str) -> u64 {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

fn base64_decoded_len(text: &str) -> u64 {
    let trimmed = text.trim_end_matches('=');
    (trimmed.len() as u64 * 3) / 4
}

/// Write units for a write of `bytes`: 1 per started KB, at least 1 (read-write-operations.html).
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// Read units for a read returning `bytes` in total: 1 per started 4 KB, at least 1, halved when
/// eventually consistent (read-write-operations.html). A Query sums its items before rounding.
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        units
    } else {
        units * EVENTUAL_READ_FACTOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn string_and_number_sizes_follow_the_published_rules() {
        // "name"(4) + "abc"(3) = 7; "n"(1) + 12345 -> 3 digits pairs + 1 = 4 -> 5.
        let item = obj(json!({"name": {"S": "abc"}, "n": {"N": "12345"}}));
        assert_eq!(item_size(&item), 7 + 5);
        assert_eq!(number_size("0.00100"), 2); // one significant digit
        assert_eq!(number_size("-1234.5"), 4); // five digits -> 3 bytes + 1
    }

    #[test]
    fn containers_add_their_overhead() {
        let item = obj(json!({"m": {"M": {"a": {"BOOL": true}}}, "l": {"L": [{"NULL": true}]}}));
        // m: 1 + (3 + 1 + 1 + 1) = 7; l: 1 + (3 + 1 + 1) = 6.
        assert_eq!(item_size(&item), 13);
    }

    #[test]
    fn units_round_up_per_kb_and_per_4kb() {
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(3500, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(100, false), 0.5);
    }
}
