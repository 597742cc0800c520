//! The `clearance` command: `serve`, `migrate` and `token issue`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use clearance::auth::{Role, TokenIssuer, load_or_create_secret};
use clearance::clock::{Clock, ManualClock, SharedClock, SystemClock};
use clearance::config::{ClockMode, Config};
use clearance::startup::{Application, open_store};

#[derive(Debug, Parser)]
#[command(
    name = "clearance",
    version,
    about = "Due-diligence reviews of AI model providers, and whether each model is cleared"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Development and bootstrap tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a token that a server with the same configuration accepts.
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// Subject (the person or system the token stands for).
    #[arg(long, default_value = "bootstrap")]
    sub: String,
    /// Email address of the subject.
    #[arg(long)]
    email: Option<String>,
    /// A role; repeat for several.
    #[arg(long = "role", required = true, value_parser = parse_role)]
    roles: Vec<Role>,
    /// How long the token stays valid, e.g. `8h`, `30m`, `7d`.
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("clearance: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("clearance: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, even when a driver's message spans several.
            let message = error.to_string();
            eprintln!(
                "clearance: {}",
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            clearance::telemetry::init(config.log_format);
            let clock: SharedClock = match config.clock {
                ClockMode::System => Arc::new(SystemClock),
                ClockMode::Manual => Arc::new(ManualClock::new(SystemClock.now())),
            };
            let app = Application::build(config, clock).await?;
            let config = &app.state().config;
            tracing::info!(
                port = app.port(),
                database = if app.state().store.is_postgres() { "postgres" } else { "sqlite" },
                public_url = %config.public_url,
                "clearance is listening"
            );
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations are up to date");
        }
        Command::Token(TokenCommand::Issue(args)) => {
            let secret = load_or_create_secret(config.jwt.secret.as_deref(), &config.data_dir)?;
            let ttl = chrono::TimeDelta::from_std(args.ttl)?;
            let token = TokenIssuer::new(&secret, &config.jwt)?.issue(
                &args.sub,
                args.email.as_deref(),
                &args.roles,
                SystemClock.now(),
                ttl,
            )?;
            println!("{token}");
        }
    }
    Ok(())
}
