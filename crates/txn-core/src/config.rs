//! The two functions' configurations: each reads its environment once, in `main`, into a typed
//! struct. lib/main.tf sets every variable and owns every default, so nothing here has one: a
//! missing or invalid variable is a [`ConfigError`] that names it. `from_lookup` is the one list
//! of what a function reads: the tests below record what it looks up and fail when that and the
//! function's environment block in lib/main.tf differ. The settings both functions share are
//! their [`MetricsConfig`], which also writes the metric lines both print.

/// A function variable is missing or invalid: the execution environment cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set, or set to an empty or blank text.
    #[error("environment variable {0} is missing or empty")]
    Missing(&'static str),
    /// The variable is not a whole number in range.
    #[error(
        "environment variable {name} must be a whole number of at least {minimum}, not {value:?}"
    )]
    NotAWholeNumber {
        /// The variable.
        name: &'static str,
        /// The smallest value that makes sense.
        minimum: u64,
        /// What it was set to.
        value: String,
    },
}

/// The transaction processor's environment, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorConfig {
    /// The table of transactions (`DYNAMODB_TABLE_NAME`).
    pub table_name: String,
    /// The main (retry) queue (`SQS_QUEUE_URL`).
    pub queue_url: String,
    /// The dead-letter queue (`DLQ_URL`).
    pub dlq_url: String,
    /// The per-file status table (`FILE_STATUS_TABLE_NAME`, contract P26): always set from the
    /// environment; `None` only in unit tests that do not write the per-file status.
    pub file_status_table: Option<String>,
    /// Where its metrics go.
    pub metrics: MetricsConfig,
    /// The largest object read (`MAX_FILE_BYTES`).
    pub max_file_bytes: u64,
    /// The remaining time under which a file is handed on (`TIME_SAFETY_MARGIN_MS`).
    pub time_safety_margin_ms: i64,
    /// The status_shard values per status on the transactions table's index, at least 1
    /// (`STATUS_INDEX_SHARDS`, contract P40).
    pub status_index_shards: u64,
    /// A CSV object larger than this is split into ranges; 0 never splits (`RANGE_SPLIT_BYTES`,
    /// contract P33).
    pub range_split_bytes: u64,
}

/// The DLQ processor's environment, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqProcessorConfig {
    /// The errors table (`ERRORS_TABLE_NAME`).
    pub table_name: String,
    /// Where its metrics go.
    pub metrics: MetricsConfig,
    /// Days an error row is kept (`ERROR_RETENTION_DAYS`).
    pub retention_days: i64,
}

/// Where a function's metrics go: both print them as CloudWatch Embedded Metric Format lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The deployment's name, the metrics' `Environment` dimension (`ENVIRONMENT`).
    pub environment: String,
    /// The CloudWatch namespace of the lines (`METRIC_NAMESPACE`).
    pub namespace: String,
}

impl MetricsConfig {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            environment: text(lookup, "ENVIRONMENT")?,
            namespace: text(lookup, "METRIC_NAMESPACE")?,
        })
    }

    /// One Embedded Metric Format line at `timestamp_ms`: each of `values` is a metric's
    /// (name, value, unit), all with the one dimension `Environment`.
    pub fn emf_line(&self, timestamp_ms: i64, values: &[(&str, i64, &str)]) -> String {
        let metrics: Vec<serde_json::Value> = values
            .iter()
            .map(|(name, _, unit)| serde_json::json!({"Name": name, "Unit": unit}))
            .collect();
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Environment"]],
                    "Metrics": metrics,
                }],
            },
            "Environment": self.environment,
        });
        for (name, value, _) in values {
            doc[*name] = serde_json::json!(value);
        }
        doc.to_string()
    }
}

/// A variable's text; blank counts as missing.
fn text(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    lookup(name)
        .filter(|value| !value.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// A variable that is a whole number (ASCII digits only, as Terraform's tostring writes it) of
/// at least `minimum`.
fn whole_number<T: TryFrom<u64>>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    minimum: u64,
) -> Result<T, ConfigError> {
    let value = text(lookup, name)?;
    let parsed = (value.len() <= 18 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<u64>().ok())
        .flatten()
        .filter(|n| *n >= minimum)
        .and_then(|n| T::try_from(n).ok());
    parsed.ok_or(ConfigError::NotAWholeNumber {
        name,
        minimum,
        value,
    })
}

/// A function's configuration, read from its environment once, in `main`.
pub trait FromEnvironment: Sized {
    /// From any lookup of variables by name: every variable the function reads, and only those.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError>;

    /// From the process environment (call once, in `main`).
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

impl FromEnvironment for ProcessorConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: text(&lookup, "DYNAMODB_TABLE_NAME")?,
            queue_url: text(&lookup, "SQS_QUEUE_URL")?,
            dlq_url: text(&lookup, "DLQ_URL")?,
            file_status_table: Some(text(&lookup, "FILE_STATUS_TABLE_NAME")?),
            metrics: MetricsConfig::from_lookup(&lookup)?,
            max_file_bytes: whole_number(&lookup, "MAX_FILE_BYTES", 1)?,
            time_safety_margin_ms: whole_number(&lookup, "TIME_SAFETY_MARGIN_MS", 0)?,
            status_index_shards: whole_number(&lookup, "STATUS_INDEX_SHARDS", 1)?,
            range_split_bytes: whole_number(&lookup, "RANGE_SPLIT_BYTES", 0)?,
        })
    }
}

impl FromEnvironment for DlqProcessorConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: text(&lookup, "ERRORS_TABLE_NAME")?,
            metrics: MetricsConfig::from_lookup(&lookup)?,
            retention_days: whole_number(&lookup, "ERROR_RETENTION_DAYS", 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    /// The variable names lib/main.tf sets in `local.functions.<function>.environment`, the
    /// environment of the function's aws_lambda_function instance (read with hcl-rs: HCL is
    /// not a format to parse by hand).
    fn terraform_environment(function: &str) -> BTreeSet<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../lib/main.tf");
        let text = std::fs::read_to_string(path).expect("lib/main.tf");
        let body: hcl::Body = hcl::parse(&text).expect("lib/main.tf parses");
        let functions = body
            .blocks()
            .filter(|b| b.identifier() == "locals")
            .flat_map(|b| b.body().attributes())
            .find(|a| a.key() == "functions")
            .expect("lib/main.tf has local.functions");
        let entry = object_field(functions.expr(), function)
            .unwrap_or_else(|| panic!("lib/main.tf has no local.functions.{function}"));
        let Some(hcl::Expression::Object(environment)) = object_field(entry, "environment") else {
            panic!("local.functions.{function}.environment is not an object");
        };
        environment.keys().map(key_name).collect()
    }

    fn key_name(key: &hcl::ObjectKey) -> String {
        match key {
            hcl::ObjectKey::Identifier(id) => id.to_string(),
            hcl::ObjectKey::Expression(hcl::Expression::String(s)) => s.clone(),
            other => panic!("unexpected key {other:?}"),
        }
    }

    /// The value of `name` in an object expression.
    fn object_field<'a>(expr: &'a hcl::Expression, name: &str) -> Option<&'a hcl::Expression> {
        let hcl::Expression::Object(object) = expr else {
            return None;
        };
        object
            .iter()
            .find(|(key, _)| key_name(key) == name)
            .map(|(_, value)| value)
    }

    /// What `C::from_lookup` looks up, given every variable set to a valid value: the one list
    /// of the function's variables.
    fn variables_read<C: FromEnvironment>() -> BTreeSet<String> {
        let seen = RefCell::new(BTreeSet::new());
        let _ = C::from_lookup(|name| {
            seen.borrow_mut().insert(name.to_owned());
            Some("7".to_owned())
        });
        seen.into_inner()
    }

    #[test]
    fn each_function_reads_what_terraform_sets() {
        for (function, read) in [
            ("processor", variables_read::<ProcessorConfig>()),
            ("dlq_processor", variables_read::<DlqProcessorConfig>()),
        ] {
            assert_eq!(
                read,
                terraform_environment(function),
                "what {function}'s from_lookup reads vs lib/main.tf"
            );
        }
    }

    fn processor_env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("DYNAMODB_TABLE_NAME", "t"),
            ("SQS_QUEUE_URL", "q"),
            ("DLQ_URL", "d"),
            ("FILE_STATUS_TABLE_NAME", "s"),
            ("ENVIRONMENT", "prod"),
            ("METRIC_NAMESPACE", "Ns"),
            ("MAX_FILE_BYTES", "10"),
            ("TIME_SAFETY_MARGIN_MS", "0"),
            ("STATUS_INDEX_SHARDS", "16"),
            ("RANGE_SPLIT_BYTES", "0"),
        ])
    }

    fn read_processor(env: &HashMap<&str, &str>) -> Result<ProcessorConfig, ConfigError> {
        ProcessorConfig::from_lookup(|name| env.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn processor_config_is_typed() {
        let cfg = read_processor(&processor_env()).unwrap();
        assert_eq!(
            (
                cfg.metrics.namespace.as_str(),
                cfg.max_file_bytes,
                cfg.time_safety_margin_ms
            ),
            ("Ns", 10, 0)
        );
    }

    #[test]
    fn an_emf_line_declares_its_metrics_and_carries_their_values() {
        let metrics = MetricsConfig {
            environment: "prod".into(),
            namespace: "Ns".into(),
        };
        let line = metrics.emf_line(5, &[("A", 2, "Count"), ("B", -1, "Milliseconds")]);
        let expected = serde_json::json!({
            "_aws": {
                "Timestamp": 5,
                "CloudWatchMetrics": [{
                    "Namespace": "Ns",
                    "Dimensions": [["Environment"]],
                    "Metrics": [{"Name": "A", "Unit": "Count"}, {"Name": "B", "Unit": "Milliseconds"}],
                }],
            },
            "Environment": "prod",
            "A": 2,
            "B": -1,
        });
        assert_eq!(line, expected.to_string());
    }

    #[test]
    fn every_variable_is_required_and_named_in_the_error() {
        let every = processor_env();
        assert_eq!(
            every
                .keys()
                .map(|name| (*name).to_owned())
                .collect::<BTreeSet<_>>(),
            variables_read::<ProcessorConfig>()
        );
        for name in every.into_keys() {
            let mut env = processor_env();
            env.remove(name);
            assert_eq!(read_processor(&env), Err(ConfigError::Missing(name)));
            env.insert(name, " ");
            let error = read_processor(&env).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("environment variable {name} is missing or empty")
            );
        }
        let dlq = DlqProcessorConfig::from_lookup(|name| {
            (name != "METRIC_NAMESPACE").then(|| "1".to_owned())
        });
        assert_eq!(dlq, Err(ConfigError::Missing("METRIC_NAMESPACE")));
    }

    #[test]
    fn numbers_must_be_whole_and_in_range() {
        for (name, bad) in [
            ("MAX_FILE_BYTES", "0"),
            ("MAX_FILE_BYTES", "256 MiB"),
            ("TIME_SAFETY_MARGIN_MS", "-1"),
            ("TIME_SAFETY_MARGIN_MS", "3e4"),
            ("TIME_SAFETY_MARGIN_MS", "99999999999999999999"),
            ("STATUS_INDEX_SHARDS", "0"),
        ] {
            let mut env = processor_env();
            env.insert(name, bad);
            let error = read_processor(&env).unwrap_err();
            assert!(
                error.to_string().starts_with(&format!(
                    "environment variable {name} must be a whole number"
                )),
                "{error}"
            );
        }
        let dlq = DlqProcessorConfig::from_lookup(|name| {
            Some(
                if name == "ERROR_RETENTION_DAYS" {
                    "1.5"
                } else {
                    "x"
                }
                .to_owned(),
            )
        });
        assert!(matches!(
            dlq,
            Err(ConfigError::NotAWholeNumber {
                name: "ERROR_RETENTION_DAYS",
                ..
            })
        ));
    }
}
