//! The endpoint's HTTP answers: the throttle answer exactly as DynamoDB sends it, and the
//! endpoint's own errors.

use crate::model::Throttle;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

pub(crate) const AMZ_JSON: &str = "application/x-amz-json-1.0";

/// `__type` of an on-demand throttle, as DynamoDB sends it (seen in real 2021-2024 logs; the
/// error is modelled since 2025-08, see
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html).
pub const THROTTLING_TYPE: &str = "com.amazon.coral.availability#ThrottlingException";
/// Its message, word for word. Documented with the hot-key guidance at
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
pub const THROTTLING_MESSAGE: &str = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";

pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let body: Bytes = body.into();
    let crc = crc32fast::hash(&body);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    headers.insert("x-amz-crc32", HeaderValue::from(crc));
    response
}

/// The throttle answer, as DynamoDB sends it: HTTP 400, `application/x-amz-json-1.0`,
/// `__type`, `message`, and `ThrottlingReasons` (reason + resource ARN; shape in
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html).
pub fn throttle_body(throttle: &Throttle) -> String {
    let reasons = json!([{"reason": throttle.reason, "resource": throttle.resource_arn}]);
    format!(
        r#"{{"__type":{},"message":{},"ThrottlingReasons":{}}}"#,
        Value::from(THROTTLING_TYPE),
        Value::from(THROTTLING_MESSAGE),
        reasons
    )
}

pub(crate) fn internal_error(message: &str) -> Reply {
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": format!("ddb-faithful: {message}"),
    });
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        AMZ_JSON,
        body.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_body_is_aws_s() {
        let body = throttle_body(&Throttle {
            reason: "TableWriteKeyRangeThroughputExceeded".into(),
            resource_arn: "arn:aws:dynamodb:eu-central-1:123456789012:table/t".into(),
        });
        assert_eq!(
            body,
            concat!(
                r#"{"__type":"com.amazon.coral.availability#ThrottlingException","#,
                r#""message":"Throughput exceeds the current capacity of your table or index. "#,
                r#"DynamoDB is automatically scaling your table or index so please try again "#,
                r#"shortly. If exceptions persist, check if you have a hot key: "#,
                r#"https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html","#,
                r#""ThrottlingReasons":[{"reason":"TableWriteKeyRangeThroughputExceeded","#,
                r#""resource":"arn:aws:dynamodb:eu-central-1:123456789012:table/t"}]}"#
            )
        );
    }
}
