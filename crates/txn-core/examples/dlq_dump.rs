//! Prints the errors-table items txn-core's DLQ logic makes of SQS records, one JSON line per
//! record, in the shape bench/differential.py prints for lib/dlq_processor_function.py.
//! Usage: dlq_dump FILE (a JSON array of SQS event records); `now` is fixed at 1700000000000.

use serde_json::{json, Map, Value};
use txn_core::{interpret_message, parse_json, Attr, JsonValue, SqsMessage};

fn attr(value: Attr) -> Value {
    match value {
        Attr::S(s) => json!({"S": s}),
        Attr::N(n) => json!({"N": n}),
        Attr::Bool(b) => json!({"BOOL": b}),
        Attr::M(pairs) => {
            let map: Map<String, Value> = pairs
                .into_iter()
                .map(|(k, v)| (k, json!({"S": v})))
                .collect();
            json!({"M": map})
        }
    }
}

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let text = std::fs::read_to_string(path)?;
    let Ok(JsonValue::Array(records)) = parse_json(&text) else {
        eprintln!("expected a JSON array of SQS records");
        std::process::exit(2);
    };
    for record in &records {
        let message = SqsMessage::from_record(record);
        let items: Vec<Value> = interpret_message(&message, 1_700_000_000_000)
            .into_iter()
            .map(|row| {
                let item: Map<String, Value> = row
                    .to_item(&message, 1_731_536_000)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), attr(v)))
                    .collect();
                Value::Object(item)
            })
            .collect();
        println!("{}", Value::Array(items));
    }
    Ok(())
}
