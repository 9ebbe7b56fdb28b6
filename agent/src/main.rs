//! `mangrove-agent`: enrolls with a controller, then reports this machine's state and runs
//! the tasks it is given, keeping every report on disk until the controller has it.
//!
//! The agent is deliberately small: no database, no policy engine, no web server. Everything
//! it must not lose goes through its outbox.

mod ansible;
mod antivirus;
mod backup;
mod config;
mod enroll;
mod facts;
mod net;
mod outbox;
mod proxy;
mod runner;
mod security;
mod session;
mod state;
mod tasks;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "mangrove-agent", version, about = "The Mangrove agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll with a controller using a bootstrap token from `mangrove token create --role agent`.
    Enroll {
        /// The controller's enrollment endpoint, host:port.
        #[arg(long)]
        controller: String,
        /// The bootstrap token (or set MANGROVE_AGENT_TOKEN, to keep it out of the process list).
        #[arg(long, env = "MANGROVE_AGENT_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Run the agent until SIGTERM or Ctrl-C.
    Run {
        #[arg(long)]
        state_dir: PathBuf,
        /// Configuration file (default: <state-dir>/agent.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the agent's outbox state; works while the agent runs.
    Status {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // One line, whatever a cause's message holds (TOML errors carry a snippet).
        let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("mangrove-agent: {msg}");
        std::process::exit(1);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MANGROVE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs that go to files (the testbed's, systemd's) stay plain
    // text that grep and the tests can read.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // One thread: the agent does little at a time and must stay small.
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Enroll { controller, token, state_dir } => {
            let st = state::StateDir::new(&state_dir);
            let e = runtime()?.block_on(enroll::enroll(&controller, &token, &st))?;
            println!("enrolled as {}; agent endpoint {}", e.host, e.agent_endpoint);
            Ok(())
        }
        Command::Run { state_dir, config } => {
            init_tracing();
            let st = state::StateDir::new(&state_dir);
            let cfg = config::AgentConfig::load(config.as_deref(), &st.config())?;
            let rt = runtime()?;
            rt.block_on(async {
                let shutdown = CancellationToken::new();
                let s = shutdown.clone();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    s.cancel();
                });
                session::run(st, cfg, shutdown).await
            })
        }
        Command::Status { state_dir, json } => {
            let st = state::StateDir::new(&state_dir);
            let host = Some(st.enrollment()?.host);
            let (meta, len) = outbox::read_status(&st.outbox())?;
            let v = serde_json::json!({
                "host": host,
                "state_dir": state_dir.display().to_string(),
                "last_seq_assigned": meta.last_seq_assigned,
                "last_seq_acked": meta.last_seq_acked,
                "outbox_len": len,
                "outbox_dropped": meta.dropped,
                "outbox_compacted": meta.compacted,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "host {}\nlast seq assigned {}\nlast seq acked {}\noutbox {} waiting, {} dropped, {} compacted",
                    host.as_deref().unwrap_or("-"),
                    meta.last_seq_assigned,
                    meta.last_seq_acked,
                    len,
                    meta.dropped,
                    meta.compacted
                );
            }
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
