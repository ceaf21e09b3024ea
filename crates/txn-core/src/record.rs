//! The transaction record: fields, validation in table order, the stored item's values and the
//! record hash (design.md section 2).

use sha2::{Digest, Sha256};

use crate::amount::{Amount, AmountError};
use crate::currency::minor_unit;
use crate::error::{ErrorCode, RecordError};
use crate::timestamp::{parse_timestamp, TimestampError};

/// The fields of a record, in the order of design.md's table (the order errors are checked in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// transaction_id (required).
    TransactionId,
    /// account_id (required).
    AccountId,
    /// amount (required).
    Amount,
    /// currency (required).
    Currency,
    /// transaction_type (required).
    TransactionType,
    /// timestamp (required).
    Timestamp,
    /// merchant_id (optional).
    MerchantId,
    /// description (optional).
    Description,
}

impl Field {
    /// Every field in table order.
    pub const ALL: [Field; 8] = [
        Field::TransactionId,
        Field::AccountId,
        Field::Amount,
        Field::Currency,
        Field::TransactionType,
        Field::Timestamp,
        Field::MerchantId,
        Field::Description,
    ];

    /// The attribute / column / JSON key name.
    pub fn name(self) -> &'static str {
        match self {
            Field::TransactionId => "transaction_id",
            Field::AccountId => "account_id",
            Field::Amount => "amount",
            Field::Currency => "currency",
            Field::TransactionType => "transaction_type",
            Field::Timestamp => "timestamp",
            Field::MerchantId => "merchant_id",
            Field::Description => "description",
        }
    }

    /// Look a field up by its exact (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether a record must have it.
    pub fn required(self) -> bool {
        !matches!(self, Field::MerchantId | Field::Description)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The accepted transaction types.
pub(crate) const TRANSACTION_TYPES: [&str; 5] =
    ["DEBIT", "CREDIT", "TRANSFER", "PAYMENT", "REFUND"];

/// One input value as the validator sees it (absent values are `None` in [`InputRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputValue {
    /// A CSV cell, a JSON string or a JSON number's token text (decision P2).
    Text(String),
    /// A JSON value of the wrong type (boolean, array, object); holds the type name.
    WrongType(&'static str),
}

/// The values of one input record, keyed by field, plus the unknown keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InputRecord {
    values: [Option<InputValue>; 8],
    /// The smallest unknown key in code point order (UNKNOWN_FIELD, decision P3).
    pub unknown_field: Option<String>,
}

/// The characters trimmed from every value and header name (decision P1).
pub(crate) fn is_trim_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Trim a value (decision P1).
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_trim_char)
}

impl InputRecord {
    /// Set a field from text: trimmed; empty means absent.
    pub fn set_text(&mut self, field: Field, raw: &str) {
        let value = trim(raw);
        self.values[field.index()] = if value.is_empty() {
            None
        } else {
            Some(InputValue::Text(value.to_owned()))
        };
    }

    /// Set a field to a JSON value of the wrong type.
    pub fn set_wrong_type(&mut self, field: Field, type_name: &'static str) {
        self.values[field.index()] = Some(InputValue::WrongType(type_name));
    }

    /// Mark a field absent (JSON null).
    pub fn clear(&mut self, field: Field) {
        self.values[field.index()] = None;
    }

    /// Note an unknown key; the smallest one is reported.
    pub fn add_unknown(&mut self, key: &str) {
        if self.unknown_field.as_deref().is_none_or(|k| key < k) {
            self.unknown_field = Some(key.to_owned());
        }
    }

    /// The value of a field, if present.
    pub fn get(&self, field: Field) -> Option<&InputValue> {
        self.values[field.index()].as_ref()
    }

    /// The transaction_id to label an error with: the trimmed text when it passes the
    /// transaction_id rule, else `None` (decision P19).
    pub fn transaction_id_hint(&self) -> Option<String> {
        match self.get(Field::TransactionId) {
            Some(InputValue::Text(t)) if is_transaction_id(t) => Some(t.clone()),
            _ => None,
        }
    }
}

/// `[A-Za-z0-9._:-]{1,64}`.
pub(crate) fn is_transaction_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `[A-Za-z0-9]{1,34}`.
fn is_account_id(text: &str) -> bool {
    (1..=34).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A valid transaction: the values that are stored (design.md section 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// 1 to 64 characters of `[A-Za-z0-9._:-]`.
    pub transaction_id: String,
    /// 1 to 34 characters of `[A-Za-z0-9]`.
    pub account_id: String,
    /// Canonical decimal text (no exponent, no trailing fraction zeros).
    pub amount: String,
    /// Upper-case code of contract/currencies.json.
    pub currency: String,
    /// DEBIT, CREDIT, TRANSFER, PAYMENT or REFUND.
    pub transaction_type: String,
    /// Epoch milliseconds, UTC.
    pub timestamp: i64,
    /// Up to 64 characters, when present.
    pub merchant_id: Option<String>,
    /// Up to 256 characters without control characters, when present.
    pub description: Option<String>,
}

/// The status-index key of an item (contract P40): `"<status>#<n>"`, n = the first 8 bytes of
/// SHA-256(transaction_id) as a big-endian integer, mod `shards` (at least 1). Stable for a key,
/// the same in the Python handler.
pub fn status_shard(status: &str, transaction_id: &str, shards: u64) -> String {
    let digest = Sha256::digest(transaction_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("{status}#{}", u64::from_be_bytes(first) % shards.max(1))
}

impl Transaction {
    /// Hex SHA-256 of the validated fields in table order joined with U+001F (absent = "").
    pub fn record_hash(&self) -> String {
        let ts = self.timestamp.to_string();
        let parts: [&str; 8] = [
            &self.transaction_id,
            &self.account_id,
            &self.amount,
            &self.currency,
            &self.transaction_type,
            &ts,
            self.merchant_id.as_deref().unwrap_or(""),
            self.description.as_deref().unwrap_or(""),
        ];
        let mut hasher = Sha256::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                hasher.update([0x1f]);
            }
            hasher.update(part.as_bytes());
        }
        crate::hex(&hasher.finalize())
    }
}

fn err(code: ErrorCode, field: &str, message: impl Into<String>) -> RecordError {
    RecordError {
        code,
        field: Some(field.to_owned()),
        message: message.into(),
    }
}

/// The trimmed text of a field, `None` when absent, or INVALID_FORMAT for a wrong JSON type.
fn field_text(input: &InputRecord, field: Field) -> Result<Option<&str>, RecordError> {
    match input.get(field) {
        None => Ok(None),
        Some(InputValue::Text(t)) => Ok(Some(t)),
        Some(InputValue::WrongType(type_name)) => Err(err(
            ErrorCode::InvalidFormat,
            field.name(),
            format!("{}: wrong JSON type ({type_name})", field.name()),
        )),
    }
}

fn required(input: &InputRecord, field: Field) -> Result<&str, RecordError> {
    field_text(input, field)?.ok_or_else(|| {
        err(
            ErrorCode::MissingField,
            field.name(),
            format!("{}: required field is missing or empty", field.name()),
        )
    })
}

/// ASCII-only upper-casing: `None` for text with non-ASCII characters (decisions P5, P6).
fn upper_ascii(text: &str) -> Option<String> {
    text.is_ascii().then(|| text.to_ascii_uppercase())
}

/// Validate a record: every rule of design.md section 2, first error in the order of
/// decision P3.
pub(crate) fn validate(input: &InputRecord) -> Result<Transaction, RecordError> {
    let transaction_id = required(input, Field::TransactionId)?;
    if !is_transaction_id(transaction_id) {
        return Err(err(
            ErrorCode::InvalidFormat,
            "transaction_id",
            "transaction_id: must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    let account_id = required(input, Field::AccountId)?;
    if !is_account_id(account_id) {
        return Err(err(
            ErrorCode::InvalidFormat,
            "account_id",
            "account_id: must be 1 to 34 characters of A-Z a-z 0-9",
        ));
    }
    let amount_text = required(input, Field::Amount)?;
    let amount = Amount::parse(amount_text).map_err(|_| {
        err(
            ErrorCode::InvalidFormat,
            "amount",
            "amount: must be a plain decimal number like 12.34 (no exponent, '+', separators)",
        )
    })?;
    amount.check_range().map_err(|e| {
        let message = match e {
            AmountError::TooLarge => "amount: must be less than 10^12",
            _ => "amount: must be greater than 0",
        };
        err(ErrorCode::InvalidValue, "amount", message)
    })?;
    let currency_text = required(input, Field::Currency)?;
    let currency = upper_ascii(currency_text);
    let Some((currency, minor)) = currency.and_then(|c| minor_unit(&c).map(|m| (c, m))) else {
        return Err(err(
            ErrorCode::UnknownCurrency,
            "currency",
            "currency: not an accepted ISO 4217 currency code",
        ));
    };
    if amount.scale() > usize::from(minor) {
        return Err(err(
            ErrorCode::PrecisionExceeded,
            "amount",
            format!("amount: more than {minor} fraction digits for {currency}"),
        ));
    }
    let type_text = required(input, Field::TransactionType)?;
    let transaction_type = upper_ascii(type_text)
        .filter(|t| TRANSACTION_TYPES.contains(&t.as_str()))
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidValue,
                "transaction_type",
                "transaction_type: must be one of DEBIT, CREDIT, TRANSFER, PAYMENT, REFUND",
            )
        })?;
    let timestamp_text = required(input, Field::Timestamp)?;
    let timestamp = parse_timestamp(timestamp_text).map_err(|e| match e {
        TimestampError::Format => err(
            ErrorCode::InvalidFormat,
            "timestamp",
            "timestamp: must be an RFC 3339 date-time with offset, e.g. 2024-01-31T12:00:00Z",
        ),
        TimestampError::Range => err(
            ErrorCode::InvalidValue,
            "timestamp",
            "timestamp: must be from 2000-01-01T00:00:00Z to before 2100-01-01T00:00:00Z",
        ),
    })?;
    let merchant_id = field_text(input, Field::MerchantId)?;
    if merchant_id.is_some_and(|m| m.chars().count() > 64) {
        return Err(err(
            ErrorCode::InvalidFormat,
            "merchant_id",
            "merchant_id: at most 64 characters",
        ));
    }
    let description = field_text(input, Field::Description)?;
    if description.is_some_and(|d| d.chars().count() > 256 || d.chars().any(char::is_control)) {
        return Err(err(
            ErrorCode::InvalidFormat,
            "description",
            "description: at most 256 characters and no control characters",
        ));
    }
    if let Some(key) = &input.unknown_field {
        let name = truncate_chars(key, crate::messages::ECHO_MAX_VALUE_CHARS);
        return Err(err(
            ErrorCode::UnknownField,
            name,
            format!("{name}: unknown field"),
        ));
    }
    Ok(Transaction {
        transaction_id: transaction_id.to_owned(),
        account_id: account_id.to_owned(),
        amount: amount.canonical(),
        currency,
        transaction_type,
        timestamp,
        merchant_id: merchant_id.map(str::to_owned),
        description: description.map(str::to_owned),
    })
}

/// The first `n` characters of `s` (Python's `s[:n]`).
pub fn truncate_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, &str)]) -> InputRecord {
        let mut r = InputRecord::default();
        for (k, v) in pairs {
            match Field::from_name(k) {
                Some(f) => r.set_text(f, v),
                None => r.add_unknown(k),
            }
        }
        r
    }

    const VALID: [(&str, &str); 6] = [
        ("transaction_id", "TX-1"),
        ("account_id", "DE89370400440532013000"),
        ("amount", "125.50"),
        ("currency", "eur"),
        ("transaction_type", " debit "),
        ("timestamp", "2024-01-15T10:30:00Z"),
    ];

    fn with(changes: &[(&str, &str)]) -> InputRecord {
        let mut pairs: Vec<(&str, &str)> = VALID.to_vec();
        for (k, v) in changes {
            match pairs.iter_mut().find(|(pk, _)| pk == k) {
                Some(slot) => slot.1 = v,
                None => pairs.push((k, v)),
            }
        }
        record(&pairs)
    }

    fn code_of(r: &InputRecord) -> (ErrorCode, String) {
        let e = validate(r).unwrap_err();
        (e.code, e.field.unwrap_or_default())
    }

    #[test]
    fn valid_record_and_hash() {
        let tx = validate(&with(&[])).unwrap();
        assert_eq!(tx.amount, "125.5");
        assert_eq!(tx.currency, "EUR");
        assert_eq!(tx.transaction_type, "DEBIT");
        assert_eq!(tx.timestamp, 1_705_314_600_000);
        // hashlib.sha256("\\x1f".join([... , "", ""]).encode()).hexdigest() in Python:
        assert_eq!(
            tx.record_hash(),
            "1ced5c3f2e56aad7d30585a2c4df2d42def897276f7c10c5fb2d8aa831c1542e"
        );
        assert_eq!(tx.record_hash().len(), 64);
    }

    #[test]
    fn first_error_in_order() {
        use ErrorCode::*;
        let long_merchant = "M".repeat(65);
        type Case<'a> = (Vec<(&'a str, &'a str)>, ErrorCode, &'a str);
        let cases: Vec<Case> = vec![
            (vec![("transaction_id", "")], MissingField, "transaction_id"),
            (
                vec![("transaction_id", "X 5"), ("account_id", "")],
                InvalidFormat,
                "transaction_id",
            ),
            (
                vec![("account_id", "BAD-ACCT"), ("currency", "XYZ")],
                InvalidFormat,
                "account_id",
            ),
            (
                vec![("amount", "abc"), ("currency", "XYZ")],
                InvalidFormat,
                "amount",
            ),
            (
                vec![("amount", "0"), ("currency", "XYZ")],
                InvalidValue,
                "amount",
            ),
            (vec![("amount", "-0.001")], InvalidValue, "amount"),
            (
                vec![("amount", "1.234567"), ("currency", "XYZ")],
                UnknownCurrency,
                "currency",
            ),
            (vec![("currency", "\u{20ac}")], UnknownCurrency, "currency"),
            (vec![("amount", "1.234")], PrecisionExceeded, "amount"),
            (
                vec![("amount", "1.5"), ("currency", "JPY")],
                PrecisionExceeded,
                "amount",
            ),
            (
                vec![("transaction_type", "WITHDRAWAL"), ("timestamp", "x")],
                InvalidValue,
                "transaction_type",
            ),
            (
                vec![("timestamp", "not-a-date")],
                InvalidFormat,
                "timestamp",
            ),
            (
                vec![("timestamp", "1999-01-01T00:00:00Z")],
                InvalidValue,
                "timestamp",
            ),
            (
                vec![("merchant_id", &long_merchant)],
                InvalidFormat,
                "merchant_id",
            ),
            (
                vec![("description", "tab\there")],
                InvalidFormat,
                "description",
            ),
            (vec![("zeta", "1"), ("alpha", "2")], UnknownField, "alpha"),
        ];
        for (changes, code, field) in cases {
            assert_eq!(
                code_of(&with(&changes)),
                (code, field.to_owned()),
                "{changes:?}"
            );
        }
    }

    #[test]
    fn wrong_json_type() {
        let mut r = with(&[]);
        r.set_wrong_type(Field::Amount, "boolean");
        let e = validate(&r).unwrap_err();
        assert_eq!(e.message, "amount: wrong JSON type (boolean)");
    }

    #[test]
    fn trimming_is_ascii_whitespace_only() {
        assert_eq!(trim(" \t\n\r\x0cX\x0c"), "X");
        assert_eq!(trim("\u{a0}X"), "\u{a0}X");
        assert_eq!(trim("\x0bX"), "\x0bX");
    }

    #[test]
    fn transaction_id_hint() {
        assert_eq!(
            with(&[("transaction_id", " X-1 ")]).transaction_id_hint(),
            Some("X-1".into())
        );
        assert_eq!(
            with(&[("transaction_id", "X 5")]).transaction_id_hint(),
            None
        );
    }
}
