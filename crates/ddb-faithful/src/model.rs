//! The capacity model: per-partition token buckets, the on-demand table ceiling with AWS's
//! doubling rule, global secondary indexes with their own partitions, and throttle decisions.
//!
//! All capacity is kept in *write-equivalent units* (one write request unit = 1, one read
//! request unit = 1/3) because AWS describes both the partition limit (3,000 RRU or 1,000 WRU)
//! and the new-table ceiling (12,000 RRU or 4,000 WRU) as a linear mix of reads and writes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Time source of the model: the wall clock, or a manual clock that tests advance.
pub trait Clock: Send + Sync {
    fn now_nanos(&self) -> u64;
}

/// Monotonic wall clock.
pub struct RealClock(Instant);

impl RealClock {
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to (the admin endpoint or a test calls `advance`), so
/// tests count admitted requests per simulated second instead of timing anything.
#[derive(Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn advance_nanos(&self, nanos: u64) {
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The modelled numbers. Every default cites the AWS page it comes from.
#[derive(Clone, Debug)]
pub struct Limits {
    /// 1,000 write units/s per partition. "a single partition key value ... can serve up to
    /// 3,000 RCU or 1,000 WCU": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
    /// and https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/burst-adaptive-capacity.html
    pub partition_write_units: f64,
    /// 3,000 read units/s per partition (same pages).
    pub partition_read_units: f64,
    /// A new on-demand table serves up to 4,000 writes/s ...
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html
    /// ("Initial throughput and scaling properties") and
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/pre-warming-on-demand-capacity-mode.html
    /// The same pages give 12,000 reads/s: the 1,000:3,000 weight of a partition, so one
    /// write-equivalent ceiling covers both.
    pub table_initial_write_units: f64,
    /// On-demand serves up to twice the previous peak at once, but "throttling can occur if you
    /// exceed double your previous peak within 30 minutes" (same pages). A peak counts as
    /// "previous" once it is this old.
    pub peak_settle_nanos: u64,
    /// Default per-table quota for on-demand tables: 40,000 read and 40,000 write request
    /// units/s: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
    /// (throughput default quotas). Past it the reason is `...AccountLimitExceeded`.
    pub table_quota_write_units: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            partition_write_units: 1_000.0,
            partition_read_units: 3_000.0,
            table_initial_write_units: 4_000.0,
            peak_settle_nanos: 30 * 60 * NANOS_PER_SECOND,
            table_quota_write_units: 40_000.0,
        }
    }
}

impl Limits {
    /// Write-equivalent units of one read unit (partition: 1,000 WRU = 3,000 RRU).
    fn read_weight(&self) -> f64 {
        self.partition_write_units / self.partition_read_units
    }
}

/// Read or write, which decides the throttle reason and the unit weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One resource a request consumes from: the table (index None) or one of its GSIs.
#[derive(Clone, Debug)]
pub struct Charge {
    pub table: String,
    pub index: Option<String>,
    /// Encoded partition key value (None for a Scan: charged to the ceiling only).
    pub partition_key: Option<Vec<u8>>,
    pub access: Access,
    /// Request units (WRU for writes, RRU for reads).
    pub units: f64,
}

/// Why a request was throttled, in AWS's words
/// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub reason: String,
    pub resource_arn: String,
}

/// A token bucket holding at most one second of its rate: the partition and table limits are
/// per-second maxima. AWS's 300-second burst capacity is documented for provisioned capacity
/// below the partition maximum (burst-adaptive-capacity.html), so it is not modelled for the
/// on-demand tables this pipeline uses.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    last: u64,
}

impl Bucket {
    fn full(rate: f64, now: u64) -> Self {
        Self {
            tokens: rate,
            rate,
            last: now,
        }
    }

    fn refill(&mut self, now: u64) {
        if now > self.last {
            let elapsed = (now - self.last) as f64 / NANOS_PER_SECOND as f64;
            self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
            self.last = now;
        }
    }

    fn has(&self, cost: f64) -> bool {
        self.tokens + 1e-9 >= cost
    }
}

/// Tracks consumption per whole second and the peak that counts as "previous".
#[derive(Clone, Debug)]
struct PeakTracker {
    second: u64,
    in_second: f64,
    recent: VecDeque<(u64, f64)>,
    settled_peak: f64,
    highest_second: f64,
}

impl PeakTracker {
    fn new(initial_ceiling: f64) -> Self {
        Self {
            second: 0,
            in_second: 0.0,
            recent: VecDeque::new(),
            // A new table behaves as if its previous peak were half its initial ceiling.
            settled_peak: initial_ceiling / 2.0,
            highest_second: 0.0,
        }
    }

    /// Add consumption at `now`. A second's peak counts at most the ceiling of the moment:
    /// the full bucket a new table starts with lets its first second take up to twice the
    /// ceiling, which is a burst, not a traffic level the table sustained.
    fn record(&mut self, now: u64, units: f64, ceiling: f64) {
        let second = now / NANOS_PER_SECOND;
        if second != self.second {
            if self.in_second > 0.0 {
                self.recent.push_back((self.second, self.in_second));
            }
            self.second = second;
            self.in_second = 0.0;
        }
        self.in_second = (self.in_second + units).min(ceiling);
        self.highest_second = self.highest_second.max(self.in_second);
    }

    fn settle(&mut self, now: u64, settle_nanos: u64) {
        let settle_seconds = settle_nanos / NANOS_PER_SECOND;
        let now_second = now / NANOS_PER_SECOND;
        while let Some(&(second, units)) = self.recent.front() {
            if second + settle_seconds > now_second {
                break;
            }
            self.settled_peak = self.settled_peak.max(units);
            self.recent.pop_front();
        }
    }
}

/// A table or GSI: its partitions, its ceiling and its consumption.
#[derive(Clone, Debug)]
pub struct Resource {
    pub arn: String,
    is_index: bool,
    partitions: Vec<Bucket>,
    ceiling: Bucket,
    peak: PeakTracker,
    pub consumed_write_units: f64,
    pub consumed_read_units: f64,
    /// Write units charged to each partition (by position): how evenly the keys spread, the
    /// hottest partition being the one that throttles first.
    pub partition_write_units: Vec<f64>,
}

impl Resource {
    fn new(arn: String, is_index: bool, limits: &Limits, now: u64) -> Self {
        let mut resource = Self {
            arn,
            is_index,
            partitions: Vec::new(),
            ceiling: Bucket::full(limits.table_initial_write_units, now),
            peak: PeakTracker::new(limits.table_initial_write_units),
            consumed_write_units: 0.0,
            consumed_read_units: 0.0,
            partition_write_units: Vec::new(),
        };
        resource.resize(limits, now);
        resource
    }

    /// Ceiling = max(initial, 2 x previous peak), capped at the per-table quota; partitions
    /// are added (never merged) until they can carry it.
    fn resize(&mut self, limits: &Limits, now: u64) {
        self.peak.settle(now, limits.peak_settle_nanos);
        let ceiling = (2.0 * self.peak.settled_peak)
            .max(limits.table_initial_write_units)
            .min(limits.table_quota_write_units);
        if ceiling > self.ceiling.rate {
            self.ceiling.refill(now);
            self.ceiling.rate = ceiling;
        }
        let wanted = (self.ceiling.rate / limits.partition_write_units).ceil() as usize;
        while self.partitions.len() < wanted.max(1) {
            self.partitions
                .push(Bucket::full(limits.partition_write_units, now));
        }
        self.partition_write_units
            .resize(self.partitions.len(), 0.0);
    }

    fn partition_index(&self, key: &[u8]) -> usize {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % self.partitions.len() as u64) as usize
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Current ceiling in write-equivalent units per second.
    pub fn ceiling(&self) -> f64 {
        self.ceiling.rate
    }

    pub fn highest_second(&self) -> f64 {
        self.peak.highest_second
    }

    fn reason(&self, access: Access, limit: &str) -> String {
        let resource = if self.is_index { "Index" } else { "Table" };
        let op = match access {
            Access::Read => "Read",
            Access::Write => "Write",
        };
        format!("{resource}{op}{limit}")
    }
}

/// Per-table state: the table's own resource and one per GSI.
#[derive(Clone, Debug)]
pub struct TableState {
    pub table: Resource,
    pub indexes: BTreeMap<String, Resource>,
}

/// The whole model. Callers hold it behind a mutex; every method takes `now` explicitly.
pub struct Model {
    pub limits: Limits,
    pub tables: HashMap<String, TableState>,
}

impl Model {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            tables: HashMap::new(),
        }
    }

    /// Start modelling a table (fresh, as a new on-demand table) unless it is known already.
    pub fn ensure_table(&mut self, name: &str, arn: &str, indexes: &[(String, String)], now: u64) {
        if self.tables.contains_key(name) {
            return;
        }
        let table = Resource::new(arn.to_string(), false, &self.limits, now);
        let indexes = indexes
            .iter()
            .map(|(index, index_arn)| {
                let resource = Resource::new(index_arn.clone(), true, &self.limits, now);
                (index.clone(), resource)
            })
            .collect();
        self.tables
            .insert(name.to_string(), TableState { table, indexes });
    }

    pub fn forget_table(&mut self, name: &str) {
        self.tables.remove(name);
    }

    fn weight(&self, access: Access) -> f64 {
        match access {
            Access::Write => 1.0,
            Access::Read => self.limits.read_weight(),
        }
    }

    fn resource_mut(&mut self, charge: &Charge) -> Option<&mut Resource> {
        let state = self.tables.get_mut(&charge.table)?;
        match &charge.index {
            None => Some(&mut state.table),
            Some(index) => state.indexes.get_mut(index),
        }
    }

    /// Admit all charges or none: the first resource short of capacity names the throttle.
    /// Charges to tables the model does not know are admitted unmetered.
    /// A GSI short of write capacity throttles the base-table write that caused it
    /// (https://repost.aws/knowledge-center/dynamodb-gsi-throttling-table,
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html).
    pub fn admit(&mut self, now: u64, charges: &[Charge]) -> Result<(), Throttle> {
        let limits = self.limits.clone();
        for charge in charges {
            let cost = charge.units * self.weight(charge.access);
            let Some(resource) = self.resource_mut(charge) else {
                continue;
            };
            resource.resize(&limits, now);
            resource.ceiling.refill(now);
            if let Some(key) = &charge.partition_key {
                let index = resource.partition_index(key);
                let partition = &mut resource.partitions[index];
                partition.refill(now);
                if !partition.has(cost) {
                    return Err(Throttle {
                        reason: resource.reason(charge.access, "KeyRangeThroughputExceeded"),
                        resource_arn: resource.arn.clone(),
                    });
                }
            }
            if !resource.ceiling.has(cost) {
                // AWS names no separate reason for an on-demand table above twice its previous
                // peak: its partitions are what is saturated, hence KeyRange. At the per-table
                // quota the reason is AccountLimitExceeded (API_ThrottlingReason.html).
                let limit = if resource.ceiling.rate >= limits.table_quota_write_units {
                    "AccountLimitExceeded"
                } else {
                    "KeyRangeThroughputExceeded"
                };
                return Err(Throttle {
                    reason: resource.reason(charge.access, limit),
                    resource_arn: resource.arn.clone(),
                });
            }
        }
        for charge in charges {
            self.consume(now, charge);
        }
        Ok(())
    }

    /// Take a charge without checking (a read's real size is known only after it ran; the
    /// bucket may go below zero, which delays the next requests as AWS's debt would).
    pub fn consume(&mut self, now: u64, charge: &Charge) {
        self.apply(now, charge, 1.0);
    }

    /// Give back a charge that did not happen (the GSI write of a PutItem whose condition failed).
    pub fn refund(&mut self, now: u64, charge: &Charge) {
        self.apply(now, charge, -1.0);
    }

    /// Take (`sign` 1) or give back (`sign` -1) a charge from its partition, its ceiling, its
    /// peak and its counters. A bucket never holds more than one second of its rate.
    fn apply(&mut self, now: u64, charge: &Charge, sign: f64) {
        let cost = sign * charge.units * self.weight(charge.access);
        let Some(resource) = self.resource_mut(charge) else {
            return;
        };
        let partition = charge
            .partition_key
            .as_ref()
            .map(|key| resource.partition_index(key));
        if let Some(index) = partition {
            let bucket = &mut resource.partitions[index];
            bucket.refill(now);
            bucket.tokens = (bucket.tokens - cost).min(bucket.rate);
            if charge.access == Access::Write {
                resource.partition_write_units[index] += sign * charge.units;
            }
        }
        resource.ceiling.refill(now);
        resource.ceiling.tokens = (resource.ceiling.tokens - cost).min(resource.ceiling.rate);
        let ceiling = resource.ceiling.rate;
        resource.peak.record(now, cost, ceiling);
        match charge.access {
            Access::Write => resource.consumed_write_units += sign * charge.units,
            Access::Read => resource.consumed_read_units += sign * charge.units,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE_ARN: &str = "arn:aws:dynamodb:eu-central-1:123456789012:table/t";
    const INDEX_ARN: &str = "arn:aws:dynamodb:eu-central-1:123456789012:table/t/index/status-index";

    fn model(now: u64) -> Model {
        let mut model = Model::new(Limits::default());
        let indexes = [("status-index".to_string(), INDEX_ARN.to_string())];
        model.ensure_table("t", TABLE_ARN, &indexes, now);
        model
    }

    fn put(key: &str) -> Charge {
        Charge {
            table: "t".into(),
            index: None,
            partition_key: Some(key.as_bytes().to_vec()),
            access: Access::Write,
            units: 1.0,
        }
    }

    fn gsi_put(key: &str, status: &str) -> [Charge; 2] {
        let index = Charge {
            index: Some("status-index".into()),
            partition_key: Some(status.as_bytes().to_vec()),
            ..put(key)
        };
        [put(key), index]
    }

    /// Offer `per_second` requests per simulated second, evenly spaced, for `seconds`
    /// seconds after two warm-up seconds (the buckets start full, and a partition that was
    /// offered less than its share keeps tokens a little longer); return admitted counts per
    /// measured second.
    fn drive(
        model: &mut Model,
        start: u64,
        seconds: u64,
        per_second: u64,
        charges: impl Fn(u64) -> Vec<Charge>,
    ) -> Vec<u64> {
        let step = NANOS_PER_SECOND / per_second;
        let mut admitted = Vec::new();
        let mut n = 0;
        for second in 0..seconds + 2 {
            let mut count = 0;
            for i in 0..per_second {
                let now = start + second * NANOS_PER_SECOND + i * step;
                if model.admit(now, &charges(n)).is_ok() {
                    count += 1;
                }
                n += 1;
            }
            if second > 1 {
                admitted.push(count);
            }
        }
        admitted
    }

    #[test]
    fn a_hot_key_is_held_to_one_partition() {
        let mut m = model(0);
        let admitted = drive(&mut m, 0, 5, 3_000, |_| vec![put("hot")]);
        for count in admitted {
            assert!((995..=1_005).contains(&count), "hot key admitted {count}/s");
        }
        let mut last = None;
        for _ in 0..2_000 {
            if let Err(e) = m.admit(6 * NANOS_PER_SECOND, &[put("hot")]) {
                last = Some(e);
            }
        }
        assert_eq!(
            last,
            Some(Throttle {
                reason: "TableWriteKeyRangeThroughputExceeded".into(),
                resource_arn: TABLE_ARN.into()
            })
        );
    }

    #[test]
    fn spread_keys_reach_the_new_table_ceiling_and_no_more() {
        let mut m = model(0);
        let admitted = drive(&mut m, 0, 5, 8_000, |n| vec![put(&format!("k{n}"))]);
        for count in admitted {
            // 4 partitions x 1,000: hashing leaves some partitions a little short.
            assert!(
                (3_800..=4_005).contains(&count),
                "spread keys admitted {count}/s"
            );
        }
    }

    #[test]
    fn the_ceiling_doubles_once_a_peak_is_thirty_minutes_old() {
        let mut m = model(0);
        drive(&mut m, 0, 3, 8_000, |n| vec![put(&format!("k{n}"))]);
        // Within 30 minutes of the peak the ceiling is still the initial 4,000.
        let start = 20 * 60 * NANOS_PER_SECOND;
        let admitted = drive(&mut m, start, 2, 10_000, |n| vec![put(&format!("a{n}"))]);
        assert!(admitted.iter().all(|&c| c <= 4_005), "{admitted:?}");
        // Once the ~4,000/s peak is "previous", up to 2x it is served: 8,000 on 8 partitions.
        let start = 40 * 60 * NANOS_PER_SECOND;
        let admitted = drive(&mut m, start, 2, 10_000, |n| vec![put(&format!("b{n}"))]);
        assert!(
            admitted.iter().all(|&c| (7_400..=8_005).contains(&c)),
            "{admitted:?}"
        );
        assert_eq!(m.tables["t"].table.partition_count(), 8);
    }

    #[test]
    fn a_single_valued_gsi_throttles_base_writes_on_spread_keys() {
        let mut m = model(0);
        let admitted = drive(&mut m, 0, 3, 3_000, |n| {
            gsi_put(&format!("k{n}"), "PROCESSED").to_vec()
        });
        for count in admitted {
            assert!(
                (995..=1_005).contains(&count),
                "GSI-bound writes admitted {count}/s"
            );
        }
        let now = 5 * NANOS_PER_SECOND;
        let mut last = None;
        for n in 0..2_000 {
            if let Err(e) = m.admit(now, &gsi_put(&format!("x{n}"), "PROCESSED")) {
                last = Some(e);
            }
        }
        assert_eq!(
            last,
            Some(Throttle {
                reason: "IndexWriteKeyRangeThroughputExceeded".into(),
                resource_arn: INDEX_ARN.into()
            })
        );
        // The throttled requests consumed nothing from the base table.
        let base = m.tables["t"].table.consumed_write_units;
        let index = &m.tables["t"].indexes["status-index"];
        assert_eq!(base, index.consumed_write_units);
        // One key value: every unit on one partition, which is what throttled.
        let hot: Vec<f64> = index
            .partition_write_units
            .iter()
            .copied()
            .filter(|units| *units > 0.0)
            .collect();
        assert_eq!(hot, vec![index.consumed_write_units]);
    }

    #[test]
    fn reads_and_writes_share_a_partition_as_a_linear_mix() {
        let mut m = model(0);
        let read = Charge {
            access: Access::Read,
            ..put("hot")
        };
        // 1,500 strong reads (= 500 write-equivalents) then 500 writes fill the partition.
        for _ in 0..1_500 {
            assert!(m.admit(0, std::slice::from_ref(&read)).is_ok());
        }
        for _ in 0..500 {
            assert!(m.admit(0, &[put("hot")]).is_ok());
        }
        assert_eq!(
            m.admit(0, &[read]).err().map(|t| t.reason),
            Some("TableReadKeyRangeThroughputExceeded".into())
        );
    }

    #[test]
    fn a_refund_returns_the_capacity() {
        let mut m = model(0);
        for _ in 0..1_000 {
            assert!(m.admit(0, &[put("hot")]).is_ok());
        }
        assert!(m.admit(0, &[put("hot")]).is_err());
        m.refund(0, &put("hot"));
        assert!(m.admit(0, &[put("hot")]).is_ok());
    }
}
