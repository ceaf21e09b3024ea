//! `ddb-faithful`: run the DynamoDB-faithful endpoint (see the library docs for the model).

use clap::{ArgGroup, Parser};
use ddb_faithful::model::Limits;
use ddb_faithful::proxy::{serve, start_memory_backend, App, Config, Latency, MEMORY_ARN_PREFIX};
use std::net::SocketAddr;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "DynamoDB endpoint with AWS's partition and table capacity, latency and throttling"
)]
#[command(group(ArgGroup::new("backend").required(true).args(["upstream", "memory"])))]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Forward admitted requests to this DynamoDB API (e.g. the moto server).
    #[arg(long)]
    upstream: Option<String>,
    /// Serve from an in-memory store inside this process (dynoxide).
    #[arg(long)]
    memory: bool,
    /// Per-request latency: `none` or MEDIAN_MS:P99_MS (log-normal).
    #[arg(long, default_value = "4:15")]
    latency: String,
    /// `real`, or `manual` (time moves only through POST /_faithful/advance?ms=N).
    #[arg(long, default_value = "real", value_parser = ["real", "manual"])]
    clock: String,
    /// Region shown in the in-memory store's ARNs (and throttle resources).
    #[arg(long, default_value = "eu-central-1")]
    region: String,
    /// Account shown in the in-memory store's ARNs (moto's default account).
    #[arg(long, default_value = "123456789012")]
    account: String,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write units per second per partition.
    #[arg(long, default_value_t = Limits::default().partition_write_units)]
    partition_wcu: f64,
    /// Read units per second per partition.
    #[arg(long, default_value_t = Limits::default().partition_read_units)]
    partition_rcu: f64,
    /// Write units per second a new on-demand table (or GSI) serves.
    #[arg(long, default_value_t = Limits::default().table_initial_write_units)]
    table_initial_wcu: f64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let latency = match Latency::parse(&cli.latency) {
        Ok(l) => l,
        Err(message) => {
            eprintln!("ddb-faithful: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ddb-faithful: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        let upstream = match cli.upstream {
            Some(url) => url,
            None => start_memory_backend().await?,
        };
        let limits = Limits {
            partition_write_units: cli.partition_wcu,
            partition_read_units: cli.partition_rcu,
            table_initial_write_units: cli.table_initial_wcu,
            ..Limits::default()
        };
        let config = Config {
            listen: cli.listen,
            upstream: upstream.clone(),
            latency,
            limits,
            manual_clock: cli.clock == "manual",
            arn_rewrite: cli.memory.then(|| {
                let to = format!("arn:aws:dynamodb:{}:{}:", cli.region, cli.account);
                (MEMORY_ARN_PREFIX.to_string(), to)
            }),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("listening on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!(
            "{}",
            serde_json::json!({"endpoint": format!("http://{addr}"), "upstream": upstream, "memory": cli.memory})
        );
        serve(App::new(&config), listener).await;
        Ok(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ddb-faithful: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
