//! Building the application from a configuration value: storage, migrations,
//! keys, the HTTP server and its middleware. Tests build it on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{Authenticator, TokenIssuer, load_or_create_secret};
use crate::clock::{ManualClock, SharedClock};
use crate::config::{Config, DatabaseUrl};
use crate::db::{Store, StoreError};
use crate::http::metrics::HttpMetrics;
use crate::http::{self, AppState, extract};
use crate::outbox::{Mailer, Outbox};
use crate::people::Directory;
use crate::reviews::service::Reviews;
use crate::scheduler::Scheduler;
use crate::status::StatusService;
use crate::status::attestation::AttestationKeys;
use crate::unit::UnitOfWork;
use crate::workflow::Catalog;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(#[from] crate::auth::KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("{0}")]
    Attestation(#[from] crate::status::attestation::KeyError),
    #[error("{0}")]
    Mail(String),
    #[error("console: {0}")]
    Console(String),
    #[error("invalid workflows:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Workflows(Vec<crate::workflow::file::Diagnostic>),
}

/// A built, not yet running, service that knows the port it listens on.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

/// What the application receives besides its configuration.
pub struct Parts {
    pub clock: SharedClock,
    /// Set in time-skipping mode: the clock `POST /v1/admin/clock` moves.
    pub manual_clock: Option<Arc<ManualClock>>,
    /// Where emails go; `None`: as configured (SMTP, or files).
    pub mailer: Option<Mailer>,
}

impl Application {
    pub async fn build(config: Config, clock: SharedClock) -> Result<Self, StartupError> {
        Self::build_with(
            config,
            Parts {
                clock,
                manual_clock: None,
                mailer: None,
            },
        )
        .await
    }

    /// Builds in time-skipping mode: `POST /v1/admin/clock` moves `clock`.
    pub async fn build_manual(
        config: Config,
        clock: Arc<ManualClock>,
    ) -> Result<Self, StartupError> {
        Self::build_with(
            config,
            Parts {
                clock: clock.clone(),
                manual_clock: Some(clock),
                mailer: None,
            },
        )
        .await
    }

    /// Builds from the clock and mail transport given.
    pub async fn build_with(config: Config, parts: Parts) -> Result<Self, StartupError> {
        let Parts {
            clock,
            manual_clock,
            mailer,
        } = parts;
        let data_dir = |source| StartupError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(data_dir)?;
        private_folder(&config.data_dir).map_err(data_dir)?;
        let secret = load_or_create_secret(config.jwt.secret.as_deref(), &config.data_dir)
            .map_err(data_dir)?;
        let authenticator = Arc::new(Authenticator::new(&secret, &config.jwt)?);
        let console =
            crate::console::Console::new(&config, &secret).map_err(StartupError::Console)?;
        let tokens = Arc::new(TokenIssuer::new(&secret, &config.jwt)?);
        let catalog =
            Arc::new(Catalog::load_dir(&config.workflows).map_err(StartupError::Workflows)?);
        if catalog.is_empty() {
            tracing::warn!(folder = %config.workflows.display(), "no workflows found: reviews cannot start");
        }

        let store = open_store(&config).await?;
        let keys = Arc::new(
            AttestationKeys::load_or_create(
                &config.attestation_keys,
                config.public_url.as_str().trim_end_matches('/'),
            )?
            .with_lifetime(config.attestation_lifetime),
        );
        let status = StatusService::load(store.clone(), clock.clone()).await?;
        status.spawn_background(
            config.status_refresh,
            match &config.database {
                DatabaseUrl::Postgres(url) => Some(url.clone()),
                DatabaseUrl::Sqlite(_) => None,
            },
        );
        let mailer = match mailer {
            Some(mailer) => mailer,
            None => Mailer::from_config(config.smtp_url.as_ref(), &config.data_dir)
                .map_err(StartupError::Mail)?,
        };
        let outbox = Arc::new(
            Outbox::new(
                store.clone(),
                clock.clone(),
                mailer,
                config.mail_from.clone(),
                config.outbox_max_attempts as i32,
                config.webhook_targets,
            )
            .map_err(StartupError::Mail)?,
        );

        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: config.bind.to_string(),
                source,
            })?
            .port();

        let registry = prometheus::Registry::new();
        let job_metrics = crate::scheduler::Metrics::register(&registry)
            .map_err(|e| StartupError::Metrics(e.to_string()))?;
        let metrics =
            HttpMetrics::register(registry).map_err(|e| StartupError::Metrics(e.to_string()))?;

        let max_body = config.max_body_bytes;
        let shutdown = config.shutdown_timeout.as_secs();
        let work = UnitOfWork::new(store.clone(), status.clone());
        let reviews = Reviews {
            work: work.clone(),
            catalog,
            tokens,
            public_url: config.public_url.as_str().trim_end_matches('/').to_owned(),
            organisation: config.organisation.clone(),
            mailboxes: Arc::new(config.mailboxes.clone()),
            vocabulary: Arc::new(config.vocabulary.clone()),
        };
        let mut schedules = config.schedules.clone();
        if config.outbox_interval.is_none() {
            // CLEARANCE_OUTBOX_INTERVAL_MS=0 keeps meaning "no background delivery".
            schedules.outbox = None;
        }
        let scheduler = Arc::new(Scheduler {
            store: store.clone(),
            work: work.clone(),
            clock: clock.clone(),
            reviews: reviews.clone(),
            mailboxes: Arc::clone(&reviews.mailboxes),
            outbox: outbox.clone(),
            metrics: job_metrics,
            schedules,
        });
        if config.scheduler {
            scheduler.spawn();
        }
        let directory = Directory::new(store.clone(), clock.clone());
        let manual_clock =
            manual_clock.filter(|_| config.clock == crate::config::ClockMode::Manual);
        let limits = Arc::new(http::limits::RateLimits::new(&config.limits));
        let intake = Arc::new(crate::intake::Intake::new(config.intake_per_asker));
        let usage = Arc::new(crate::usage::Usage::new(config.usage_use_cases_per_asker));
        if let Some(every) = config.intake_flush {
            let (intake, usage, store, status) =
                (intake.clone(), usage.clone(), store.clone(), status.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    ticks.tick().await;
                    if let Err(error) = intake.flush(&store, status.now()).await {
                        tracing::warn!(%error, "cannot write the intake's asks; kept for the next try");
                    }
                    if let Err(error) = usage.flush(&store, &status).await {
                        tracing::warn!(%error, "cannot write the usage tallies; kept for the next try");
                    }
                }
            });
        }
        let state = AppState {
            limits,
            intake,
            usage,
            scheduler,
            directory,
            manual_clock,
            work,
            authenticator: authenticator.clone(),
            console,
            store,
            clock,
            config: Arc::new(config),
            reviews,
            status,
            keys,
            outbox,
        };
        let app_state = state.clone();
        let openapi = http::openapi_document();
        let lane = crate::status::lane::Lane {
            state: state.clone(),
            authenticator: authenticator.clone(),
            metrics: metrics.clone(),
        };
        let server = HttpServer::new(move || {
            let app = App::new()
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::Data::new(authenticator.clone()))
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(extract::query_config())
                .app_data(extract::path_config())
                .configure(http::configure)
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .default_service(web::to(http::not_found))
                .wrap(http::problem_errors())
                .wrap(actix_web::middleware::from_fn(
                    http::extract::refuse_nul_in_query,
                ))
                .wrap(actix_web::middleware::from_fn(http::security_headers))
                .app_data(web::Data::new(metrics.clone()))
                .wrap_fn({
                    let metrics = metrics.clone();
                    move |req, srv| metrics.record(req, srv)
                })
                .wrap_fn(crate::http::telemetry::trace);
            lane.before(app)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: format!("port {port}"),
            source,
        })?
        .shutdown_timeout(shutdown)
        .run();

        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or SIGINT, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let now = self.state.clock.now();
        if let Err(error) = self.state.intake.flush(&self.state.store, now).await {
            tracing::warn!(%error, "the intake's last asks were not written");
        }
        let state = &self.state;
        if let Err(error) = state.usage.flush(&state.store, &state.status).await {
            tracing::warn!(%error, "the last usage tallies were not written");
        }
        let status = self.state.status.clone();
        let _ = tokio::task::spawn_blocking(move || status.stop()).await;
        result
    }
}

/// Opens the database and applies pending migrations.
pub async fn open_store(config: &Config) -> Result<Store, StoreError> {
    let database = config.database.clone();
    let pool_size = config.database_pool_size;
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&database, pool_size)?;
        let applied = store.migrate()?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        Ok(store)
    })
    .await
    .map_err(|_| StoreError::Cancelled)?
}

/// Makes a folder of the service's data its owner's alone (`0700`): the
/// SQLite database, the emails written as files and the secrets inside are
/// then unreadable to other users, whatever mode each file was made with.
pub fn private_folder(folder: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}
