//! Exact decimal amounts, checked on their text: never through a binary float.

/// Why an amount was rejected, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    /// Not `-?[0-9]+(\.[0-9]+)?`.
    Syntax,
    /// Zero or negative.
    NotPositive,
    /// Not below 10^12.
    TooLarge,
    /// More significant fraction digits than the currency's minor unit (the record validator
    /// checks precision itself, after the currency; see decision P3).
    #[cfg(test)]
    Precision,
}

/// A syntactically valid amount, split into its parts (no sign, no leading integer zeros,
/// no trailing fraction zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    negative: bool,
    int: String,
    frac: String,
}

/// Largest number of integer digits below 10^12.
const MAX_INT_DIGITS: usize = 12;

impl Amount {
    /// Check the syntax `-?[0-9]+(\.[0-9]+)?`.
    pub fn parse(text: &str) -> Result<Amount, AmountError> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(AmountError::Syntax);
        }
        Ok(Amount {
            negative,
            int: int.trim_start_matches('0').to_owned(),
            frac: frac.unwrap_or("").trim_end_matches('0').to_owned(),
        })
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    /// Check 0 < value < 10^12 (a negative zero is not positive either).
    pub fn check_range(&self) -> Result<(), AmountError> {
        if self.negative || self.is_zero() {
            Err(AmountError::NotPositive)
        } else if self.int.len() > MAX_INT_DIGITS {
            Err(AmountError::TooLarge)
        } else {
            Ok(())
        }
    }

    /// Significant fraction digits (trailing zeros do not count).
    pub fn scale(&self) -> usize {
        self.frac.len()
    }

    /// The canonical text: no leading zeros, no trailing fraction zeros, no exponent.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(self.int.len() + self.frac.len() + 3);
        if self.negative && !self.is_zero() {
            out.push('-');
        }
        out.push_str(if self.int.is_empty() { "0" } else { &self.int });
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(&self.frac);
        }
        out
    }
}

/// Every amount check in order: syntax, value, precision. Returns the canonical text.
#[cfg(test)]
pub(crate) fn validate_amount(text: &str, minor_unit: u8) -> Result<String, AmountError> {
    let amount = Amount::parse(text)?;
    amount.check_range()?;
    if amount.scale() > usize::from(minor_unit) {
        return Err(AmountError::Precision);
    }
    Ok(amount.canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn syntax() {
        for bad in [
            "", "-", ".5", "5.", "1e3", "+1", "1,000", "1 000", "0x10", "1.2.3", "--1",
        ] {
            assert_eq!(validate_amount(bad, 2), Err(AmountError::Syntax), "{bad}");
        }
    }

    #[test]
    fn range_then_precision() {
        assert_eq!(validate_amount("0", 2), Err(AmountError::NotPositive));
        assert_eq!(validate_amount("0.000", 2), Err(AmountError::NotPositive));
        assert_eq!(validate_amount("-0", 2), Err(AmountError::NotPositive));
        assert_eq!(validate_amount("-5", 2), Err(AmountError::NotPositive));
        assert_eq!(validate_amount("-5.123", 2), Err(AmountError::NotPositive));
        assert_eq!(
            validate_amount("1000000000000", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            validate_amount("1000000000000.00", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            validate_amount("999999999999.99", 2),
            Ok("999999999999.99".into())
        );
        assert_eq!(validate_amount("0.001", 2), Err(AmountError::Precision));
        assert_eq!(validate_amount("1.5", 0), Err(AmountError::Precision));
    }

    #[test]
    fn canonical_form() {
        assert_eq!(validate_amount("10.500", 2), Ok("10.5".into()));
        assert_eq!(validate_amount("007.10", 2), Ok("7.1".into()));
        assert_eq!(validate_amount("100", 0), Ok("100".into()));
        assert_eq!(validate_amount("100.000", 0), Ok("100".into()));
        assert_eq!(validate_amount("0.5", 3), Ok("0.5".into()));
        assert_eq!(
            validate_amount(&format!("1.{}", "0".repeat(500)), 2),
            Ok("1".into())
        );
        assert_eq!(
            validate_amount(&format!("{}1", "0".repeat(500)), 2),
            Ok("1".into())
        );
    }

    proptest! {
        #[test]
        fn amounts_are_exact(int in 1u64..1_000_000_000_000, frac in 0u32..1000, zeros in 0usize..30) {
            let text = format!("{int}.{frac:03}{}", "0".repeat(zeros));
            let canonical = validate_amount(&text, 3).unwrap();
            let (i, f) = canonical.split_once('.').unwrap_or((&canonical, ""));
            prop_assert_eq!(i.parse::<u64>().unwrap(), int);
            let f_padded = format!("{f:0<3}");
            prop_assert_eq!(f_padded.parse::<u32>().unwrap(), frac);
            prop_assert!(!f.ends_with('0'));
        }

        #[test]
        fn never_panics(s in ".*") {
            let _ = validate_amount(&s, 2);
        }
    }
}
