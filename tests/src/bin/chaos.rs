//! `make chaos`: the fault campaign of `testkit::chaos` with the knobs from the environment.
//! Prints the counts and the checks, writes `CHAOS_REPORT` (default `docs/RELIABILITY.md`) and
//! exits non-zero if an invariant failed. Needs TEST_DATABASE_URL and the binaries built, like
//! the tests; `scripts/chaos.sh` provides both.

use std::process::ExitCode;

use testkit::chaos::{self, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("chaos: {err}");
            return ExitCode::from(2);
        }
    };
    // A post-mortem's: the processes' lines go to CHAOS_LOGS, cleanup's (in this process)
    // beside them.
    if let Some(path) = &settings.logs {
        match std::fs::File::create(format!("{path}.cleanup")) {
            Ok(file) => {
                let _ = tracing_subscriber::fmt()
                    .json()
                    .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                    .with_writer(std::sync::Mutex::new(file))
                    .try_init();
            }
            Err(err) => eprintln!("chaos: cannot write {path}.cleanup: {err}"),
        }
    }
    // First, so that a campaign cut short can still be replayed.
    println!(
        "chaos: seed {0} (CHAOS_SEED={0} replays its choices)",
        settings.seed
    );
    let report = match chaos::run(settings).await {
        Ok(report) => report,
        Err(err) => {
            eprintln!("chaos: the campaign could not run: {err}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.text());
    let path = std::env::var("CHAOS_REPORT").unwrap_or_else(|_| "docs/RELIABILITY.md".into());
    if !path.is_empty() {
        let machine =
            std::env::var("CHAOS_MACHINE").unwrap_or_else(|_| "a developer machine".into());
        let binaries = std::env::var("CHAOS_BINARIES").unwrap_or_else(|_| "debug binaries".into());
        match std::fs::write(&path, report.markdown(&machine, &binaries)) {
            Ok(()) => println!("written: {path}"),
            Err(err) => {
                eprintln!("chaos: cannot write {path}: {err}");
                return ExitCode::from(2);
            }
        }
    }
    if report.held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
