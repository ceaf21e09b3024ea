//! Stand-in for `hashicorp/random` 3.7.2: the `random_id` resource.
//!
//! Same schema and plan behaviour as the real resource: `byte_length` and
//! `prefix` force a new id, `keepers` forces one when its non-null values
//! change, the computed encodings keep their prior values otherwise (so a
//! second plan shows no change). Import takes `[prefix,]b64url` like the real one.

use std::borrow::Cow;
use std::collections::HashMap;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueEmpty, ValueMap, ValueNumber, ValueString};
use tf_provider::{map, AttributePath, Diagnostics, Resource};

use crate::provider::StandInProvider;
use crate::schema_util::{attr, schema};

/// Largest `byte_length` accepted (the real provider has no limit; this only
/// keeps a typo from allocating gigabytes).
const MAX_BYTE_LENGTH: i64 = 1 << 20;

/// The `hashicorp/random` provider: no configuration, one resource.
pub const PROVIDER: StandInProvider = StandInProvider {
    description: "Offline stand-in for the hashicorp/random provider.",
    resources: || map! { "id" => RandomId },
    data_sources: HashMap::new,
};

/// Configuration and state of `resource "random_id"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomIdState<'a> {
    pub keepers: ValueMap<'a, ValueString<'a>>,
    pub byte_length: ValueNumber,
    pub prefix: ValueString<'a>,
    /// The computed attributes, top-level in the schema: one id's encodings,
    /// made, marked unknown and kept all together.
    #[serde(flatten)]
    pub encodings: Encodings<ValueString<'a>>,
}

impl RandomIdState<'_> {
    fn mark_computed_unknown(&mut self) {
        self.encodings = Encodings::<()>::default().map(|()| Value::Unknown);
    }
}

/// The encodings of one id: as text, or as the state's computed attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Encodings<S = String> {
    /// base64, URL alphabet, no padding, without the prefix.
    pub id: S,
    pub b64_url: S,
    pub b64_std: S,
    pub hex: S,
    pub dec: S,
}

impl<S> Encodings<S> {
    fn map<T>(self, f: impl Fn(S) -> T) -> Encodings<T> {
        Encodings {
            id: f(self.id),
            b64_url: f(self.b64_url),
            b64_std: f(self.b64_std),
            hex: f(self.hex),
            dec: f(self.dec),
        }
    }
}

/// Computes the encodings like the real provider: `id` without the prefix,
/// the others with the prefix in front.
pub fn encodings(bytes: &[u8], prefix: &str) -> Encodings {
    let id = URL_SAFE_NO_PAD.encode(bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Encodings {
        b64_url: format!("{prefix}{id}"),
        b64_std: format!("{prefix}{}", STANDARD.encode(bytes)),
        hex: format!("{prefix}{hex}"),
        dec: format!("{prefix}{}", big_endian_to_decimal(bytes)),
        id,
    }
}

/// The unsigned big-endian integer in `bytes`, in decimal without padding
/// ("0" for no bytes or all zeros), like Go's `big.Int.SetBytes(..).String()`.
pub fn big_endian_to_decimal(bytes: &[u8]) -> String {
    const BASE: u64 = 1_000_000_000;
    // Little-endian limbs in base 10^9.
    let mut limbs: Vec<u64> = Vec::new();
    for &byte in bytes {
        let mut carry = u64::from(byte);
        for limb in limbs.iter_mut() {
            let value = *limb * 256 + carry;
            *limb = value % BASE;
            carry = value / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    match limbs.split_last() {
        None => "0".to_owned(),
        Some((most, rest)) => {
            let mut out = most.to_string();
            for limb in rest.iter().rev() {
                out.push_str(&format!("{limb:09}"));
            }
            out
        }
    }
}

fn with_encodings<'a>(mut state: RandomIdState<'a>, bytes: &[u8]) -> RandomIdState<'a> {
    let prefix = state
        .prefix
        .as_ref_option()
        .map(|p| p.to_string())
        .unwrap_or_default();
    state.encodings = encodings(bytes, &prefix).map(|text| Value::Value(text.into()));
    state
}

/// `byte_length` as a usize, or an error message for the diagnostic.
fn byte_length(value: &ValueNumber) -> Result<Option<usize>, String> {
    match value {
        Value::Value(n) if (1..=MAX_BYTE_LENGTH).contains(n) => usize::try_from(*n)
            .map(Some)
            .map_err(|_| format!("byte_length {n} does not fit this platform")),
        Value::Value(n) => Err(format!(
            "byte_length must be between 1 and {MAX_BYTE_LENGTH}, got {n}"
        )),
        Value::Null => Err("byte_length is required".into()),
        Value::Unknown => Ok(None),
    }
}

/// Reports an unusable `byte_length` on that attribute.
fn invalid_byte_length(diags: &mut Diagnostics, message: String) {
    diags.error(
        "Invalid byte_length",
        message,
        AttributePath::new("byte_length"),
    );
}

/// The real provider's `RequiresReplaceIfValuesNotNull` for `keepers`:
/// replace when a key gains a non-null value, a value changes, or a key
/// disappears; adding keys with null values does not replace.
pub fn keepers_require_replace(
    prior: &ValueMap<'_, ValueString<'_>>,
    config: &ValueMap<'_, ValueString<'_>>,
) -> bool {
    if config == prior {
        return false;
    }
    match (prior, config) {
        (Value::Null, Value::Value(new)) => new.values().any(|v| !v.is_null()),
        (Value::Value(old), Value::Value(new)) => {
            let changed = new.iter().any(|(key, value)| match old.get(key) {
                None => !value.is_null(),
                Some(old_value) => old_value != value,
            });
            let removed = old.keys().any(|key| !new.contains_key(key));
            changed || removed
        }
        // Removing the whole map, or a map not known yet.
        _ => true,
    }
}

/// The attributes whose change forces a new id.
fn replace_triggers(prior: &RandomIdState<'_>, proposed: &RandomIdState<'_>) -> Vec<AttributePath> {
    let mut triggers = Vec::new();
    if prior.byte_length != proposed.byte_length {
        triggers.push(AttributePath::new("byte_length"));
    }
    if prior.prefix != proposed.prefix {
        triggers.push(AttributePath::new("prefix"));
    }
    if keepers_require_replace(&prior.keepers, &proposed.keepers) {
        triggers.push(AttributePath::new("keepers"));
    }
    triggers
}

/// Parses an import id `[prefix,]b64url` into a state.
fn import_state<'a>(id: &str) -> Result<RandomIdState<'a>, String> {
    let (prefix, encoded) = match id.rfind(',') {
        Some(sep) => (&id[..sep], &id[sep + 1..]),
        None => ("", id),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|err| format!("the id {encoded:?} is not unpadded URL-safe base64: {err}"))?;
    let byte_length = i64::try_from(bytes.len()).map_err(|_| "id too long".to_string())?;
    let state = RandomIdState {
        byte_length: Value::Value(byte_length),
        keepers: Value::Null,
        prefix: if prefix.is_empty() {
            Value::Null
        } else {
            Value::Value(Cow::Owned(prefix.to_owned()))
        },
        ..Default::default()
    };
    Ok(with_encodings(state, &bytes))
}

/// The `random_id` resource.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomId;

#[async_trait]
impl Resource for RandomId {
    type State<'a> = RandomIdState<'a>;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        use AttributeConstraint::{Computed, Optional, Required};
        let string = || AttributeType::String;
        Some(schema(
            "The resource `random_id` generates random numbers that are intended to be used as \
             unique identifiers for other resources. (Offline stand-in.)",
            map! {
                "keepers" => attr(AttributeType::Map(Box::new(string())), Optional,
                    "Arbitrary map of values that, when changed, will trigger recreation of resource."),
                "byte_length" => attr(AttributeType::Number, Required,
                    "The number of random bytes to produce. The minimum value is 1, which produces \
                     eight bits of randomness."),
                "prefix" => attr(string(), Optional,
                    "Arbitrary string to prefix the output value with. This string is supplied as-is, \
                     meaning it is not guaranteed to be URL-safe or base64 encoded."),
                "b64_url" => attr(string(), Computed,
                    "The generated id presented in base64, using the URL-friendly character set: \
                     case-sensitive letters, digits and the characters `_` and `-`."),
                "b64_std" => attr(string(), Computed,
                    "The generated id presented in base64 without additional transformations."),
                "hex" => attr(string(), Computed,
                    "The generated id presented in padded hexadecimal digits. This result will always \
                     be twice as long as the requested byte length."),
                "dec" => attr(string(), Computed,
                    "The generated id presented in non-padded decimal digits."),
                "id" => attr(string(), Computed,
                    "The generated id presented in base64 without additional transformations or prefix."),
            },
            HashMap::new(),
        ))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        // Null here means "not given"; Terraform itself reports a missing required attribute.
        if config.byte_length.is_null() {
            return Some(());
        }
        match byte_length(&config.byte_length) {
            Ok(_) => Some(()),
            Err(message) => {
                invalid_byte_length(diags, message);
                None
            }
        }
    }

    async fn read<'a>(
        &self,
        _diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        // Nothing exists outside the state.
        Some((state, private_state))
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = proposed_state;
        state.mark_computed_unknown();
        Some((state, ValueEmpty::Null))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let triggers = replace_triggers(&prior_state, &proposed_state);
        let mut state = proposed_state;
        if triggers.is_empty() {
            // The computed values stay as they are (UseStateForUnknown).
            state.encodings = prior_state.encodings;
        } else {
            state.mark_computed_unknown();
        }
        Some((state, prior_private_state, triggers))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let length = match byte_length(&planned_state.byte_length) {
            Ok(Some(length)) => length,
            Ok(None) => {
                invalid_byte_length(diags, "byte_length is still unknown at apply time".into());
                return None;
            }
            Err(message) => {
                invalid_byte_length(diags, message);
                return None;
            }
        };
        let mut bytes = vec![0u8; length];
        if let Err(err) = getrandom::fill(&mut bytes) {
            diags.root_error(
                "Random Read Error",
                format!("While generating a random id, reading random bytes failed: {err}"),
            );
            return None;
        }
        Some((with_encodings(planned_state, &bytes), planned_private_state))
    }

    async fn update<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        Some((planned_state, planned_private_state))
    }

    async fn destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        Some(())
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        match import_state(&id) {
            Ok(state) => Some((state, ValueEmpty::Null)),
            Err(message) => {
                diags.root_error(
                    "Import Random ID Error",
                    format!("While attempting to import a random id there was a decoding error: {message}"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
