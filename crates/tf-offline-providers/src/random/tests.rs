//! Tests of the random_id stand-in: encodings, plan and replacement rules, import.

use super::*;
use std::collections::BTreeMap;

fn keepers<'a>(pairs: &[(&'a str, Option<&'a str>)]) -> ValueMap<'a, ValueString<'a>> {
    Value::Value(
        pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.map(Cow::Borrowed).into()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn encodings_agree_with_each_other() {
    let bytes = [0xfb, 0xff, 0x00, 0x10, 0x7e];
    let enc = encodings(&bytes, "");
    assert_eq!(enc.id, "-_8AEH4");
    assert_eq!(enc.b64_url, enc.id);
    assert_eq!(enc.b64_std, "+/8AEH4=");
    assert_eq!(enc.hex, "fbff00107e");
    assert_eq!(enc.dec, "1082314985598");
    assert_eq!(u64::from_str_radix(&enc.hex, 16).ok(), enc.dec.parse().ok());

    let prefixed = encodings(&bytes, "pre-");
    assert_eq!(prefixed.id, enc.id, "id never carries the prefix");
    assert_eq!(prefixed.b64_url, "pre--_8AEH4");
    assert_eq!(prefixed.b64_std, "pre-+/8AEH4=");
    assert_eq!(prefixed.hex, "pre-fbff00107e");
    assert_eq!(prefixed.dec, "pre-1082314985598");
}

#[test]
fn decimal_handles_large_and_edge_values() {
    assert_eq!(big_endian_to_decimal(&[]), "0");
    assert_eq!(big_endian_to_decimal(&[0, 0]), "0");
    assert_eq!(big_endian_to_decimal(&[0, 1]), "1");
    assert_eq!(big_endian_to_decimal(&[0xff; 8]), u64::MAX.to_string());
    assert_eq!(big_endian_to_decimal(&[0xff; 16]), u128::MAX.to_string());
    assert_eq!(
        big_endian_to_decimal(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (1u128 << 120).to_string()
    );
    // 10^9 boundaries inside the limb arithmetic.
    assert_eq!(
        big_endian_to_decimal(&1_000_000_000u64.to_be_bytes()),
        "1000000000"
    );
    assert_eq!(
        big_endian_to_decimal(&999_999_999u64.to_be_bytes()),
        "999999999"
    );
}

#[test]
fn created_state_is_consistent() {
    let planned = RandomIdState {
        byte_length: Value::Value(8),
        prefix: Value::Value("x-".into()),
        ..Default::default()
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("randomness");
    let enc = with_encodings(planned, &bytes).encodings;
    let id = enc.id.as_ref_option().expect("id").to_string();
    assert_eq!(id.len(), 11);
    assert_eq!(URL_SAFE_NO_PAD.decode(&id).expect("b64url"), bytes);
    assert_eq!(enc.b64_url, Value::Value(format!("x-{id}").into()));
    let hex = enc.hex.as_ref_option().expect("hex").to_string();
    let dec = enc.dec.as_ref_option().expect("dec").to_string();
    let from_hex = u64::from_str_radix(hex.trim_start_matches("x-"), 16).expect("hex");
    assert_eq!(
        dec.trim_start_matches("x-").parse::<u64>().ok(),
        Some(from_hex)
    );
}

#[test]
fn byte_length_bounds() {
    assert_eq!(byte_length(&Value::Value(8)), Ok(Some(8)));
    assert_eq!(byte_length(&Value::Unknown), Ok(None));
    assert!(byte_length(&Value::Value(0)).is_err());
    assert!(byte_length(&Value::Value(-3)).is_err());
    assert!(byte_length(&Value::Value(MAX_BYTE_LENGTH + 1)).is_err());
}

#[test]
fn keepers_replacement_rules() {
    let a = keepers(&[("k", Some("1"))]);
    assert!(!keepers_require_replace(&a, &a.clone()));
    assert!(keepers_require_replace(&a, &keepers(&[("k", Some("2"))])));
    assert!(keepers_require_replace(&a, &keepers(&[])), "removed key");
    assert!(keepers_require_replace(&a, &Value::Null));
    assert!(keepers_require_replace(&a, &Value::Unknown));
    assert!(
        !keepers_require_replace(&a, &keepers(&[("k", Some("1")), ("n", None)])),
        "added null value"
    );
    assert!(keepers_require_replace(
        &a,
        &keepers(&[("k", Some("1")), ("n", Some("v"))])
    ));
    assert!(!keepers_require_replace(
        &Value::Null,
        &keepers(&[("n", None)])
    ));
    assert!(keepers_require_replace(
        &Value::Null,
        &keepers(&[("n", Some("v"))])
    ));
    assert!(!keepers_require_replace(&Value::Null, &Value::Null));
}

#[test]
fn plan_keeps_values_unless_a_force_new_attribute_changes() {
    let prior = with_encodings(
        RandomIdState {
            byte_length: Value::Value(4),
            keepers: keepers(&[("hash", Some("abc"))]),
            ..Default::default()
        },
        &[1, 2, 3, 4],
    );
    assert!(replace_triggers(&prior, &prior.clone()).is_empty());

    let mut longer = prior.clone();
    longer.byte_length = Value::Value(5);
    assert_eq!(
        replace_triggers(&prior, &longer),
        vec![AttributePath::new("byte_length")]
    );

    let mut prefixed = prior.clone();
    prefixed.prefix = Value::Value("p".into());
    assert_eq!(
        replace_triggers(&prior, &prefixed),
        vec![AttributePath::new("prefix")]
    );

    let mut rekeyed = prior.clone();
    rekeyed.keepers = keepers(&[("hash", Some("def"))]);
    assert_eq!(
        replace_triggers(&prior, &rekeyed),
        vec![AttributePath::new("keepers")]
    );
}

#[test]
fn import_parses_prefix_and_id() {
    let state = import_state("pre,AQIDBA").expect("import");
    assert_eq!(state.byte_length, Value::Value(4));
    assert_eq!(state.prefix, Value::Value("pre".into()));
    assert_eq!(state.encodings.id, Value::Value("AQIDBA".into()));
    assert_eq!(state.encodings.hex, Value::Value("pre01020304".into()));
    assert_eq!(state.encodings.dec, Value::Value("pre16909060".into()));
    let plain = import_state("AQIDBA").expect("import");
    assert_eq!(plain.prefix, Value::Null);
    assert!(import_state("not base64!").is_err());
}
