//! Offline stand-ins for two HashiCorp Terraform providers, served over
//! Terraform's plugin protocol (v6) with the `tf-provider` crate.
//!
//! One binary serves either provider, chosen by its own file name:
//! - a name containing `archive` serves `hashicorp/archive` (data source `archive_file`),
//! - a name containing `random` serves `hashicorp/random` (resource `random_id`).
//!
//! The schemas match archive 2.7.1 and random 3.7.2 for the parts implemented,
//! so configurations written for the real providers work unchanged.

mod archive;
mod provider;
mod random;
mod schema_util;

use std::path::Path;
use std::process::ExitCode;

use tf_provider::serve;

/// Which provider this process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Archive,
    Random,
}

/// Picks the provider from the executable's file name.
fn flavor_from_program_name(program: &str) -> Option<Flavor> {
    let file_name = Path::new(program)
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [("archive", Flavor::Archive), ("random", Flavor::Random)]
        .into_iter()
        .find_map(|(name, flavor)| file_name.contains(name).then_some(flavor))
}

fn main() -> ExitCode {
    // Must happen before any thread exists and before the first backtrace is
    // captured: the global environment sets RUST_BACKTRACE=1, and tf-provider
    // appends a captured backtrace to every diagnostic when backtraces are on.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    std::env::set_var("RUST_BACKTRACE", "0");

    // tf-provider's TLS runs on rustls, which picks its crypto backend from its cargo features
    // only when exactly one is on. Built with the workspace (as scripts/build-offline-providers.sh
    // and `make test`'s host build do), the AWS SDK turns on aws-lc-rs beside tf-provider's ring,
    // and the handshake panicked ("Could not automatically determine the process-level
    // CryptoProvider"): choose ring here, whatever the build. Err only means one is already set.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let program = std::env::args().next().unwrap_or_default();
    let Some(flavor) = flavor_from_program_name(&program) else {
        eprintln!(
            "tf-offline-providers: cannot tell which provider to serve from the program name {program:?}; \
             install this binary as terraform-provider-archive_* or terraform-provider-random_*"
        );
        return ExitCode::from(2);
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tf-offline-providers: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };

    let result = runtime.block_on(async move {
        match flavor {
            Flavor::Archive => serve("archive", archive::PROVIDER).await,
            Flavor::Random => serve("random", random::PROVIDER).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tf-offline-providers: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_follows_the_file_name() {
        assert_eq!(
            flavor_from_program_name(
                "/x/registry.terraform.io/hashicorp/archive/2.7.1/linux_amd64/terraform-provider-archive_v2.7.1"
            ),
            Some(Flavor::Archive)
        );
        assert_eq!(
            flavor_from_program_name("terraform-provider-random_v3.7.2"),
            Some(Flavor::Random)
        );
        // Only the file name counts, not the directories above it.
        assert_eq!(
            flavor_from_program_name("/archive/random/tf-offline-providers"),
            None
        );
        assert_eq!(flavor_from_program_name(""), None);
    }
}
