//! `openclawctl`: parses arguments, runs the command, maps the outcome to
//! an exit code (0 ok, 1 problem found, 2 usage/internal, 78 conflict), and
//! under `--json` prints one document, errors included.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use openclaw_profiles::{outln, stdout};
use openclawctl::cli::{Cli, Command, ExportCommand, ProfileCommand, ServiceCommand, Targets};
use openclawctl::context::Context;
use openclawctl::lifecycle::{self, StartOptions};
use openclawctl::profile_cmd::{self, CreateOptions};
use openclawctl::{
    CmdResult, Failure, export, keeper, launch, logs_cmd, report, service_cmd, status,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors are errors too under --json.
            let wants_json = std::env::args().any(|a| a == "--json");
            if wants_json && e.use_stderr() {
                let doc = report::document(
                    Some((e.kind().as_str().unwrap_or("usage error"), 2)),
                    Vec::new(),
                );
                outln!("{doc}");
                let _ = e.print();
                return ExitCode::from(2);
            }
            e.exit();
        }
    };
    report::set_json(cli.json);
    let prints_own_document = matches!(
        cli.command,
        Command::Status(_)
            | Command::Doctor(_)
            | Command::Dashboard { .. }
            | Command::Logs(_)
            | Command::Completions { .. }
            | Command::Keep { .. }
            | Command::Profile(ProfileCommand::List | ProfileCommand::Show { .. })
            | Command::Service(ServiceCommand::Status { .. } | ServiceCommand::Render { .. })
    );
    let result = run(cli.command);
    let items = report::take_items();
    if report::json()
        && (!prints_own_document || result.as_ref().is_err_and(|f| !f.message.is_empty()))
    {
        let error = result.as_ref().err().map(|f| (f.message.as_str(), f.code));
        let error = error.map(|(m, c)| (if m.is_empty() { "failed" } else { m }, c));
        match serde_json::to_string_pretty(&report::document(error, items)) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("openclawctl: {e}"),
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("openclawctl: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// The profiles a command names: positional names and `--profile`s, or
/// every known profile with `--all`.
fn names(ctx: &Context, t: &Targets, verb: &str) -> Result<Vec<String>, Failure> {
    if t.all {
        let all: Vec<String> = ctx
            .registry
            .list()
            .into_iter()
            .map(|k| k.paths.profile.to_string())
            .collect();
        if all.is_empty() {
            return Err(Failure::usage(format!(
                "no profiles to {verb}: create one with `openclawctl profile create <name>`"
            )));
        }
        return Ok(all);
    }
    let mut named: Vec<String> = t.names.iter().chain(&t.profiles).cloned().collect();
    named.dedup();
    if named.is_empty() {
        return Err(Failure::usage(format!(
            "name the profiles to {verb} (`openclawctl {verb} a b`, `--profile a`) or pass --all"
        )));
    }
    Ok(named)
}

fn exit_code(code: u8) -> CmdResult {
    match code {
        0 => Ok(()),
        code => Err(Failure {
            code,
            message: String::new(),
        }),
    }
}

fn run(command: Command) -> CmdResult {
    if let Command::Completions { shell } = command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "openclawctl", &mut buf);
        stdout::write_bytes(&buf);
        return Ok(());
    }
    if let Command::Keep { profile } = &command {
        // A resident keeper loads no more than its own profile.
        return exit_code(keeper::run_profile(profile));
    }
    let mut ctx = Context::load()?;
    let json = report::json();
    match command {
        Command::Profile(ProfileCommand::Create {
            name,
            port,
            state_dir,
            config,
            ports,
            limits,
        }) => {
            let mut parsed = openclaw_profiles::limits::Limits::default();
            profile_cmd::apply_limits(&mut parsed, &limits.given())?;
            let created = profile_cmd::create(
                &mut ctx,
                &name,
                &CreateOptions {
                    port,
                    state_dir,
                    config,
                    ports,
                    limits: parsed,
                },
            )?;
            let item = serde_json::to_value(&created).unwrap_or_default();
            report::done(&created, item);
            Ok(())
        }
        Command::Profile(ProfileCommand::List) => profile_cmd::list(&ctx, json),
        Command::Profile(ProfileCommand::Show { name }) => profile_cmd::show(&ctx, &name, json),
        Command::Profile(ProfileCommand::Rm { name, purge, force }) => {
            profile_cmd::rm(&mut ctx, &name, profile_cmd::RmOptions { purge, force })
        }
        Command::Profile(ProfileCommand::Set {
            name,
            key,
            value,
            limits,
        }) => {
            let mut given = limits.given();
            if let (Some(key), Some(value)) = (key, value) {
                match openclaw_profiles::limits::Kind::parse(&key) {
                    Some(kind) => given.push((kind, value)),
                    None if given.is_empty() => {
                        return profile_cmd::set(&mut ctx, &name, &key, &value);
                    }
                    None => {
                        return Err(Failure::usage(format!(
                            "set `{key}` and the limits in two commands"
                        )));
                    }
                }
            }
            profile_cmd::set_limits(&mut ctx, &name, &given)
        }
        Command::Start(args) => {
            let targets = names(&ctx, &args.targets, "start")?;
            lifecycle::start(&ctx, &targets, &start_options(&args))
        }
        Command::Stop(args) => {
            let targets = names(&ctx, &args.targets, "stop")?;
            lifecycle::stop(&ctx, &targets, Duration::from_secs(args.timeout))
        }
        Command::Restart(args) => {
            let targets = names(&ctx, &args.targets, "restart")?;
            lifecycle::restart(&ctx, &targets, &start_options(&args))
        }
        Command::Status(args) => {
            let named: Vec<String> = args.names.into_iter().chain(args.profiles).collect();
            status::status(&ctx, &named, json)
        }
        Command::Logs(args) => {
            let named: Vec<String> = args.names.into_iter().chain(args.profiles).collect();
            logs_cmd::logs(&ctx, &named, args.lines, args.follow)
        }
        Command::Dashboard { port } => openclawctl::dashboard::serve(&ctx, port),
        Command::Doctor(args) if args.kubernetes.is_some() => export::lint_kubernetes(
            args.kubernetes
                .as_deref()
                .unwrap_or(std::path::Path::new(".")),
            json,
        ),
        Command::Export(ExportCommand::Kubernetes {
            targets,
            out,
            image,
            storage,
        }) => {
            let targets = names(&ctx, &targets, "export")?;
            export::kubernetes(&ctx, &targets, &out, image, storage)
        }
        Command::Export(ExportCommand::Systemd {
            targets,
            out,
            binary,
            home,
        }) => {
            let targets = names(&ctx, &targets, "export")?;
            export::systemd(&ctx, &targets, &out, &binary, home.as_deref())
        }
        Command::Doctor(args) => {
            for p in &args.profiles {
                ctx.known_profile(p)?;
            }
            let profiles: Vec<_> = ctx.registry.list().into_iter().map(|k| k.paths).collect();
            let binary =
                openclaw_service_templates::doctor::absolute(launch::gateway_binary(&ctx.env));
            let opts = openclaw_service_templates::doctor::Options {
                only: args.profiles,
                json,
                fix: args.fix,
                yes: args.yes,
                deep: args.deep,
            };
            exit_code(openclaw_service_templates::doctor::run(
                &ctx.env,
                ctx.registry.home(),
                &profiles,
                &binary,
                &opts,
            ))
        }
        Command::Service(ServiceCommand::Install { targets, force }) => {
            let targets = names(&ctx, &targets, "install")?;
            service_cmd::install_all(&ctx, &targets, force)
        }
        Command::Service(ServiceCommand::Uninstall { targets }) => {
            let targets = names(&ctx, &targets, "uninstall")?;
            service_cmd::uninstall_all(&ctx, &targets)
        }
        Command::Service(ServiceCommand::Status { profiles, deep }) => {
            service_cmd::status(&ctx, &profiles, deep, json)
        }
        Command::Service(ServiceCommand::Render { profile, target }) => {
            service_cmd::render(&ctx, &profile, &target)
        }
        Command::Completions { .. } => Ok(()),
        Command::Keep { .. } => unreachable!("handled before the context is loaded"),
    }
}

fn start_options(args: &openclawctl::cli::StartArgs) -> StartOptions {
    StartOptions {
        wait: Duration::from_secs(args.wait),
        no_wait: args.no_wait,
        verbose: args.verbose,
    }
}
