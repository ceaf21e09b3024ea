//! In-memory fakes of the processor's edges for the Tokio tests: objects, one table and the
//! queues, recording every call, with failures that a test switches on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use txn_core::ObjectVersion;

use crate::edges::{
    ByteRange, FetchedObject, GetObjectError, Item, ItemUpdate, MessageQueue, ObjectStore,
    PutItemError, SendBatchError, SendBatchReport, StatusTable, TransactionTable, UpdateItemError,
};

/// What the fake AWS holds and what it was asked.
#[derive(Default)]
pub struct State {
    /// Objects by (bucket, key).
    pub objects: HashMap<(String, String), Vec<u8>>,
    /// Returned by every GetObject when set.
    pub get_failure: Option<GetObjectError>,
    /// Every GetObject's byte range (`None`: the whole object), in order.
    pub gets: Vec<Option<ByteRange>>,
    /// Status UpdateItems whose condition holds this text fail, returning this item (ALL_OLD).
    pub refused_status_updates: Vec<(String, Item)>,
    /// Stored items by (transaction_id, timestamp).
    pub items: HashMap<(String, String), Item>,
    /// Every PutItem call's (transaction_id, source_line), in the order they took effect.
    pub puts: Vec<(String, String)>,
    /// PutItem of these transaction ids always fails with a throughput error.
    pub failing_puts: HashSet<String>,
    /// How many of the next PutItem calls of a transaction id are throttled.
    pub throttled_puts: HashMap<String, u32>,
    /// PutItem calls served at once; a call beyond them is throttled (`None`: no limit).
    pub put_capacity: Option<usize>,
    /// PutItem calls in flight now, and the most seen at once.
    pub puts_in_flight: usize,
    pub most_puts_in_flight: usize,
    /// PutItem calls throttled by `throttled_puts` or `put_capacity`.
    pub throttles: u64,
    /// A failed condition returns no stored item (as if ALL_OLD had not been asked for).
    pub omit_old_item: bool,
    /// Every message sent, (queue URL, body), in order.
    pub sent: Vec<(String, String)>,
    /// Entries per SendMessageBatch call, in order.
    pub send_calls: Vec<usize>,
    /// For the next calls, in order: how many entries (from the first) report Failed.
    pub entry_failures: VecDeque<usize>,
    /// How many of the next calls fail as a whole.
    pub call_failures: usize,
    /// Every status UpdateItem, in order (the fake applies none of them: the expressions are
    /// evaluated by the emulator in the conformance suite).
    pub status_updates: Vec<ItemUpdate>,
}

/// The fake edges.
#[derive(Default)]
pub struct FakeAws {
    state: Mutex<State>,
}

impl FakeAws {
    /// The state, to arrange a test or to look at what happened.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fake holding one object.
    pub fn with_object(bucket: &str, key: &str, content: &str) -> FakeAws {
        let fake = FakeAws::default();
        fake.put_object(bucket, key, content);
        fake
    }

    pub fn put_object(&self, bucket: &str, key: &str, content: &str) {
        self.state().objects.insert(
            (bucket.to_owned(), key.to_owned()),
            content.as_bytes().to_vec(),
        );
    }

    /// The bodies sent to one queue, parsed.
    pub fn messages(&self, queue_url: &str) -> Vec<Value> {
        self.state()
            .sent
            .iter()
            .filter(|(url, _)| url == queue_url)
            .map(|(_, body)| serde_json::from_str(body).unwrap_or(Value::Null))
            .collect()
    }

    /// The raw bodies sent to one queue.
    pub fn bodies(&self, queue_url: &str) -> Vec<String> {
        self.state()
            .sent
            .iter()
            .filter(|(url, _)| url == queue_url)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// A stored item's string or number attribute.
    pub fn item_attr(&self, transaction_id: &str, timestamp: &str, name: &str) -> Option<String> {
        let state = self.state();
        let item = state
            .items
            .get(&(transaction_id.to_owned(), timestamp.to_owned()))?;
        match item.get(name)? {
            AttributeValue::S(s) | AttributeValue::N(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// How many PutItems of transaction `transaction_id` were answered.
    pub fn puts_of(&self, transaction_id: &str) -> usize {
        let state = self.state();
        state
            .puts
            .iter()
            .filter(|(id, _)| id == transaction_id)
            .count()
    }
}

fn attr(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s) | AttributeValue::N(s)) => s.clone(),
        _ => String::new(),
    }
}

impl ObjectStore for FakeAws {
    async fn get_object(
        &self,
        object: &ObjectVersion,
        byte_range: Option<ByteRange>,
    ) -> Result<FetchedObject, GetObjectError> {
        let mut state = self.state();
        state.gets.push(byte_range);
        if let Some(failure) = &state.get_failure {
            return Err(failure.clone());
        }
        let mut data = state
            .objects
            .get(&(object.bucket.clone(), object.key.clone()))
            .ok_or(GetObjectError::NotFound)?
            .clone();
        if let Some((first, end)) = byte_range {
            let end = usize::try_from(end).unwrap_or(usize::MAX).min(data.len());
            let first = usize::try_from(first).unwrap_or(usize::MAX).min(end);
            data = data[first..end].to_vec();
        }
        Ok(FetchedObject {
            content_length: data.len() as u64,
            body: ByteStream::from(data),
            version_id: None,
            last_modified_ms: Some(1_700_000_000_000),
        })
    }
}

impl TransactionTable for FakeAws {
    async fn put_new_item(&self, _table: &str, item: Item) -> Result<(), PutItemError> {
        // Writes in flight finish out of order, as DynamoDB's may: of eight neighbouring lines,
        // the later ones finish first.
        let line: u64 = attr(&item, "source_line").parse().unwrap_or(0);
        let id = attr(&item, "transaction_id");
        {
            let mut state = self.state();
            let over_capacity = state
                .put_capacity
                .is_some_and(|c| state.puts_in_flight >= c);
            let throttle = state.throttled_puts.get_mut(&id).filter(|n| **n > 0);
            if over_capacity || throttle.is_some() {
                if let Some(n) = throttle {
                    *n -= 1;
                }
                state.throttles += 1;
                state.puts.push((id, attr(&item, "source_line")));
                return Err(PutItemError::Failed {
                    code: "ThrottlingException".into(),
                    message: "Throughput exceeds the current capacity of your table or index."
                        .into(),
                });
            }
            state.puts_in_flight += 1;
            state.most_puts_in_flight = state.most_puts_in_flight.max(state.puts_in_flight);
        }
        for _ in 0..8 - line % 8 {
            tokio::task::yield_now().await;
        }
        let mut state = self.state();
        state.puts_in_flight -= 1;
        state.puts.push((id.clone(), attr(&item, "source_line")));
        if state.failing_puts.contains(&id) {
            return Err(PutItemError::Failed {
                code: "ProvisionedThroughputExceededException".into(),
                message: "Rate of requests exceeds the allowed throughput.".into(),
            });
        }
        let key = (id, attr(&item, "timestamp"));
        if let Some(stored) = state.items.get(&key) {
            let stored_hash = Some(attr(stored, "record_hash")).filter(|_| !state.omit_old_item);
            return Err(PutItemError::ConditionFailed { stored_hash });
        }
        state.items.insert(key, item);
        Ok(())
    }
}

impl StatusTable for FakeAws {
    async fn update_item(&self, _table: &str, update: ItemUpdate) -> Result<(), UpdateItemError> {
        let mut state = self.state();
        let condition = update.condition_expression.clone().unwrap_or_default();
        state.status_updates.push(update);
        match state
            .refused_status_updates
            .iter()
            .find(|(text, _)| condition.contains(text.as_str()))
        {
            Some((_, old)) => Err(UpdateItemError::ConditionFailed {
                old: Some(old.clone()),
            }),
            None => Ok(()),
        }
    }
}

impl MessageQueue for FakeAws {
    async fn send_message_batch(
        &self,
        queue_url: &str,
        entries: &[(String, &str)],
    ) -> Result<SendBatchReport, SendBatchError> {
        let mut state = self.state();
        state.send_calls.push(entries.len());
        if state.call_failures > 0 {
            state.call_failures -= 1;
            return Err(SendBatchError {
                code: "RequestThrottled".into(),
            });
        }
        let failing = state.entry_failures.pop_front().unwrap_or(0);
        let mut report = SendBatchReport::default();
        for (index, (id, body)) in entries.iter().enumerate() {
            if index < failing {
                report.failed.push((id.clone(), "InternalError".to_owned()));
            } else {
                state.sent.push((queue_url.to_owned(), (*body).to_owned()));
                report.successful.push(id.clone());
            }
        }
        Ok(report)
    }
}
