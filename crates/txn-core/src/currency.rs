//! The project's ISO 4217 table (decision P5): contract/currencies.json, included at build time.
//!
//! The Python handler embeds a copy of the same file (it is packaged alone); its unit test
//! tests/unit/test_contract.py fails when the copy drifts. This crate cannot drift: it has no
//! table of its own.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// contract/currencies.json as this crate was built with it.
const CONTRACT_JSON: &str = include_str!("../../../contract/currencies.json");

#[derive(serde::Deserialize)]
struct Contract {
    minor_units: BTreeMap<String, u8>,
}

/// Code -> minor unit (fraction digits), parsed once.
fn table() -> &'static BTreeMap<String, u8> {
    static TABLE: OnceLock<BTreeMap<String, u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Not input-derived: the text is part of the build, and every test run parses it
        // (`contract_table_parses` below), so this cannot fail in a tested build.
        serde_json::from_str::<Contract>(CONTRACT_JSON)
            .map(|contract| contract.minor_units)
            .expect("contract/currencies.json: {\"minor_units\": {code: digits}}")
    })
}

/// The minor unit of an (upper-case) code, or `None` when the code is not in the table.
pub fn minor_unit(code: &str) -> Option<u8> {
    table().get(code).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_table_parses() {
        let table = table();
        assert_eq!(table.len(), 165);
        assert!(table
            .iter()
            .all(|(c, m)| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) && *m <= 4));
        // P5: the "N.A." codes are not transaction currencies.
        for code in "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX".split(' ') {
            assert_eq!(minor_unit(code), None, "{code}");
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(minor_unit("EUR"), Some(2));
        assert_eq!(minor_unit("JPY"), Some(0));
        assert_eq!(minor_unit("KWD"), Some(3));
        assert_eq!(minor_unit("BHD"), Some(3));
        assert_eq!(minor_unit("CLF"), Some(4));
        assert_eq!(minor_unit("eur"), None);
        assert_eq!(minor_unit("XYZ"), None);
        assert_eq!(minor_unit(""), None);
    }
}
