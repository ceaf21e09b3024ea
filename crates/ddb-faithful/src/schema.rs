//! Table definitions (keys, GSIs, projections) read from a DescribeTable answer, and the
//! capacity charges a request makes against them.

use crate::capacity::{item_size, read_units, write_units, TRANSACTIONAL_WRITE_FACTOR};
use crate::model::{Access, Charge};
use serde_json::{Map, Value};

/// What a GSI copies from the base item.
#[derive(Clone, Debug, PartialEq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct IndexDef {
    pub name: String,
    pub arn: String,
    pub hash_key: String,
    pub range_key: Option<String>,
    pub projection: Projection,
}

#[derive(Clone, Debug)]
pub struct TableDef {
    pub name: String,
    pub arn: String,
    pub hash_key: String,
    pub range_key: Option<String>,
    pub indexes: Vec<IndexDef>,
}

fn key_schema(schema: Option<&Value>) -> (Option<String>, Option<String>) {
    let mut hash = None;
    let mut range = None;
    for element in schema.and_then(Value::as_array).into_iter().flatten() {
        let name = element
            .get("AttributeName")
            .and_then(Value::as_str)
            .map(str::to_string);
        match element.get("KeyType").and_then(Value::as_str) {
            Some("HASH") => hash = name,
            Some("RANGE") => range = name,
            _ => {}
        }
    }
    (hash, range)
}

impl TableDef {
    /// Parse `{"Table": {...}}` as DescribeTable returns it. None when it is not a table.
    pub fn from_describe(body: &Value) -> Option<Self> {
        let table = body.get("Table")?;
        let name = table.get("TableName")?.as_str()?.to_string();
        let arn = table.get("TableArn")?.as_str()?.to_string();
        let (hash_key, range_key) = key_schema(table.get("KeySchema"));
        let indexes = table
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|gsi| {
                let name = gsi.get("IndexName")?.as_str()?.to_string();
                let (hash_key, range_key) = key_schema(gsi.get("KeySchema"));
                let projection = gsi.get("Projection");
                let projection = match projection
                    .and_then(|p| p.get("ProjectionType"))
                    .and_then(Value::as_str)
                {
                    Some("KEYS_ONLY") => Projection::KeysOnly,
                    Some("INCLUDE") => Projection::Include(
                        projection
                            .and_then(|p| p.get("NonKeyAttributes"))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                    ),
                    _ => Projection::All,
                };
                let arn = gsi
                    .get("IndexArn")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("{arn}/index/{name}"), str::to_string);
                Some(IndexDef {
                    name,
                    arn,
                    hash_key: hash_key?,
                    range_key,
                    projection,
                })
            })
            .collect();
        Some(Self {
            name,
            arn,
            hash_key: hash_key?,
            range_key,
            indexes,
        })
    }

    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }

    fn key_names<'a>(&'a self, index: &'a IndexDef) -> impl Iterator<Item = &'a String> {
        [
            Some(&self.hash_key),
            self.range_key.as_ref(),
            Some(&index.hash_key),
            index.range_key.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Size of the entry an item writes into `index` (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html
    /// "Provisioned throughput considerations": the cost depends on the projected entry's size).
    fn index_entry_size(&self, index: &IndexDef, item: &Map<String, Value>) -> u64 {
        match &index.projection {
            Projection::All => item_size(item),
            Projection::KeysOnly | Projection::Include(_) => {
                let mut entry = Map::new();
                for name in self.key_names(index) {
                    if let Some(v) = item.get(name) {
                        entry.insert(name.clone(), v.clone());
                    }
                }
                if let Projection::Include(extra) = &index.projection {
                    for name in extra {
                        if let Some(v) = item.get(name) {
                            entry.insert(name.clone(), v.clone());
                        }
                    }
                }
                item_size(&entry)
            }
        }
    }

    /// Charges of writing `item` as a new item: the base table (1 WRU per KB, times `factor`) and
    /// every GSI whose key attributes the item carries ("a new item with the indexed attribute:
    /// one write", GSI.html). Replacing an item whose old version the proxy cannot see is charged
    /// the same way (see the crate docs).
    pub fn put_charges(&self, item: &Map<String, Value>, factor: f64) -> Vec<Charge> {
        let mut charges = vec![Charge {
            table: self.name.clone(),
            index: None,
            partition_key: item.get(&self.hash_key).map(encode_key),
            access: Access::Write,
            units: write_units(item_size(item)) * factor,
        }];
        for index in &self.indexes {
            let Some(key) = item.get(&index.hash_key) else {
                continue;
            };
            if index
                .range_key
                .as_ref()
                .is_some_and(|r| !item.contains_key(r))
            {
                continue;
            }
            charges.push(Charge {
                table: self.name.clone(),
                index: Some(index.name.clone()),
                partition_key: Some(encode_key(key)),
                access: Access::Write,
                units: write_units(self.index_entry_size(index, item)) * factor,
            });
        }
        charges
    }

    /// Charge of a write known only by its key (UpdateItem, DeleteItem): one unit on the key's
    /// partition; GSIs are not charged because the proxy cannot see the item (crate docs).
    pub fn key_write_charge(&self, key: &Map<String, Value>, factor: f64) -> Charge {
        Charge {
            table: self.name.clone(),
            index: None,
            partition_key: key.get(&self.hash_key).map(encode_key),
            access: Access::Write,
            units: write_units(0) * factor,
        }
    }

    /// Charge of a read on the table (index None) or a GSI, before its size is known: the
    /// minimum (1 RRU strong, 0.5 eventual). `bytes` adjusts it afterwards.
    pub fn read_charge(
        &self,
        index: Option<&str>,
        partition_key: Option<Vec<u8>>,
        bytes: u64,
        consistent: bool,
    ) -> Charge {
        Charge {
            table: self.name.clone(),
            index: index.map(str::to_string),
            partition_key,
            access: Access::Read,
            units: read_units(bytes, consistent),
        }
    }
}

/// Transactional writes cost twice (transaction-apis.html).
pub const TRANSACTION_FACTOR: f64 = TRANSACTIONAL_WRITE_FACTOR;

/// Bytes that identify a partition key value: its AttributeValue JSON (`{"S":"x"}`).
pub fn encode_key(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn describe() -> Value {
        json!({"Table": {
            "TableName": "txn",
            "TableArn": "arn:aws:dynamodb:eu-central-1:123456789012:table/txn",
            "KeySchema": [{"AttributeName": "transaction_id", "KeyType": "HASH"},
                          {"AttributeName": "timestamp", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "status-index",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                              {"AttributeName": "timestamp", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
                "IndexArn": "arn:aws:dynamodb:eu-central-1:123456789012:table/txn/index/status-index"
            }]
        }})
    }

    #[test]
    fn a_put_with_the_index_key_charges_the_table_and_the_index() {
        let def = TableDef::from_describe(&describe()).expect("table");
        let item = json!({"transaction_id": {"S": "t1"}, "timestamp": {"N": "1"}, "status": {"S": "PROCESSED"}});
        let charges = def.put_charges(item.as_object().expect("map"), 1.0);
        assert_eq!(charges.len(), 2);
        assert_eq!(charges[1].index.as_deref(), Some("status-index"));
        assert_eq!(
            charges[1].partition_key.as_deref(),
            Some(br#"{"S":"PROCESSED"}"#.as_slice())
        );
        let without = json!({"transaction_id": {"S": "t1"}, "timestamp": {"N": "1"}});
        assert_eq!(
            def.put_charges(without.as_object().expect("map"), 1.0)
                .len(),
            1
        );
    }

    #[test]
    fn a_large_item_costs_one_unit_per_kb() {
        let def = TableDef::from_describe(&describe()).expect("table");
        let item = json!({"transaction_id": {"S": "t1"}, "timestamp": {"N": "1"}, "d": {"S": "x".repeat(2_000)}});
        let charges = def.put_charges(item.as_object().expect("map"), 2.0);
        assert_eq!(charges[0].units, 4.0);
    }
}
