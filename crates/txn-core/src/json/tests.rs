//! Unit tests of the json module.

use super::*;
use proptest::prelude::*;

fn num(s: &str) -> JsonValue {
    JsonValue::Number(s.into())
}

const FILE: ParseOptions = ParseOptions {
    reject_constants: true,
    recursion_limit: RECURSION_LIMIT,
};

/// Where reading stopped ("line L, column C"), or the error's text.
fn stop(text: &str) -> String {
    match parse_with(text, FILE) {
        Ok(_) => "OK".to_owned(),
        Err(JsonError::Syntax { line, column, .. }) => format!("line {line}, column {column}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn numbers_keep_their_text() {
    assert_eq!(
        parse("[10.50, 1e3, -0, 0.1, NaN, -Infinity]"),
        Ok(JsonValue::Array(vec![
            num("10.50"),
            num("1e3"),
            num("-0"),
            num("0.1"),
            num("NaN"),
            num("-Infinity")
        ]))
    );
}

#[test]
fn stops_where_the_python_handler_stops() {
    // Each position is where CPython 3.11's json.loads (the Python handler's parser) stops.
    let cases = [
        ("", "line 1, column 1"),
        (" ", "line 1, column 2"),
        ("[", "line 1, column 2"),
        ("[1,]", "line 1, column 4"),
        ("{\"a\":1,}", "line 1, column 8"),
        ("{\"a\"", "line 1, column 5"),
        ("{\"a\":", "line 1, column 6"),
        ("01", "line 1, column 2"),
        ("[.5]", "line 1, column 2"),
        ("[1.]", "line 1, column 3"),
        ("[\"\t\"]", "line 1, column 3"),
        ("[\"\\x\"]", "line 1, column 3"),
        ("[\"\\u12\"]", "line 1, column 4"),
        ("{\"\\u", "line 1, column 4"),
        ("\"\\u1234", "line 1, column 3"),
        ("\"\\ud800\\u12\"", "line 1, column 9"),
        ("\"\\ud800\\", "line 1, column 1"),
        ("\"\\ud800\\x\"", "line 1, column 8"),
        ("\"\\ud800\\uzzzz\"", "line 1, column 9"),
        ("\"abc", "line 1, column 1"),
        ("[\"a\\\"]", "line 1, column 2"),
        ("[-]", "line 1, column 2"),
        ("[\n1,\n]", "line 3, column 1"),
        ("\u{e9}[", "line 1, column 1"),
        ("\"\u{e9}\n", "line 1, column 3"),
        ("[NaN]", "NaN is not allowed"),
        ("[-Infinityx]", "-Infinity is not allowed"),
        ("[Infinit]", "line 1, column 2"),
        ("[1e5, 1E+5, 1e]", "line 1, column 14"),
        ("1.5e", "line 1, column 4"),
        ("\u{feff}[]", "line 1, column 1"),
        // A bracket closes only its own kind.
        ("{\"a\":1]", "line 1, column 7"),
        ("[1}", "line 1, column 3"),
        ("{]", "line 1, column 2"),
        ("[}", "line 1, column 2"),
    ];
    for (text, want) in cases {
        assert_eq!(stop(text), want, "{text:?}");
    }
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        parse(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#),
        Ok(JsonValue::String(
            "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1F600}".into()
        ))
    );
    let lone = parse_with(r#""\ud800x""#, FILE).unwrap();
    assert!(lone.lone_surrogate);
    assert_eq!(lone.value, JsonValue::String("\u{FFFD}x".into()));
}

#[test]
fn duplicate_keys_keep_first_position_last_value() {
    let v = parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
    assert_eq!(
        v,
        JsonValue::Object(vec![("a".into(), num("3")), ("b".into(), num("2"))])
    );
    let many: Vec<String> = (0..40).map(|i| format!("\"k{}\":{i}", i % 20)).collect();
    let v = parse(&format!("{{{}}}", many.join(","))).unwrap();
    let JsonValue::Object(pairs) = v else {
        panic!("not an object")
    };
    assert_eq!(pairs.len(), 20);
    assert_eq!(pairs[3], ("k3".into(), num("23")));
}

#[test]
fn depth() {
    let ok = "[".repeat(64) + &"]".repeat(64);
    assert_eq!(value_depth(&parse(&ok).unwrap()), 64);
    let deep = "[".repeat(2000) + &"]".repeat(2000);
    assert_eq!(parse(&deep), Err(JsonError::TooDeep));
    assert_eq!(value_depth(&parse("[\"[[[\", {\"a\": [1]}]").unwrap()), 3);
    assert_eq!(value_depth(&parse("1").unwrap()), 0);
}

#[test]
fn round_trips_through_to_json_string() {
    let text = r#"{"a":[1.50,true,null,"x\"y"],"b":{}}"#;
    let v = parse(text).unwrap();
    assert_eq!(v.to_json_string(), text);
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse_with(&text, FILE) {
            let _ = e.to_string();
        }
    }

    #[test]
    fn never_panics_on_json_like_text(text in "[\\[\\]{}\":,0-9a-z\\\\. \n-]{0,80}") {
        if let Err(e) = parse_with(&text, FILE) {
            let _ = e.to_string();
        }
    }
}
