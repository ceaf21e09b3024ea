//! The HTTP endpoint: meters every DynamoDB request against the model, answers throttled ones
//! as AWS does, forwards admitted ones byte for byte to the upstream, and serves the admin
//! paths under `/_faithful/`.

pub use crate::latency::Latency;
use crate::model::{Charge, Clock, Limits, ManualClock, Model, RealClock};
use crate::replies::{internal_error, reply, Reply, AMZ_JSON};
pub use crate::replies::{throttle_body, THROTTLING_MESSAGE, THROTTLING_TYPE};
use crate::request::{item_of, key_of, query_partition_value, returned_bytes, table_of};
use crate::schema::{encode_key, TableDef, TRANSACTION_FACTOR};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand_distr::{Distribution, LogNormal};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// A client's request as received: what an admitted request forwards upstream unchanged.
struct Received {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Everything the endpoint is started with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Base URL of the DynamoDB API requests go to (`http://host:port`).
    pub upstream: String,
    pub latency: Latency,
    pub limits: Limits,
    pub manual_clock: bool,
    /// ARN prefix the upstream uses and the one clients should see (the in-memory store names
    /// its tables `arn:aws:dynamodb:dynoxide:000000000000:`; AWS and moto use region + account).
    pub arn_rewrite: Option<(String, String)>,
}

/// The ARN prefix of dynoxide's tables.
pub const MEMORY_ARN_PREFIX: &str = "arn:aws:dynamodb:dynoxide:000000000000:";

#[derive(Default)]
struct Stats {
    requests: u64,
    admitted: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
    unmetered: BTreeMap<String, u64>,
}

/// Shared state of a running endpoint.
pub struct App {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    model: Mutex<Model>,
    tables: Mutex<HashMap<String, Arc<TableDef>>>,
    stats: Mutex<Stats>,
    latency: Option<LogNormal<f64>>,
    arn_rewrite: Option<(String, String)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain counters behind; keep serving.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    pub fn new(config: &Config) -> Arc<Self> {
        let manual = config
            .manual_clock
            .then(|| Arc::new(ManualClock::default()));
        let clock: Arc<dyn Clock> = match &manual {
            Some(m) => m.clone(),
            None => Arc::new(RealClock::new()),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Arc::new(Self {
            upstream: config.upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            clock,
            manual,
            model: Mutex::new(Model::new(config.limits.clone())),
            tables: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            latency: config.latency.distribution(),
            arn_rewrite: config.arn_rewrite.clone(),
        })
    }

    async fn send(&self, received: Received) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let mut request = Request::new(Full::new(received.body));
        *request.method_mut() = received.method;
        *request.uri_mut() = format!("{}{}", self.upstream, received.path_and_query)
            .parse()
            .map_err(|e| format!("bad upstream URI: {e}"))?;
        for (name, value) in &received.headers {
            if name != hyper::header::HOST {
                request.headers_mut().append(name, value.clone());
            }
        }
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("upstream {} unreachable: {e}", self.upstream))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("upstream body: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    async fn forward(&self, received: Received) -> Reply {
        match self.send(received).await {
            Ok((status, upstream_headers, body)) => {
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                for (name, value) in &upstream_headers {
                    if name != hyper::header::TRANSFER_ENCODING && name != hyper::header::CONNECTION
                    {
                        response.headers_mut().append(name, value.clone());
                    }
                }
                response
            }
            Err(message) => internal_error(&message),
        }
    }

    /// The table's definition, asked of the upstream once (DescribeTable with the client's own
    /// headers, so the upstream picks the same region and accepts the auth header).
    async fn table_def(&self, name: &str, headers: &HeaderMap) -> Option<Arc<TableDef>> {
        if let Some(def) = lock(&self.tables).get(name) {
            return Some(def.clone());
        }
        let mut describe_headers = headers.clone();
        describe_headers.remove(hyper::header::CONTENT_LENGTH);
        describe_headers.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.DescribeTable"),
        );
        let body = Bytes::from(json!({"TableName": name}).to_string());
        let describe = Received {
            method: Method::POST,
            path_and_query: "/".to_owned(),
            headers: describe_headers,
            body,
        };
        let (status, _, body) = self.send(describe).await.ok()?;
        if status != StatusCode::OK {
            return None;
        }
        let body = self.rewrite_arns(body);
        let def = Arc::new(TableDef::from_describe(
            &serde_json::from_slice(&body).ok()?,
        )?);
        let indexes: Vec<(String, String)> = def
            .indexes
            .iter()
            .map(|i| (i.name.clone(), i.arn.clone()))
            .collect();
        let now = self.clock.now_nanos();
        lock(&self.model).ensure_table(name, &def.arn, &indexes, now);
        lock(&self.tables).insert(name.to_string(), def.clone());
        Some(def)
    }

    fn rewrite_arns(&self, body: Bytes) -> Bytes {
        match &self.arn_rewrite {
            Some((from, to)) => match std::str::from_utf8(&body) {
                Ok(text) if text.contains(from.as_str()) => {
                    Bytes::from(text.replace(from.as_str(), to))
                }
                _ => body,
            },
            None => body,
        }
    }

    fn forget_table(&self, name: &str) {
        lock(&self.tables).remove(name);
        lock(&self.model).forget_table(name);
    }

    /// Meter a request; Some(answer) when it is throttled.
    fn admit(&self, op: &str, charges: &[Charge]) -> Option<Reply> {
        let now = self.clock.now_nanos();
        let result = lock(&self.model).admit(now, charges);
        let mut stats = lock(&self.stats);
        match result {
            Ok(()) => {
                *stats.admitted.entry(op.to_string()).or_default() += 1;
                None
            }
            Err(throttle) => {
                *stats.throttled.entry(throttle.reason.clone()).or_default() += 1;
                Some(reply(
                    StatusCode::BAD_REQUEST,
                    AMZ_JSON,
                    throttle_body(&throttle),
                ))
            }
        }
    }

    fn unmetered(&self, op: &str) {
        *lock(&self.stats)
            .unmetered
            .entry(op.to_string())
            .or_default() += 1;
    }

    async fn dynamodb(&self, op: &str, received: Received) -> Reply {
        let request: Value = match serde_json::from_slice(&received.body) {
            Ok(v) => v,
            // Not JSON: the upstream answers it (SerializationException).
            Err(_) => return self.forward(received).await,
        };
        match op {
            "CreateTable" | "DeleteTable" | "UpdateTable" | "DescribeTable" => {
                let response = self.forward(received).await;
                let response = self.with_rewritten_arns(response);
                if op == "DescribeTable" {
                    return response;
                }
                if let Some(table) = table_of(&request) {
                    self.forget_table(table);
                }
                return response;
            }
            "PutItem" | "UpdateItem" | "DeleteItem" | "GetItem" | "Query" | "Scan" => {}
            "TransactWriteItems" => return self.transact_write(&request, received).await,
            _ => {
                self.unmetered(op);
                return self.forward(received).await;
            }
        }
        let def = match table_of(&request) {
            Some(table) => self.table_def(table, &received.headers).await,
            None => None,
        };
        let Some(def) = def else {
            // Unknown table or malformed request: the upstream gives the exact error.
            self.unmetered(op);
            return self.forward(received).await;
        };
        match op {
            "PutItem" => {
                let Some(item) = item_of(&request) else {
                    self.unmetered(op);
                    return self.forward(received).await;
                };
                let charges = def.put_charges(item, 1.0);
                if let Some(throttled) = self.admit(op, &charges) {
                    return throttled;
                }
                let (status, response) = self.forward_bytes(received).await;
                // A failed condition still consumes the base write, but no index entry is written.
                if status == StatusCode::BAD_REQUEST {
                    let now = self.clock.now_nanos();
                    let mut model = lock(&self.model);
                    for charge in charges.iter().filter(|c| c.index.is_some()) {
                        model.refund(now, charge);
                    }
                }
                response
            }
            "UpdateItem" | "DeleteItem" => {
                let charge = key_of(&request).map(|key| def.key_write_charge(key, 1.0));
                if let Some(throttled) = self.admit(op, charge.as_slice()) {
                    return throttled;
                }
                self.forward(received).await
            }
            _ => self.read(op, &def, &request, received).await,
        }
    }

    /// Table-level answers carry ARNs; show clients the configured region and account.
    fn with_rewritten_arns(&self, response: Reply) -> Reply {
        if self.arn_rewrite.is_none() {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let Some(bytes) = body.into_inner() else {
            return Response::from_parts(parts, Full::new(Bytes::new()));
        };
        let bytes = self.rewrite_arns(bytes);
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
        parts
            .headers
            .insert("x-amz-crc32", HeaderValue::from(crc32fast::hash(&bytes)));
        Response::from_parts(parts, Full::new(bytes))
    }

    async fn forward_bytes(&self, received: Received) -> (StatusCode, Reply) {
        let response = self.forward(received).await;
        (response.status(), response)
    }

    async fn read(&self, op: &str, def: &TableDef, request: &Value, received: Received) -> Reply {
        let index = request.get("IndexName").and_then(Value::as_str);
        let consistent = index.is_none()
            && request
                .get("ConsistentRead")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let partition_key = match op {
            "GetItem" => key_of(request)
                .and_then(|k| k.get(&def.hash_key))
                .map(encode_key),
            "Query" => {
                let attribute = match index.and_then(|i| def.index(i)) {
                    Some(gsi) => &gsi.hash_key,
                    None => &def.hash_key,
                };
                query_partition_value(request, attribute)
                    .as_ref()
                    .map(encode_key)
            }
            _ => None,
        };
        let minimum = def.read_charge(index, partition_key, 0, consistent);
        if let Some(throttled) = self.admit(op, std::slice::from_ref(&minimum)) {
            return throttled;
        }
        let response = self.forward(received).await;
        if response.status() == StatusCode::OK {
            let body = response
                .body()
                .clone()
                .collect()
                .await
                .map(|c| c.to_bytes());
            if let Ok(Ok(parsed)) = body.map(|b| serde_json::from_slice::<Value>(&b)) {
                let full = crate::capacity::read_units(returned_bytes(&parsed), consistent);
                if full > minimum.units {
                    let extra = Charge {
                        units: full - minimum.units,
                        ..minimum
                    };
                    lock(&self.model).consume(self.clock.now_nanos(), &extra);
                }
            }
        }
        response
    }

    /// TransactWriteItems: charged at 2 WRU per KB per item (transaction-apis.html) but never
    /// throttled: AWS reports a throttled transaction as a TransactionCanceledException whose
    /// exact wording is not documented, and the pipeline does not use transactions.
    async fn transact_write(&self, request: &Value, received: Received) -> Reply {
        let mut charges = Vec::new();
        for action in request
            .get("TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for (kind, inner) in action.as_object().into_iter().flatten() {
                let Some(table) = table_of(inner) else {
                    continue;
                };
                let Some(def) = self.table_def(table, &received.headers).await else {
                    continue;
                };
                match (kind.as_str(), item_of(inner), key_of(inner)) {
                    ("Put", Some(item), _) => {
                        charges.extend(def.put_charges(item, TRANSACTION_FACTOR))
                    }
                    (_, _, Some(key)) => {
                        charges.push(def.key_write_charge(key, TRANSACTION_FACTOR))
                    }
                    _ => {}
                }
            }
        }
        let response = self.forward(received).await;
        if response.status() == StatusCode::OK {
            let now = self.clock.now_nanos();
            let mut model = lock(&self.model);
            for charge in &charges {
                model.consume(now, charge);
            }
        }
        *lock(&self.stats)
            .admitted
            .entry("TransactWriteItems".into())
            .or_default() += 1;
        response
    }

    fn stats_json(&self) -> Value {
        let stats = lock(&self.stats);
        let model = lock(&self.model);
        let mut resources = serde_json::Map::new();
        for (table, state) in &model.tables {
            let mut all = vec![(table.clone(), &state.table)];
            all.extend(
                state
                    .indexes
                    .iter()
                    .map(|(i, r)| (format!("{table}/index/{i}"), r)),
            );
            for (name, r) in all {
                resources.insert(
                    name,
                    json!({
                        "arn": r.arn,
                        "partitions": r.partition_count(),
                        "ceiling_write_units_per_s": r.ceiling(),
                        "consumed_write_units": r.consumed_write_units,
                        "consumed_read_units": r.consumed_read_units,
                        "partition_write_units": r.partition_write_units,
                        "highest_second_write_equivalent_units": r.highest_second(),
                    }),
                );
            }
        }
        json!({
            "requests": stats.requests,
            "admitted": stats.admitted,
            "throttled": stats.throttled,
            "throttled_total": stats.throttled.values().sum::<u64>(),
            "unmetered": stats.unmetered,
            "clock_ms": self.clock.now_nanos() / 1_000_000,
            "resources": resources,
        })
    }

    fn admin(&self, method: &Method, path: &str, query: Option<&str>) -> Reply {
        let json_reply = |v: Value| reply(StatusCode::OK, "application/json", v.to_string());
        match (method, path) {
            (&Method::GET, "/_faithful/health") => json_reply(json!({"ok": true})),
            (&Method::GET, "/_faithful/stats") => json_reply(self.stats_json()),
            (&Method::POST, "/_faithful/reset") => {
                lock(&self.tables).clear();
                lock(&self.model).tables.clear();
                *lock(&self.stats) = Stats::default();
                json_reply(json!({"ok": true}))
            }
            (&Method::POST, "/_faithful/advance") => {
                let Some(manual) = &self.manual else {
                    return reply(
                        StatusCode::CONFLICT,
                        "text/plain",
                        "advance needs --clock manual\n",
                    );
                };
                let ms = query
                    .into_iter()
                    .flat_map(|q| q.split('&'))
                    .find_map(|pair| pair.strip_prefix("ms="))
                    .and_then(|v| v.parse::<u64>().ok());
                let Some(ms) = ms else {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        "text/plain",
                        "advance needs ?ms=<whole milliseconds>\n",
                    );
                };
                manual.advance_nanos(ms.saturating_mul(1_000_000));
                json_reply(json!({"clock_ms": self.clock.now_nanos() / 1_000_000}))
            }
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "unknown admin path\n"),
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Reply, Infallible> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Ok(internal_error(&format!("reading the request body: {e}"))),
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        if parts.uri.path().starts_with("/_faithful/") {
            return Ok(self.admin(&parts.method, parts.uri.path(), parts.uri.query()));
        }
        let op = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .map(str::to_string);
        let received = Received {
            method: parts.method,
            path_and_query: path,
            headers: parts.headers,
            body,
        };
        let Some(op) = op else {
            // Not DynamoDB (the emulator serves every service on one port): pass it through.
            return Ok(self.forward(received).await);
        };
        lock(&self.stats).requests += 1;
        if let Some(latency) = &self.latency {
            let ms = latency.sample(&mut rand::thread_rng());
            tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
        }
        Ok(self.dynamodb(&op, received).await)
    }
}

/// Accept connections on `listener` until the process ends.
pub async fn serve(app: Arc<App>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| app.clone().handle(request));
            // A client that drops its connection ends only its own task.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The in-memory backend: dynoxide's DynamoDB server on a private loopback port of this
/// process. Returns its base URL.
pub async fn start_memory_backend() -> Result<String, String> {
    let db = dynoxide::Database::memory().map_err(|e| format!("in-memory database: {e}"))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding the in-memory backend: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("in-memory backend address: {e}"))?;
    tokio::spawn(dynoxide::server::serve_on(listener, db));
    Ok(format!("http://{addr}"))
}
