//! txnctl: the operator CLI of the transaction pipeline: per-file status, errors (masked),
//! queue depths and replay of what failed for a retryable reason (docs/operations.md, "txnctl").

mod aws;
mod commands;
mod edges;
mod error;
mod model;
mod outputs;
mod render;
mod replay;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::commands::FileState;
use crate::error::CliError;

#[derive(Debug, Parser)]
#[command(
    name = "txnctl",
    version,
    about = "Per-file status, errors, queues and replay of the transaction pipeline",
    after_help = "Exit codes: 0 success, 1 an AWS call failed, 2 usage, 3 stack outputs missing or unreadable, 4 not found, 5 access denied, 6 replay incomplete (docs/operations.md, \"txnctl\")."
)]
struct Cli {
    /// The stack's outputs: the file `make up` writes, or `terraform output -json` saved.
    #[arg(long, global = true, value_name = "FILE")]
    outputs: Option<PathBuf>,
    /// Read the outputs by running `terraform output -json` in this directory instead.
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "outputs")]
    terraform_dir: Option<PathBuf>,
    /// Print JSON (one document on stdout) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One file's status record (latest version by default), with its errors by code and line.
    Status {
        /// The S3 object key.
        key: String,
        /// An S3 version id ("null" for an unversioned object).
        #[arg(long)]
        version: Option<String>,
    },
    /// Files by day of first activity (activity_day-index).
    Files {
        /// A date (2026-11-30), an RFC 3339 time, or a duration back from now (90m, 24h, 7d).
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long, value_enum)]
        state: Option<FileState>,
    },
    /// Errors rows (records masked) of a file or of a transaction.
    #[command(group(ArgGroup::new("by").required(true).multiple(true).args(["file", "transaction"])))]
    Errors {
        /// The S3 object key (source_key-index).
        #[arg(long)]
        file: Option<String>,
        /// Only rows with this error_code.
        #[arg(long)]
        code: Option<String>,
        /// A transaction_id (transaction_id-index).
        #[arg(long)]
        transaction: Option<String>,
    },
    /// Depth and age of the oldest message of the main queue and the DLQ.
    Queues,
    /// Re-run the errors rows that failed for a retryable reason (resume_file messages).
    Replay {
        /// Only this S3 object key (else every retryable row: a Scan of the errors table).
        #[arg(long)]
        file: Option<String>,
        /// Only rows with this error_code.
        #[arg(long)]
        code: Option<String>,
        /// List what would be sent; send and mark nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also rows replayed before (after a crash between mark and send, or when the
        /// replayed run failed again without a new errors row).
        #[arg(long)]
        include_replayed: bool,
    },
}

#[derive(Serialize)]
struct JsonError<'a> {
    error: &'a str,
    message: String,
    exit_code: i32,
}

fn progress(json: bool) -> ProgressBar {
    // Drawn on stderr, and only when stderr is a terminal (indicatif hides it otherwise).
    let bar = ProgressBar::with_draw_target(
        None,
        if json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

fn print<T: Serialize>(
    json: bool,
    report: &T,
    human: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    if json {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| CliError::Usage(format!("cannot encode the report: {e}")))?;
        println!("{text}");
    } else {
        println!("{}", human(report));
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let outputs = match (&cli.terraform_dir, &cli.outputs) {
        (Some(dir), _) => outputs::from_terraform(dir)?,
        (None, Some(file)) => outputs::from_file(file)?,
        (None, None) => outputs::from_file(&PathBuf::from("build/outputs.json"))?,
    };
    let config = aws::sdk_config(&outputs).await;
    let tables = aws::AwsTables {
        client: aws_sdk_dynamodb::Client::new(&config),
        status_table: outputs.file_status_table.clone(),
        errors_table: outputs.errors_table.clone(),
    };
    let json = cli.json;
    match cli.command {
        Command::Status { key, version } => {
            outputs.file_status_table()?;
            let report = commands::status(&tables, &key, version.as_deref()).await?;
            print(json, &report, render::status)
        }
        Command::Files { since, state } => {
            outputs.file_status_table()?;
            let now = chrono::Utc::now();
            let since = commands::parse_since(&since, now)?;
            let report = commands::files(&tables, since, now, state, &progress(json)).await?;
            print(json, &report, render::files)
        }
        Command::Errors {
            file,
            code,
            transaction,
        } => {
            let report = commands::errors(
                &tables,
                file.as_deref(),
                transaction.as_deref(),
                code.as_deref(),
            )
            .await?;
            print(json, &report, render::errors)
        }
        Command::Queues => {
            let q = aws::AwsQueues {
                sqs: aws_sdk_sqs::Client::new(&config),
                cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            };
            let report = commands::queues(&q, &outputs).await?;
            print(json, &report, render::queues)
        }
        Command::Replay {
            file,
            code,
            dry_run,
            include_replayed,
        } => {
            let q = aws::AwsQueues {
                sqs: aws_sdk_sqs::Client::new(&config),
                cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            };
            let report = commands::replay(
                &tables,
                &q,
                &outputs,
                file.as_deref(),
                code.as_deref(),
                include_replayed,
                dry_run,
                chrono::Utc::now(),
                &progress(json),
            )
            .await?;
            print(json, &report, render::replay)?;
            if report.failed > 0 {
                return Err(CliError::ReplayIncomplete(format!(
                    "{} of {} replay messages could not be sent; their errors rows were unmarked, run replay again",
                    report.failed,
                    report.messages.len()
                )));
            }
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("txnctl: error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(run(cli)) {
        let code = err.exit_code();
        if json {
            let doc = JsonError {
                error: err.kind(),
                message: err.to_string(),
                exit_code: code,
            };
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        eprintln!("txnctl: error: {err}");
        std::process::exit(code);
    }
}
