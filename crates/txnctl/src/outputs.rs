//! Reads the deployed stack's Terraform outputs: the file `make up` writes (name -> value), the
//! shape of `terraform output -json` (name -> {value, type, sensitive}), or terraform itself.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::error::CliError;

/// The outputs txnctl uses. The status table is optional here: only `status` and `files` need
/// it, and a stack from before issue 14 has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOutputs {
    pub origin: String,
    pub file_status_table: Option<String>,
    pub errors_table: String,
    pub main_queue_url: String,
    pub dlq_url: String,
    pub region: Option<String>,
}

impl StackOutputs {
    pub fn file_status_table(&self) -> Result<&str, CliError> {
        self.file_status_table.as_deref().ok_or_else(|| {
            CliError::Outputs(format!(
                "output file_status_table_name is missing from {}: the stack was applied without the per-file status table",
                self.origin
            ))
        })
    }
}

/// Parses either shape. `origin` names the source in error messages.
pub fn parse(text: &str, origin: &str) -> Result<StackOutputs, CliError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| CliError::Outputs(format!("{origin} is not valid JSON: {e}")))?;
    let Value::Object(map) = doc else {
        return Err(CliError::Outputs(format!(
            "{origin} is not a JSON object of Terraform outputs"
        )));
    };
    let value_of = |name: &str| -> Option<String> {
        let entry = map.get(name)?;
        // `terraform output -json` wraps each value: {"value": ..., "type": ..., "sensitive": ...}.
        let value = match entry {
            Value::Object(inner) if inner.contains_key("value") && inner.contains_key("type") => {
                inner.get("value")?
            }
            other => other,
        };
        value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let required = |name: &str| -> Result<String, CliError> {
        value_of(name).ok_or_else(|| {
            CliError::Outputs(format!(
                "output {name} is missing from {origin} (or not a non-empty string)"
            ))
        })
    };
    Ok(StackOutputs {
        origin: origin.to_owned(),
        file_status_table: value_of("file_status_table_name"),
        errors_table: required("errors_table_name")?,
        main_queue_url: required("main_queue_url")?,
        dlq_url: required("dlq_url")?,
        region: value_of("aws_region"),
    })
}

pub fn from_file(path: &Path) -> Result<StackOutputs, CliError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Outputs(format!(
            "cannot read the stack outputs {origin}: {e} (run `make up`, or pass --outputs FILE or --terraform-dir DIR)"
        ))
    })?;
    parse(&text, &origin)
}

pub fn from_terraform(dir: &Path) -> Result<StackOutputs, CliError> {
    let origin = format!("terraform -chdir={} output -json", dir.display());
    let out = Command::new("terraform")
        .arg(format!("-chdir={}", dir.display()))
        .args(["output", "-json"])
        .output()
        .map_err(|e| CliError::Outputs(format!("cannot run {origin}: {e}")))?;
    if !out.status.success() {
        return Err(CliError::Outputs(format!(
            "{origin} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse(&String::from_utf8_lossy(&out.stdout), &origin)
}

/// A name from a queue URL (its last path segment), as CloudWatch's QueueName dimension uses it.
pub fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAT: &str = r#"{"errors_table_name": "dynamodb-errors-dev",
        "main_queue_url": "http://127.0.0.1:5000/123456789012/sqs-main-dev",
        "dlq_url": "http://127.0.0.1:5000/123456789012/sqs-dlq-dev",
        "file_status_table_name": "dynamodb-file-status-dev", "aws_region": "eu-central-1",
        "private_subnet_ids": ["a", "b"]}"#;

    #[test]
    fn reads_the_flat_shape_of_make_up() {
        let out = parse(FLAT, "build/outputs.json").expect("parses");
        assert_eq!(out.errors_table, "dynamodb-errors-dev");
        assert_eq!(
            out.file_status_table.as_deref(),
            Some("dynamodb-file-status-dev")
        );
        assert_eq!(out.region.as_deref(), Some("eu-central-1"));
        assert_eq!(queue_name(&out.dlq_url), "sqs-dlq-dev");
    }

    #[test]
    fn reads_the_terraform_output_json_shape() {
        let text = r#"{"errors_table_name": {"sensitive": false, "type": "string", "value": "e"},
            "main_queue_url": {"sensitive": false, "type": "string", "value": "https://sqs/1/m"},
            "dlq_url": {"sensitive": false, "type": "string", "value": "https://sqs/1/d"}}"#;
        let out = parse(text, "tf").expect("parses");
        assert_eq!(out.main_queue_url, "https://sqs/1/m");
        assert_eq!(out.file_status_table, None);
        let err = out.file_status_table().expect_err("missing");
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("file_status_table_name"));
    }

    #[test]
    fn missing_or_broken_outputs_are_exit_3_and_say_what() {
        let err = parse("{}", "x.json").expect_err("missing");
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("errors_table_name"), "{err}");
        let err = parse("[1]", "x.json").expect_err("not an object");
        assert_eq!(err.exit_code(), 3);
        let err = parse("{", "x.json").expect_err("not json");
        assert!(err.to_string().starts_with("x.json is not valid JSON"));
        let err = from_file(Path::new("/nonexistent/outputs.json")).expect_err("no file");
        assert!(err.to_string().contains("make up"), "{err}");
    }
}
