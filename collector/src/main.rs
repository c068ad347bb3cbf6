//! Entry point of `mcptap-collector`; see the library crate for the parts.

use clap::Parser;
use mcptap_collector::cli::{Cli, Command};
use mcptap_collector::run;
use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the decode path allocates small, short-lived
/// blocks per message. The v2 series without transparent huge pages (crate
/// features `v2`, `no_thp`) keeps peak RSS lowest with many open flows; see
/// BENCHMARKS.md, round 4.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    run::init_logging(&cli.run.log_format);
    let res = match cli.command {
        Some(Command::Demo { output, export }) => {
            let mut a = cli.run.clone();
            a.export = *export;
            run::demo(&a, output)
        }
        Some(Command::Schema(s)) => run::schema(&s),
        Some(Command::Inject(a)) => mcptap_collector::inject::run(&a),
        None => run::run(&cli.run),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcptap-collector: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
