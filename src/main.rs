//! The `clearance` command: `serve`, `migrate`, `token issue`,
//! `signin-link`, `workflows check`, `check` (the CI gate), `keys rotate`,
//! `export allowlist`, `audit verify` and `health`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use clearance::auth::{Role, TokenIssuer, load_or_create_secret};
use clearance::clock::{Clock, ManualClock, SharedClock, SystemClock};
use clearance::config::{ClockMode, Config, DatabaseUrl};
use clearance::db::{Store, StoreError};
use clearance::exports::allowlist::ExportFormat;
use clearance::startup::{Application, open_store};
use clearance::workflow::Catalog;

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
    /// Workflow definitions.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// CI gate: exit 0 if the model is allowed in this context, 1 if denied,
    /// 2 if it cannot be decided. Asks `--server`, or decides offline from
    /// `--attestation` and `--jwks`.
    Check(CheckArgs),
    /// Attestation signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The clearances exported for gateways, fetched from `--server`.
    #[command(subcommand)]
    Export(ExportCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a one-time link that signs a person in to the console, for
    /// development and bootstrap (refused when an identity provider is
    /// configured). It works for 15 minutes, once.
    SigninLink(SigninLinkArgs),
    /// Ask the service running here (at `CLEARANCE_BIND`) whether it is alive
    /// (`/healthz`) or, with `--ready`, ready (`/readyz`): exit 0 when it
    /// answers 200, else 1. For container health checks: the image has no curl.
    Health(HealthArgs),
}

#[derive(Debug, Args)]
struct HealthArgs {
    /// Ask `/readyz` (the database answers) instead of `/healthz`.
    #[arg(long)]
    ready: bool,
}

#[derive(Debug, Args)]
struct SigninLinkArgs {
    #[command(flatten)]
    person: Person,
    /// Their name, as the console shows it.
    #[arg(long)]
    name: Option<String>,
}

/// Who a token or a sign-in link stands for.
#[derive(Debug, Args)]
struct Person {
    /// The person's or system's id (`token issue`: default `bootstrap`).
    #[arg(long)]
    sub: Option<String>,
    /// Their email address.
    #[arg(long)]
    email: Option<String>,
    /// A role; repeat for several.
    #[arg(long = "role", required = true, value_parser = parse_role)]
    roles: Vec<Role>,
}

/// The context a model will be used in, as a check item states it.
#[derive(Debug, Args)]
struct ContextArgs {
    /// The use case, e.g. `support-chat`.
    #[arg(long)]
    use_case: Option<String>,
    /// A data class that will be sent (public, internal, confidential, personal, special_category); repeat for several.
    #[arg(long = "data-class")]
    data_classes: Vec<String>,
    /// A region of use or processing; repeat for several.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// A feature that will be turned on; repeat for several.
    #[arg(long = "feature")]
    features: Vec<String>,
}

/// The Clearance server a command asks, and the token it asks with.
#[derive(Debug, Args)]
struct ServerArgs {
    /// Base URL of a Clearance server.
    #[arg(long, env = "CLEARANCE_SERVER")]
    server: Option<String>,
    /// Bearer token for the server (an integrator's).
    #[arg(long, env = "CLEARANCE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ServerArgs {
    /// The server and token, or what is missing.
    fn both(&self) -> Result<(&str, &str), String> {
        let server = self
            .server
            .as_deref()
            .ok_or("give --server (or CLEARANCE_SERVER)")?;
        let token = self
            .token
            .as_deref()
            .ok_or("give --token (or CLEARANCE_TOKEN)")?;
        Ok((server, token))
    }
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the audit chain and print the result as JSON; exit 0 when
    /// intact, 1 when broken, 2 when the database cannot be read.
    Verify,
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Print the models allowed in a context (`GET /v1/exports/allowlist`)
    /// as JSON, CSV or a LiteLLM `model_list`; exit 2 when it cannot.
    Allowlist(AllowlistArgs),
}

#[derive(Debug, Args)]
struct AllowlistArgs {
    #[command(flatten)]
    context: ContextArgs,
    /// How the list is written.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    format: ExportFormat,
    /// The LiteLLM access group the models are put in (server default: `cleared`).
    #[arg(long)]
    access_group: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key; older keys stay published so attestations they
    /// signed keep verifying until they expire.
    Rotate,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// `provider/model`.
    subject: String,
    #[command(flatten)]
    context: ContextArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// A saved attestation (the body of `GET /v1/status/{provider}/{model}/attestation`);
    /// decides offline, whatever `--server` or `CLEARANCE_SERVER` says.
    #[arg(long, requires = "jwks")]
    attestation: Option<std::path::PathBuf>,
    /// The JWKS document (`GET /.well-known/jwks.json`) to verify it with.
    #[arg(long)]
    jwks: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum WorkflowsCommand {
    /// Check every workflow file; print `file:line:col: message` per problem.
    Check {
        /// Folder of workflow files (default: the configured one).
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a token that a server with the same configuration accepts.
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
struct IssueArgs {
    #[command(flatten)]
    person: Person,
    /// How long the token stays valid, e.g. `8h`, `30m`, `7d`.
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    ttl: chrono::TimeDelta,
}

fn parse_ttl(text: &str) -> Result<chrono::TimeDelta, String> {
    let ttl = clearance::duration::parse(text).map_err(|e| e.to_string())?;
    let most = clearance::auth::MAX_TOKEN_LIFETIME;
    if ttl > most {
        return Err(format!(
            "a token lives at most {} days; the service refuses longer ones",
            most.num_days()
        ));
    }
    Ok(ttl)
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::named(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(code) = without_configuration(&cli.command) {
        return code;
    }
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
        Ok(code) => code,
        Err(error) => {
            print_error(&error.to_string());
            ExitCode::FAILURE
        }
    }
}

/// Runs the commands that need no server configuration — a pipeline's
/// gate, a gateway's deployment step, checking a folder of workflows — and
/// answers `None` for every other command.
fn without_configuration(command: &Command) -> Option<ExitCode> {
    match command {
        Command::Check(args) => Some(gate(args)),
        Command::Export(ExportCommand::Allowlist(args)) => Some(export_allowlist(args)),
        Command::Workflows(WorkflowsCommand::Check { dir: Some(dir) }) => {
            Some(check_workflows(dir))
        }
        _ => None,
    }
}

impl ContextArgs {
    /// A check item of `provider/model` in this context.
    fn item(
        &self,
        provider: String,
        model: String,
    ) -> Result<clearance::status::CheckContext, String> {
        let data_classes = self
            .data_classes
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.clone()))
                    .map_err(|_| format!("unknown data class `{c}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(clearance::status::CheckContext {
            provider,
            model,
            use_case: self.use_case.clone(),
            data_classes: (!data_classes.is_empty()).then_some(data_classes),
            regions: (!self.regions.is_empty()).then(|| self.regions.clone()),
            features: (!self.features.is_empty()).then(|| self.features.clone()),
        })
    }
}

fn gate(args: &CheckArgs) -> ExitCode {
    use clearance::gate::{Verdict, check_offline, check_online, parse_subject};
    let decide = || -> Result<Verdict, String> {
        let (provider, model) = parse_subject(&args.subject)?;
        let context = args.context.item(provider, model)?;
        if let (Some(attestation), Some(jwks)) = (&args.attestation, &args.jwks) {
            let token = std::fs::read_to_string(attestation)
                .map_err(|e| format!("{}: {e}", attestation.display()))?;
            let jwks =
                std::fs::read_to_string(jwks).map_err(|e| format!("{}: {e}", jwks.display()))?;
            return Ok(check_offline(&token, &jwks, &context, chrono::Utc::now()));
        }
        let (server, token) = args
            .server
            .both()
            .map_err(|missing| format!("{missing}, or --attestation with --jwks"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(runtime.block_on(check_online(server, token, &context)))
    };
    let verdict = decide().unwrap_or_else(|message| Verdict {
        code: 2,
        message: format!("cannot decide: {message}"),
    });
    println!("{}", verdict.message);
    ExitCode::from(verdict.code)
}

fn export_allowlist(args: &AllowlistArgs) -> ExitCode {
    let request = clearance::exports::allowlist::Request {
        use_case: args.context.use_case.clone(),
        data_classes: args.context.data_classes.clone(),
        regions: args.context.regions.clone(),
        features: args.context.features.clone(),
        format: Some(args.format.as_str().to_owned()),
        access_group: args.access_group.clone(),
    };
    let fetched = args.server.both().and_then(|(server, token)| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|runtime| {
                runtime.block_on(clearance::exports::allowlist::fetch(
                    server, token, &request,
                ))
            })
    });
    match fetched {
        Ok(body) => {
            print!("{body}");
            if !body.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            print_error(&format!("cannot export the allowlist: {message}"));
            ExitCode::from(2)
        }
    }
}

/// Prints each problem on one line, without a driver's indentation.
fn print_error(message: &str) {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!("clearance: {}", lines.join("\n"));
}

fn check_workflows(dir: &std::path::Path) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("{}: not a folder", dir.display());
        return ExitCode::from(2);
    }
    match Catalog::load_dir(dir) {
        Ok(catalog) => {
            for loaded in catalog.all() {
                let questions: usize = loaded
                    .workflow
                    .stages
                    .iter()
                    .map(|s| s.questionnaire.questions().count())
                    .sum();
                println!(
                    "{} v{}: {} stages, {questions} questions, ok",
                    loaded.workflow.id,
                    loaded.workflow.version,
                    loaded.workflow.stages.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            eprintln!("{} problem(s)", problems.len());
            ExitCode::FAILURE
        }
    }
}

/// `clearance audit verify`: reads the store the configuration names without
/// changing it (no migrations), so it is safe to point at a live database.
async fn verify_audit(config: &Config) -> ExitCode {
    let database = config.database.clone();
    let opened = tokio::task::spawn_blocking(move || {
        if let DatabaseUrl::Sqlite(path) = &database
            && !path.exists()
        {
            return Err(format!("there is no database at {}", path.display()).into());
        }
        let store = Store::open(&database, 1)?;
        if !store.ready()? {
            return Err(
                "the database has pending migrations; run `clearance migrate` first".into(),
            );
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(store)
    })
    .await;
    let store = match opened {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => return cannot_verify(&*error),
        Err(error) => return cannot_verify(&error),
    };
    let result = store
        .run(|conn| clearance::audit::store::verify_chain(conn).map_err(StoreError::from))
        .await;
    let verification = match result {
        Ok(verification) => verification,
        Err(error) => return cannot_verify(&error),
    };
    match serde_json::to_string_pretty(&verification) {
        Ok(json) => println!("{json}"),
        Err(error) => return cannot_verify(&error),
    }
    if verification.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn cannot_verify(error: &dyn std::error::Error) -> ExitCode {
    print_error(&format!("cannot verify the audit log: {error}"));
    ExitCode::from(2)
}

async fn run(command: Command, config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            clearance::telemetry::init(config.log_format);
            let app = match config.clock {
                ClockMode::System => {
                    let clock: SharedClock = Arc::new(SystemClock);
                    Application::build(config, clock).await?
                }
                ClockMode::Manual => {
                    let clock = Arc::new(ManualClock::new(SystemClock.now()));
                    Application::build_manual(config, clock).await?
                }
            };
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
        Command::Audit(AuditCommand::Verify) => return Ok(verify_audit(&config).await),
        Command::Workflows(WorkflowsCommand::Check { .. }) => {
            if check_workflows(&config.workflows) != ExitCode::SUCCESS {
                return Err("the workflows are invalid".into());
            }
        }
        Command::Check(_) | Command::Export(_) => {
            return Err("this command runs without configuration".into());
        }
        Command::Keys(KeysCommand::Rotate) => {
            let kid = clearance::status::attestation::generate(&config.attestation_keys)?;
            println!(
                "new signing key {kid} in {}; restart the service to sign with it",
                config.attestation_keys.display()
            );
        }
        Command::Health(args) => return Ok(health(config.bind, args.ready)),
        Command::SigninLink(args) => {
            if config.oidc.is_some() {
                eprintln!(
                    "clearance: development sign-in is off: CLEARANCE_OIDC_ISSUER is configured, \
                     so people sign in with the identity provider"
                );
                return Ok(ExitCode::from(2));
            }
            let secret = load_or_create_secret(config.jwt.secret.as_deref(), &config.data_dir)?;
            let links = clearance::console::links::Links::new(&secret)?;
            let Some(sub) = args.person.sub else {
                eprintln!("clearance: give --sub: the id of the person the link signs in");
                return Ok(ExitCode::from(2));
            };
            let token = links.issue(&clearance::console::session::SignedIn {
                sub,
                email: args.person.email.clone(),
                name: args.name.clone(),
                roles: args.person.roles.iter().copied().collect(),
            })?;
            println!(
                "{}/signin/link/{token}",
                config.public_url.as_str().trim_end_matches('/')
            );
        }
        Command::Token(TokenCommand::Issue(args)) => {
            let secret = load_or_create_secret(config.jwt.secret.as_deref(), &config.data_dir)?;
            let ttl = args.ttl;
            let token = TokenIssuer::new(&secret, &config.jwt)?.issue(
                args.person.sub.as_deref().unwrap_or("bootstrap"),
                args.person.email.as_deref(),
                &args.person.roles,
                SystemClock.now(),
                ttl,
            )?;
            println!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `GET /healthz` (or `/readyz`) of the service listening at `bind`, over
/// loopback when it listens on every address; 0 on a 200.
fn health(bind: std::net::SocketAddr, ready: bool) -> ExitCode {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    use std::time::Duration;

    let ip = match bind.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    let address = SocketAddr::new(ip, bind.port());
    let path = if ready { "/readyz" } else { "/healthz" };
    let timeout = Duration::from_secs(5);
    let answer = TcpStream::connect_timeout(&address, timeout).and_then(|mut stream| {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = Vec::new();
        stream.take(1024).read_to_end(&mut head)?;
        Ok(head)
    });
    let status_line = match answer {
        Ok(head) => String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(error) => {
            eprintln!("clearance: http://{address}{path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if status_line.split(' ').nth(1) == Some("200") {
        println!("http://{address}{path}: {status_line}");
        ExitCode::SUCCESS
    } else {
        eprintln!("clearance: http://{address}{path}: {status_line}");
        ExitCode::FAILURE
    }
}
