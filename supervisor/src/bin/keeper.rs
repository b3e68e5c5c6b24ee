//! `openclawctl-keeper --profile <name>`: the keeper of one profile,
//! spawned by `openclawctl start`. A binary of its own, without the CLI's
//! argument parser and table rendering, because a keeper stays resident
//! for as long as its gateway runs and its memory is mostly code pages.

use std::process::ExitCode;

use openclawctl::keeper;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let profile = match args.as_slice() {
        [flag, name] if flag == "--profile" => name.clone(),
        _ => {
            eprintln!(
                "usage: openclawctl-keeper --profile <name> (started by `openclawctl start`)"
            );
            return ExitCode::from(2);
        }
    };
    ExitCode::from(keeper::run_profile(&profile))
}
