//! The `halb` command line: `run`, `check`, `demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// halb: a high-availability load balancer (VRRP + L4/L7 proxy) in one binary.
#[derive(Debug, Parser)]
#[command(name = "halb", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the load balancer in the foreground until SIGTERM/SIGINT.
    Run {
        /// Configuration file.
        #[arg(short, long, default_value = "/etc/halb/halb.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file and print a summary (exit 0 if valid, 1 if not).
    Check {
        /// Configuration file.
        #[arg(short, long, default_value = "/etc/halb/halb.toml")]
        config: PathBuf,
    },
    /// Start three built-in backends and halb in front of them on 127.0.0.1; no files needed.
    Demo {
        /// First port to use: the proxy listens here, backends on the next ports.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match halb::config::load(&config) {
            Ok(cfg) => {
                print!("{}", halb::config::summary(&cfg));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("halb: {} is not valid", config.display());
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            let cfg = match halb::config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!("halb: {} is not valid; not starting", config.display());
                    return ExitCode::FAILURE;
                }
            };
            run(cfg)
        }
        Command::Demo { port } => match halb::demo::start(port) {
            Ok(cfg) => run(cfg),
            Err(e) => {
                eprintln!("halb demo: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(cfg: halb::config::Config) -> ExitCode {
    if let Err(e) = halb::logging::init(&cfg.global.log) {
        eprintln!("halb: cannot open log target {:?}: {e}", cfg.global.log);
        return ExitCode::FAILURE;
    }
    match halb::runtime::run(cfg, |shards| eprintln!("halb: ready ({shards} shards)")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halb: {e}");
            ExitCode::FAILURE
        }
    }
}
