//! `cargo run -p mangrove-policies --example lint -- DIR...`: lints pack directories and runs
//! their unit tests, printing `file:line:column: message` per problem; exits 1 on any.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut bad = false;
    for dir in std::env::args().skip(1) {
        for d in policies::lint(Path::new(&dir)) {
            println!("{d}");
            bad = true;
        }
        match policies::run_tests_dir(&dir) {
            Ok(report) => {
                println!("{dir}: {} tests passed, {} failed", report.passed.len(), report.failed.len());
                for (id, why) in &report.failed {
                    println!("FAIL {id}: {why}");
                    bad = true;
                }
            }
            Err(e) => {
                println!("{dir}: tests not run: {e}");
                bad = true;
            }
        }
    }
    if bad { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
