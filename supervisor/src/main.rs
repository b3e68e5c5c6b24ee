//! `openclawctl`: parses arguments, runs the command, maps the outcome to
//! an exit code (0 ok, 1 problem found, 2 usage/internal, 78 conflict).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use openclawctl::cli::{Cli, Command, ProfileCommand, ServiceCommand, Targets};
use openclawctl::context::Context;
use openclawctl::lifecycle::{self, StartOptions};
use openclawctl::profile_cmd::{self, CreateOptions};
use openclawctl::{CmdResult, Failure, keeper, launch, logs_cmd, service_cmd, status};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("openclawctl: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn names(ctx: &Context, t: &Targets) -> Vec<String> {
    if t.all {
        ctx.registry
            .list()
            .into_iter()
            .map(|k| k.paths.profile.to_string())
            .collect()
    } else {
        t.profiles.clone()
    }
}

fn run(cli: Cli) -> CmdResult {
    if let Command::Completions { shell } = cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "openclawctl", &mut std::io::stdout());
        return Ok(());
    }
    let mut ctx = Context::load()?;
    match cli.command {
        Command::Profile(ProfileCommand::Create {
            name,
            port,
            state_dir,
            config,
        }) => profile_cmd::create(
            &mut ctx,
            &name,
            &CreateOptions {
                port,
                state_dir,
                config,
            },
        ),
        Command::Profile(ProfileCommand::List { json }) => profile_cmd::list(&ctx, json),
        Command::Profile(ProfileCommand::Show { name, json }) => {
            profile_cmd::show(&ctx, &name, json)
        }
        Command::Profile(ProfileCommand::Rm { name, purge, force }) => {
            profile_cmd::rm(&mut ctx, &name, profile_cmd::RmOptions { purge, force })
        }
        Command::Start(args) => {
            let targets = names(&ctx, &args.targets);
            if targets.is_empty() {
                return Err(Failure::usage(
                    "no profiles to start: create one with `openclawctl profile create <name>`",
                ));
            }
            lifecycle::start(
                &ctx,
                &targets,
                &StartOptions {
                    wait: Duration::from_secs(args.wait),
                    no_wait: args.no_wait,
                },
            )
        }
        Command::Stop(args) => {
            let targets = names(&ctx, &args.targets);
            lifecycle::stop(&ctx, &targets, Duration::from_secs(args.timeout))
        }
        Command::Restart(args) => {
            let targets = names(&ctx, &args.targets);
            lifecycle::restart(
                &ctx,
                &targets,
                &StartOptions {
                    wait: Duration::from_secs(args.wait),
                    no_wait: args.no_wait,
                },
            )
        }
        Command::Status(args) => status::status(&ctx, &args.profiles, args.json),
        Command::Logs(args) => logs_cmd::logs(&ctx, &args.profile, args.lines, args.follow),
        Command::Doctor(args) => {
            for p in &args.profiles {
                ctx.known_profile(p)?;
            }
            let profiles: Vec<_> = ctx.registry.list().into_iter().map(|k| k.paths).collect();
            let binary =
                openclaw_service_templates::doctor::absolute(launch::gateway_binary(&ctx.env));
            let opts = openclaw_service_templates::doctor::Options {
                only: args.profiles,
                json: args.json,
                fix: args.fix,
                yes: args.yes,
                deep: args.deep,
            };
            match openclaw_service_templates::doctor::run(
                &ctx.env,
                ctx.registry.home(),
                &profiles,
                &binary,
                &opts,
            ) {
                0 => Ok(()),
                code => Err(Failure {
                    code,
                    message: String::new(),
                }),
            }
        }
        Command::Service(ServiceCommand::Install { profile, force }) => {
            service_cmd::install(&ctx, &profile, force)
        }
        Command::Service(ServiceCommand::Uninstall { profile }) => {
            service_cmd::uninstall(&ctx, &profile)
        }
        Command::Service(ServiceCommand::Status {
            profiles,
            deep,
            json,
        }) => service_cmd::status(&ctx, &profiles, deep, json),
        Command::Service(ServiceCommand::Render { profile, target }) => {
            service_cmd::render(&ctx, &profile, &target)
        }
        Command::Completions { .. } => Ok(()),
        Command::Keep { profile } => {
            let paths = ctx.known_profile(&profile)?;
            match keeper::run(&ctx.env, &paths) {
                0 => Ok(()),
                code => Err(Failure {
                    code,
                    message: String::new(),
                }),
            }
        }
    }
}
