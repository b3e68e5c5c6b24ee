//! `openclaw`: parses arguments, sets up logging and signals, runs the
//! library and maps the outcome to an exit code (0 ok, 2 usage, 78 config,
//! lock or port conflict).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use openclaw_gateway::cli::{ChannelsCommand, Cli, Command, GatewayCommand, NodeCommand};
use openclaw_gateway::settings::{self, GatewayFlags};
use openclaw_gateway::{Gateway, StartError, agent_ops, guard, nodes_ops, ops, service};
use openclaw_profiles::ProfileName;
use openclaw_profiles::contract::ENV_LIFELINE;
use openclaw_profiles::paths::{EnvSnapshot, apply_cli_profile_env};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Runtime worker threads of a gateway (default 1).
const ENV_WORKERS: &str = "OPENCLAW_GATEWAY_WORKERS";

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.log_level.as_deref(), cli.no_color);
    let profile = match profile_from(&cli) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("[openclaw] {msg}");
            return ExitCode::from(2);
        }
    };
    let mut env = EnvSnapshot::from_process();
    if let Some(p) = &profile
        && let Err(e) = apply_cli_profile_env(&mut env, p)
    {
        eprintln!("[openclaw] {e}");
        return ExitCode::from(2);
    }
    // One rule under every manager: the state dir's `.env` fills what the
    // process env leaves unset, for the gateway and the operator commands.
    openclaw_profiles::dotenv::apply_state_dotenv(&mut env);
    match cli.command {
        Command::Doctor {
            json,
            fix,
            yes,
            non_interactive,
            deep,
        } => {
            // --yes repairs without asking; --non-interactive never asks, so
            // without --yes it only reports.
            let fix = fix || yes;
            let fix = fix && (yes || !non_interactive);
            doctor(&env, json, fix, yes, deep)
        }
        Command::Health(conn) => {
            ExitCode::from(ops::health(&env, &conn.to_conn(), cli.verbose > 0))
        }
        Command::Status { deep, all, conn } => {
            ExitCode::from(ops::status(&env, &conn.to_conn(), deep || all))
        }
        Command::Logs {
            lines,
            max_bytes,
            follow,
            interval,
            plain: _,
            utc: _,
            conn,
        } => ExitCode::from(ops::logs(
            &env,
            &conn.to_conn(),
            &ops::LogsOptions {
                lines,
                max_bytes,
                follow,
                interval: std::time::Duration::from_millis(interval.max(50)),
            },
        )),
        Command::Channels {
            command:
                ChannelsCommand::Status {
                    probe,
                    channel,
                    conn,
                },
        } => ExitCode::from(ops::channels_status(
            &env,
            &conn.to_conn(),
            probe,
            channel.as_deref(),
        )),
        Command::Devices {
            action,
            request_id,
            conn,
        } => ExitCode::from(ops::devices(
            &env,
            &conn.to_conn(),
            &action,
            request_id.as_deref(),
        )),
        Command::Agent(args) => ExitCode::from(agent_ops::agent(&env, &args)),
        Command::Dashboard { no_open, json } => {
            ExitCode::from(agent_ops::dashboard(&env, no_open, json))
        }
        Command::Sessions(args) => ExitCode::from(agent_ops::sessions(&env, &args)),
        Command::Node {
            command:
                NodeCommand::Run {
                    host,
                    port,
                    display_name,
                    allow_run,
                },
        } => node_run(&env, host, port, display_name, allow_run),
        Command::Nodes { command, conn } => {
            ExitCode::from(nodes_ops::nodes(&env, &conn.to_conn(), &command))
        }
        Command::Pairing { action, args, conn } => {
            ExitCode::from(ops::pairing(&env, &conn.to_conn(), &action, &args))
        }
        Command::Gateway(args) => {
            let service_result = match args.command {
                Some(GatewayCommand::Install { port, force }) => {
                    service::install(&env, port, force)
                }
                Some(GatewayCommand::Uninstall) => service::uninstall(&env),
                Some(GatewayCommand::Start) => service::control(&env, "start"),
                Some(GatewayCommand::Stop) => service::control(&env, "stop"),
                Some(GatewayCommand::Restart) => service::control(&env, "restart"),
                Some(GatewayCommand::Status { deep, json }) => service::status(&env, deep, json),
                Some(GatewayCommand::Run(run)) => return run_foreground(&run.to_flags(), &env),
                Some(GatewayCommand::Call {
                    method,
                    params,
                    expect_final,
                    conn,
                }) => {
                    return ExitCode::from(ops::call(
                        &env,
                        &conn.to_conn(),
                        &method,
                        params.as_deref(),
                        expect_final,
                    ));
                }
                Some(GatewayCommand::Probe(conn)) => {
                    return ExitCode::from(ops::probe(&env, &conn.to_conn()));
                }
                Some(GatewayCommand::Healthcheck {
                    ready,
                    port,
                    timeout,
                }) => {
                    return match ops::healthcheck(&env, ready, port, timeout) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(why) => {
                            eprintln!("openclaw gateway healthcheck: {why}");
                            ExitCode::from(1)
                        }
                    };
                }
                None => return run_foreground(&args.run.to_flags(), &env),
            };
            match service_result {
                Ok(()) => ExitCode::SUCCESS,
                Err((msg, code)) => {
                    eprintln!("openclaw gateway: {msg}");
                    ExitCode::from(code)
                }
            }
        }
    }
}

/// `openclaw doctor`: the same checks as `openclawctl doctor`, over every
/// profile of this host, reporting what involves this profile.
fn doctor(env: &EnvSnapshot, json: bool, fix: bool, yes: bool, deep: bool) -> ExitCode {
    let (paths, registry) = match (
        openclaw_profiles::paths::resolve_paths(env),
        openclaw_profiles::registry::Registry::load_lenient(env),
    ) {
        (Ok(p), Ok((r, _))) => (p, r),
        (Err(e), _) => return fail(&e.to_string()),
        (_, Err(e)) => return fail(&e.to_string()),
    };
    let mut profiles: Vec<_> = registry.list().into_iter().map(|k| k.paths).collect();
    if !profiles.iter().any(|p| p.profile == paths.profile) {
        profiles.push(paths.clone());
    }
    let binary = std::env::current_exe().unwrap_or_else(|_| "openclaw".into());
    let opts = openclaw_service_templates::doctor::Options {
        only: vec![paths.profile.to_string()],
        json,
        fix,
        yes,
        deep,
    };
    ExitCode::from(openclaw_service_templates::doctor::run(
        env,
        registry.home(),
        &profiles,
        &binary,
        &opts,
    ))
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("openclaw: {msg}");
    ExitCode::from(2)
}

fn run_foreground(flags: &GatewayFlags, env: &EnvSnapshot) -> ExitCode {
    match run_gateway(flags, env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openclaw gateway: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn profile_from(cli: &Cli) -> Result<Option<ProfileName>, String> {
    match (&cli.profile, cli.dev) {
        (Some(p), false) => ProfileName::parse(p).map(Some).map_err(|e| e.to_string()),
        (Some(p), true) if p != "dev" => Err("Cannot combine --dev with --profile".into()),
        (_, true) => Ok(Some(
            ProfileName::parse("dev").expect("dev is a valid name"),
        )),
        (None, false) => Ok(None),
    }
}

fn init_tracing(verbose: u8, level: Option<&str>, no_color: bool) {
    let default = match (verbose, level) {
        (0, Some("silent")) => "off".into(),
        (0, Some(l)) => l.to_string(),
        (0, None) => std::env::var("OPENCLAW_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        (1, _) => "debug".into(),
        _ => "trace".into(),
    };
    let ansi =
        !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let mut filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // These crates trace whole frames and headers (tokens in `connect`,
    // `Authorization`): no level of ours may print a secret, so they stop at
    // info whatever RUST_LOG says.
    for quiet in openclaw_gateway::SECRET_BEARING_LOG_TARGETS {
        if let Ok(d) = format!("{quiet}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        // A closed stderr (a keeper that died) must not turn every log line
        // into a panic: tracing's own error report uses eprintln!.
        .log_internal_errors(false)
        .init();
}

fn run_gateway(flags: &GatewayFlags, env: &EnvSnapshot) -> Result<(), StartError> {
    let settings = settings::resolve(flags, env)?;
    // One worker by default: measured on a 2-vCPU host, a second worker
    // stole freshly woken tasks and added a thread wake-up to each hop
    // (a streamed delta cost 120-150 us more than reading the provider
    // directly with two workers, 31-80 us with one; connects and `health`
    // throughput were no worse). Blocking work has its own pool either way.
    let workers = match env.get(ENV_WORKERS) {
        None => 1,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n @ 1..=64) => n,
            _ => {
                return Err(StartError::Config(format!(
                    "OPENCLAW_GATEWAY_WORKERS must be a whole number from 1 to 64 (got `{v}`); unset it for the default of 1"
                )));
            }
        },
    };
    if guard::under_service_manager(env) {
        guard::yield_to_healthy_incumbent(&settings)?;
    }
    let mut lock = guard::take_state_lock(&settings, openclaw_gateway::VERSION)?;
    // Only the state dir's owner rotates its log.
    openclaw_gateway::output::rotate_own_log(env, &settings.paths);
    let _config_lock = if env.get(guard::ENV_ALLOW_MULTI) == Some("1") {
        None
    } else {
        Some(guard::take_config_lock(
            &settings,
            openclaw_gateway::VERSION,
        )?)
    };
    if let Some((soft, hard)) = openclaw_gateway::listener::raise_nofile_limit()
        && soft < hard
    {
        tracing::debug!(from = soft, to = hard, "raised the open-files limit");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| StartError::Config(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        let listener = guard::bind_exclusive(&settings).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(format!("cannot read the bound address: {e}")))?;
        lock.set_port(addr.port())
            .map_err(|e| StartError::Config(e.to_string()))?;
        tracing::info!(
            profile = %settings.paths.profile,
            state_dir = %settings.paths.state_dir.display(),
            pid = std::process::id(),
            "listening on ws://{addr} (HTTP probes /healthz /readyz on the same port)"
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        if env.get(ENV_LIFELINE) == Some("stdin") {
            stop_when_stdin_closes(shutdown.clone());
        }
        let gw: Arc<Gateway> = Gateway::new(settings.clone(), shutdown);
        openclaw_gateway::run(gw, listener)
            .await
            .map_err(|e| StartError::Bind(format!("server error: {e}")))
    });
    tracing::info!("gateway stopped");
    drop(lock);
    result
}

/// Under `openclawctl`'s keeper, stdin is a pipe the keeper holds open: EOF
/// means the keeper is gone, and an unsupervised gateway stops.
fn stop_when_stdin_closes(shutdown: CancellationToken) {
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
        // Stop first: the keeper that read our stderr is gone too, so the
        // log line below may have nowhere to go.
        shutdown.cancel();
        tracing::warn!("supervisor lifeline closed (keeper gone); stopping");
    });
}

/// SIGTERM and SIGINT stop the gateway gracefully.
/// `openclaw node run`: exit 0 when stopped by a signal, 1 when the
/// gateway refused the secret or the identity cannot be kept, 2 on usage.
fn node_run(
    env: &EnvSnapshot,
    host: String,
    port: Option<u16>,
    display_name: Option<String>,
    allow_run: Vec<String>,
) -> ExitCode {
    use openclaw_profiles::config::Secret;
    let paths = match openclaw_profiles::paths::resolve_paths(env) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("openclaw: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = openclaw_profiles::config::load_config(&paths.config_path)
        .ok()
        .flatten()
        .unwrap_or_default();
    let port = match port.map(Ok).unwrap_or_else(|| {
        openclaw_profiles::ports::resolve_gateway_port(None, env, cfg.gateway.port)
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("openclaw: {e}");
            return ExitCode::from(2);
        }
    };
    let token = env
        .get(openclaw_profiles::contract::ENV_GATEWAY_TOKEN)
        .map(Secret::new)
        .or_else(|| cfg.gateway.auth.token.clone());
    let password = env
        .get(openclaw_profiles::contract::ENV_GATEWAY_PASSWORD)
        .map(Secret::new)
        .or_else(|| cfg.gateway.auth.password.clone())
        .filter(|_| token.is_none());
    let display_name = display_name.unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "node".into())
    });
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let opts = openclaw_gateway::node_host::Options {
        url: format!("ws://{host}:{port}"),
        token,
        password,
        state_dir: paths.state_dir,
        display_name,
        allow_run,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("openclaw: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let stop = CancellationToken::new();
    let result = runtime.block_on(async {
        tokio::spawn(stop_on_signal(stop.clone()));
        openclaw_gateway::node_host::run(opts, stop).await
    });
    match result {
        Ok(openclaw_gateway::node_host::Stop::Signal) => ExitCode::SUCCESS,
        Ok(openclaw_gateway::node_host::Stop::AuthRefused(m)) => {
            eprintln!("openclaw: the gateway refused this node: {m}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("openclaw: {e}");
            ExitCode::from(1)
        }
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the gateway with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "stopping");
    shutdown.cancel();
}
