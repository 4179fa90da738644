//! The `halb` command line: `run`, `check`, `ctl`, `demo`.

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
    /// Talk to a running halb through its admin socket (`global.admin_socket`):
    /// `show info`, `show servers [BACKEND]`, `show vrrp`,
    /// `set server BACKEND/SERVER state ready|drain|maint`,
    /// `set server BACKEND/SERVER weight N`, `reload`.
    Ctl {
        /// Admin socket path (default: `global.admin_socket` of `--config`, else
        /// /run/halb/admin.sock).
        #[arg(short, long)]
        socket: Option<PathBuf>,
        /// Read the admin socket path from this configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Answer in JSON.
        #[arg(long)]
        json: bool,
        /// The command, e.g. `show servers app`.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        command: Vec<String>,
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
        Command::Ctl {
            socket,
            config,
            json,
            command,
        } => ctl(socket, config, json, &command),
        Command::Demo { port } => match halb::demo::start(port) {
            Ok(cfg) => run(cfg),
            Err(e) => {
                eprintln!("halb demo: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Default admin socket when neither `--socket` nor `--config` says otherwise.
const DEFAULT_ADMIN_SOCKET: &str = "/run/halb/admin.sock";

/// `halb ctl`: send one command line, print the answer; exit 1 on an error answer.
fn ctl(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
    command: &[String],
) -> ExitCode {
    use std::io::{Read, Write};
    let path = match (socket, config) {
        (Some(p), _) => p,
        (None, Some(c)) => match halb::config::load(&c) {
            Ok(cfg) => match cfg.global.admin_socket {
                Some(p) => p,
                None => {
                    eprintln!("halb ctl: {} has no global.admin_socket", c.display());
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => PathBuf::from(DEFAULT_ADMIN_SOCKET),
    };
    let mut line = command.join(" ");
    if json {
        line.push_str(" --json");
    }
    line.push('\n');
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "halb ctl: cannot connect to {}: {e} (is halb running with global.admin_socket set?)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut answer = String::new();
    if let Err(e) = stream
        .write_all(line.as_bytes())
        .and_then(|_| stream.read_to_string(&mut answer))
    {
        eprintln!("halb ctl: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let failed = answer.starts_with("error: ")
        || serde_json::from_str::<serde_json::Value>(&answer)
            .is_ok_and(|v| v.get("ok") == Some(&serde_json::Value::Bool(false)));
    // Written without print!: a closed pipe (`halb ctl ... | head`) is not an error here.
    if failed {
        let _ = std::io::stderr().write_all(answer.as_bytes());
        ExitCode::FAILURE
    } else {
        let _ = std::io::stdout().write_all(answer.as_bytes());
        ExitCode::SUCCESS
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
