//! What the model needs from a DynamoDB request body: table, key, item, and the partition key
//! value a Query's KeyConditionExpression pins.

use serde_json::{Map, Value};

/// The partition key value a KeyConditionExpression binds with `=` (`pk = :v`, `#n = :v`, or
/// reversed), resolved through ExpressionAttributeNames/Values. Written by hand: the only crate
/// parsing DynamoDB expressions is a whole emulator's internals, and this needs one clause.
pub fn query_partition_value(request: &Value, partition_key: &str) -> Option<Value> {
    let expression = request.get("KeyConditionExpression")?.as_str()?;
    let names = request
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object);
    let values = request
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object)?;
    let resolve = |token: &str| -> String {
        let token = token.trim().trim_matches(|c| c == '(' || c == ')').trim();
        match names.and_then(|n| n.get(token)).and_then(Value::as_str) {
            Some(name) if token.starts_with('#') => name.to_string(),
            _ => token.to_string(),
        }
    };
    for clause in split_and(expression) {
        if clause.contains("<=") || clause.contains(">=") || clause.contains("<>") {
            continue;
        }
        let Some((left, right)) = clause.split_once('=') else {
            continue;
        };
        let (left, right) = (resolve(left), resolve(right));
        let placeholder = if left == partition_key {
            right
        } else if right == partition_key {
            left
        } else {
            continue;
        };
        if placeholder.starts_with(':') {
            return values.get(&placeholder).cloned();
        }
    }
    None
}

fn split_and(expression: &str) -> Vec<String> {
    let mut clauses = vec![String::new()];
    for word in expression.split_whitespace() {
        if word.eq_ignore_ascii_case("AND") {
            clauses.push(String::new());
        } else if let Some(last) = clauses.last_mut() {
            last.push_str(word);
            last.push(' ');
        }
    }
    clauses
}

/// Sum of the sizes of the items in a Query/Scan answer, or of the one item of a GetItem answer.
pub fn returned_bytes(response: &Value) -> u64 {
    let one = |item: &Value| item.as_object().map_or(0, crate::capacity::item_size);
    match response.get("Items").and_then(Value::as_array) {
        Some(items) => items.iter().map(one).sum(),
        None => response.get("Item").map_or(0, one),
    }
}

/// The `Item` member of a request (PutItem, a TransactWriteItems Put), as a map.
pub fn item_of(value: &Value) -> Option<&Map<String, Value>> {
    value.get("Item").and_then(Value::as_object)
}

/// The `Key` member of a request (GetItem, UpdateItem, DeleteItem).
pub fn key_of(value: &Value) -> Option<&Map<String, Value>> {
    value.get("Key").and_then(Value::as_object)
}

pub fn table_of(value: &Value) -> Option<&str> {
    value.get("TableName").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_partition_value_through_names_and_values() {
        let request = json!({
            "KeyConditionExpression": "#s = :s AND #t BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#s": "status", "#t": "timestamp"},
            "ExpressionAttributeValues": {":s": {"S": "PROCESSED"}, ":a": {"N": "1"}, ":b": {"N": "2"}}
        });
        assert_eq!(
            query_partition_value(&request, "status"),
            Some(json!({"S": "PROCESSED"}))
        );
        let plain = json!({
            "KeyConditionExpression": "(transaction_id = :id) AND #t >= :a",
            "ExpressionAttributeNames": {"#t": "timestamp"},
            "ExpressionAttributeValues": {":id": {"S": "t1"}, ":a": {"N": "1"}}
        });
        assert_eq!(
            query_partition_value(&plain, "transaction_id"),
            Some(json!({"S": "t1"}))
        );
        assert_eq!(query_partition_value(&plain, "status"), None);
    }
}
