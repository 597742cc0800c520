//! Configuration: one typed struct, loaded once from defaults, then an optional
//! TOML file, then environment variables (whose names are part of the contract).
//!
//! Loading happens in two steps: [`RawConfig`] is what the sources say, as text;
//! [`Config::from_raw`] checks every value and turns it into typed settings, so
//! a bad value stops start-up with one line naming the variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The environment variable naming an optional TOML configuration file.
pub const CONFIG_FILE_VAR: &str = "CLEARANCE_CONFIG";

/// A configuration problem, worded for the person starting the service.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// What the configuration sources say, before checking. Field names are the
/// file's keys; each one's environment variable is `CLEARANCE_` + the key in
/// upper case, except `database_url` and `smtp_url` (`DATABASE_URL`, `SMTP_URL`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub bind: String,
    pub data_dir: String,
    pub database_url: Option<String>,
    pub database_pool_size: u32,
    pub smtp_url: Option<String>,
    pub workflows: String,
    pub clock: String,
    pub public_url: Option<String>,
    pub jwt_secret: Option<String>,
    pub jwt_public_key: Option<String>,
    pub jwt_jwks: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub log_format: String,
    pub max_body_bytes: usize,
    pub shutdown_timeout_secs: u64,
    /// The sender of every email; by default `Clearance reviews
    /// <clearance@HOST>` with the public URL's host.
    pub mail_from: Option<String>,
    /// The organisation that runs the reviews, as suppliers read it in
    /// their emails ("The vendor management team at …").
    pub organisation: Option<String>,
    pub outbox_max_attempts: u32,
    pub outbox_interval_ms: u64,
    pub status_refresh_ms: u64,
    pub attestation_keys: Option<String>,
    /// `false` turns every scheduled run off (jobs still run on demand).
    pub scheduler: bool,
    pub schedule_sla_sweep: String,
    pub schedule_re_review_sweep: String,
    pub schedule_digest: String,
    pub schedule_outbox: String,
    pub mailbox_vendor_manager: Option<String>,
    pub mailbox_security_reviewer: Option<String>,
    pub mailbox_privacy_reviewer: Option<String>,
    pub mailbox_rai_reviewer: Option<String>,
    pub mailbox_approver: Option<String>,
    pub mailbox_admin: Option<String>,
    pub mailbox_integrator: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<String>,
    /// The claim that names a person's roles (default `roles`).
    pub oidc_roles_claim: String,
    /// `group=role role2,group2=role3`: identity-provider groups to roles.
    pub oidc_role_map: Option<String>,
    /// A console session ends after this long without a request.
    pub session_idle: String,
    /// A console session ends this long after sign-in, whatever.
    pub session_lifetime: String,
    /// How long a signed attestation of an approval is valid.
    pub attestation_lifetime: String,
    /// The region codes conditions and checks may name (comma-separated).
    pub regions: Option<String>,
    /// The organisation's catalogue of use cases (comma-separated slugs);
    /// unset, any slug is a use case.
    pub use_cases: Option<String>,
    /// Which receivers webhooks may reach: `public`, `internal` or
    /// `loopback` (see [`crate::webhooks::guard::Targets`]).
    pub webhook_targets: String,
    /// Webhooks may go to loopback and private addresses: the same as
    /// `webhook_targets = "internal"`, kept for configurations that say it.
    pub webhook_allow_private: bool,
    /// Failed authentications a client may make per minute before it gets
    /// 429 (0: no limit).
    pub failed_auth_per_minute: u32,
    /// Requests per minute a client may make with supplier links (0: no limit).
    pub supplier_requests_per_minute: u32,
    /// The client is the first address of `Forwarded`/`X-Forwarded-For`
    /// (behind a reverse proxy that sets it), not the connection's peer.
    pub trust_forwarded_for: bool,
    /// How often asks about unreviewed models are written (0: only when
    /// the intake is listed or acted on).
    pub intake_flush_ms: u64,
    /// New models one asker (a token's `sub`) may add to the intake a day;
    /// asks about more are counted as one line per asker and day.
    pub intake_per_asker: usize,
    /// Without `CLEARANCE_USE_CASES`, distinct use cases usage counts per
    /// asker and hour; later ones are counted as `other`.
    pub usage_use_cases_per_asker: usize,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            data_dir: "./data".into(),
            database_url: None,
            database_pool_size: 10,
            smtp_url: None,
            workflows: "./workflows".into(),
            clock: "system".into(),
            public_url: None,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_jwks: None,
            jwt_issuer: None,
            jwt_audience: None,
            log_format: "text".into(),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout_secs: 30,
            mail_from: None,
            organisation: None,
            outbox_max_attempts: 8,
            outbox_interval_ms: 2000,
            status_refresh_ms: 2000,
            attestation_keys: None,
            scheduler: true,
            schedule_sla_sweep: "0 */5 * * * *".into(),
            schedule_re_review_sweep: "0 0 * * * *".into(),
            schedule_digest: "0 0 7 * * *".into(),
            schedule_outbox: "*/2 * * * * *".into(),
            mailbox_vendor_manager: None,
            mailbox_security_reviewer: None,
            mailbox_privacy_reviewer: None,
            mailbox_rai_reviewer: None,
            mailbox_approver: None,
            mailbox_admin: None,
            mailbox_integrator: None,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_roles_claim: "roles".into(),
            oidc_role_map: None,
            session_idle: "1h".into(),
            session_lifetime: "12h".into(),
            attestation_lifetime: "12h".into(),
            regions: None,
            use_cases: None,
            webhook_targets: "public".into(),
            webhook_allow_private: false,
            failed_auth_per_minute: 60,
            supplier_requests_per_minute: 120,
            trust_forwarded_for: false,
            intake_flush_ms: 10_000,
            intake_per_asker: crate::intake::PER_ASKER_DEFAULT,
            usage_use_cases_per_asker: crate::usage::USE_CASES_PER_ASKER_DEFAULT,
        }
    }
}

/// The vocabularies from their variables: comma-separated slugs.
fn vocabulary(
    regions: Option<&str>,
    use_cases: Option<&str>,
) -> Result<crate::vocabulary::Vocabulary, ConfigError> {
    let list = |var: &str, text: &str| -> Result<Vec<String>, ConfigError> {
        let items: Vec<String> = text
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let bad: Vec<&String> = items
            .iter()
            .filter(|s| {
                s.len() > 64
                    || !s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
            })
            .collect();
        if items.is_empty() || !bad.is_empty() {
            return Err(ConfigError(format!(
                "{var}: must list codes of 1 to 64 of [a-z0-9_-], comma-separated (refused: {bad:?})"
            )));
        }
        Ok(items)
    };
    let regions = match regions.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => list("CLEARANCE_REGIONS", text)?,
        None => crate::vocabulary::DEFAULT_REGIONS
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
    };
    let use_cases = match use_cases.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => Some(list("CLEARANCE_USE_CASES", text)?),
        None => None,
    };
    Ok(crate::vocabulary::Vocabulary::new(regions, use_cases))
}

/// The sender when none is configured: named for what it sends, at the
/// public URL's domain (`localhost` when the URL has no domain, which a
/// deployment should fix by setting `CLEARANCE_MAIL_FROM`).
fn default_sender(public_url: &url::Url) -> String {
    let host = match public_url.host() {
        Some(url::Host::Domain(domain)) if domain.contains('.') => domain.to_owned(),
        _ => "localhost".to_owned(),
    };
    format!("Clearance reviews <clearance@{host}>")
}

/// When each scheduled job runs: a cron expression (seconds first, 6 or 7
/// fields), or `None` when the job is `off` (it still runs on demand).
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    pub sla_sweep: Option<cron::Schedule>,
    pub re_review_sweep: Option<cron::Schedule>,
    pub digest: Option<cron::Schedule>,
    pub outbox: Option<cron::Schedule>,
}

fn parse_schedule(var: &str, value: &str) -> Result<Option<cron::Schedule>, ConfigError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.parse::<cron::Schedule>().map(Some).map_err(|e| {
        ConfigError(format!(
            "{var}: `{value}` is not a cron expression with seconds first, such as `0 */5 * * * *`, or `off` ({})",
            e.to_string().lines().last().unwrap_or_default().trim()
        ))
    })
}

/// Reads a comma-separated list of addresses; each must be a mailbox.
pub fn parse_addresses(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        part.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("`{part}` is not an email address ({e})"))?;
        out.push(part.to_owned());
    }
    Ok(out)
}

/// Which database to use, decided from the URL's scheme (SQLite accepts any
/// path, so the scheme must decide, never a connection attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Reads a `postgres://`/`postgresql://` URL, a `sqlite://` URL, or a plain path.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is empty".into());
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            url::Url::parse(value).map_err(|e| format!("is not a valid PostgreSQL URL ({e})"))?;
            return Ok(Self::Postgres(value.to_owned()));
        }
        let path = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
            .unwrap_or(value);
        if path.is_empty() {
            return Err("names no SQLite file".into());
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "has an unsupported scheme `{scheme}` (use postgres://, sqlite:// or a file path)"
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// How the service tells time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    System,
    /// Time-skipping mode for demos and black-box tests.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Checked settings for bearer-token verification.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// HS256 secret; when unset, one is generated once into the data folder.
    pub secret: Option<String>,
    /// PEM public key (RSA, EC P-256 or Ed25519) of the identity provider.
    pub public_key: Option<PathBuf>,
    /// JWKS document of the identity provider.
    pub jwks: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The organisation's OpenID Connect provider, for the console's sign-in.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// The ID token (or userinfo) claim that holds role names or groups.
    pub roles_claim: String,
    /// Group names to roles, for providers that send groups.
    pub role_map: std::collections::BTreeMap<String, Vec<crate::auth::Role>>,
}

/// The checked configuration every part of the service is built from.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub database_pool_size: u32,
    pub smtp_url: Option<url::Url>,
    pub workflows: PathBuf,
    pub clock: ClockMode,
    pub public_url: url::Url,
    pub jwt: JwtConfig,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    /// Sender of every email.
    pub mail_from: lettre::message::Mailbox,
    /// Who runs the reviews, as suppliers' emails name it.
    pub organisation: Option<String>,
    /// Attempts before an outbox message is dead.
    pub outbox_max_attempts: u32,
    /// How often the outbox worker runs; `None` turns the loop off (tests
    /// and one-shot runs use `POST /v1/admin/jobs/outbox/run`).
    pub outbox_interval: Option<Duration>,
    /// How often the status snapshot checks the version counter.
    pub status_refresh: Duration,
    /// Folder of the attestation signing keys.
    pub attestation_keys: PathBuf,
    /// Whether jobs run on their schedules (`CLEARANCE_SCHEDULER`).
    pub scheduler: bool,
    pub schedules: Schedules,
    /// Configured mailboxes per role (`CLEARANCE_MAILBOX_<ROLE>`); one set
    /// through `PUT /v1/admin/roles/{role}/mailbox` takes precedence.
    pub mailboxes: std::collections::BTreeMap<crate::auth::Role, Vec<String>>,
    /// The console signs people in here; `None`: development links only.
    pub oidc: Option<OidcConfig>,
    /// A console session ends after this long without a request.
    pub session_idle: chrono::TimeDelta,
    /// How long a signed attestation of an approval is valid (1m to 90d).
    pub attestation_lifetime: chrono::TimeDelta,
    /// Known regions and use cases.
    pub vocabulary: crate::vocabulary::Vocabulary,
    /// Which receivers webhooks may reach.
    pub webhook_targets: crate::webhooks::guard::Targets,
    /// A console session ends this long after sign-in.
    pub session_lifetime: chrono::TimeDelta,
    /// Per-client rate limits.
    pub limits: Limits,
    /// How often asks about unreviewed models are written.
    pub intake_flush: Option<Duration>,
    /// New models one asker may add to the intake a day.
    pub intake_per_asker: usize,
    /// Use cases usage counts per asker and hour (before `other`); `None`
    /// when `CLEARANCE_USE_CASES` bounds them.
    pub usage_use_cases_per_asker: Option<usize>,
}

/// Per-client rate limits, per minute; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub failed_auth_per_minute: Option<std::num::NonZeroU32>,
    pub supplier_requests_per_minute: Option<std::num::NonZeroU32>,
    pub trust_forwarded_for: bool,
}

impl Config {
    /// Loads defaults, then the TOML file named by `CLEARANCE_CONFIG` (or
    /// `./clearance.toml` when present), then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os(CONFIG_FILE_VAR)
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("clearance.toml")).filter(|p| p.exists()));
        if let Some(file) = &file
            && !file.exists()
        {
            return Err(ConfigError(format!(
                "{CONFIG_FILE_VAR}: file {} does not exist",
                file.display()
            )));
        }
        Self::from_figment(Self::figment(file.as_deref()))
    }

    /// The layered sources, exposed so tests can feed their own environment.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Environment values are merged as text, whatever they look like: a
        // secret of digits stays a string, and numbers are parsed on extraction.
        for (key, value) in std::env::vars() {
            if let Some(name) = env_key(&key) {
                figment = figment.merge(Serialized::default(&name, value));
            }
        }
        figment
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawConfig = figment
            .extract_lossy()
            .map_err(|e| ConfigError(describe_figment_error(&e)))?;
        Self::from_raw(raw)
    }

    /// Checks every value; the error names the environment variable at fault.
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let fail = |var: &str, msg: String| ConfigError(format!("{var}: {msg}"));

        let bind: SocketAddr = raw.bind.trim().parse().map_err(|_| {
            fail(
                "CLEARANCE_BIND",
                format!("`{}` is not an address such as 127.0.0.1:8080", raw.bind),
            )
        })?;
        if raw.data_dir.trim().is_empty() {
            return Err(fail("CLEARANCE_DATA_DIR", "is empty".into()));
        }
        let data_dir = PathBuf::from(raw.data_dir.trim());
        let database = match raw.database_url.as_deref().map(str::trim) {
            None | Some("") => DatabaseUrl::Sqlite(data_dir.join("clearance.sqlite3")),
            Some(url) => DatabaseUrl::parse(url).map_err(|m| fail("DATABASE_URL", m))?,
        };
        if raw.database_pool_size == 0 {
            return Err(fail(
                "CLEARANCE_DATABASE_POOL_SIZE",
                "must be at least 1".into(),
            ));
        }
        let smtp_url = match raw.smtp_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(value) => {
                let url = url::Url::parse(value)
                    .map_err(|e| fail("SMTP_URL", format!("`{value}` is not a URL ({e})")))?;
                if !matches!(url.scheme(), "smtp" | "smtps") {
                    return Err(fail(
                        "SMTP_URL",
                        format!("scheme must be smtp or smtps, not `{}`", url.scheme()),
                    ));
                }
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(fail("SMTP_URL", "names no host".into()));
                }
                Some(url)
            }
        };
        let clock = match raw.clock.trim() {
            "system" => ClockMode::System,
            "manual" => ClockMode::Manual,
            other => {
                return Err(fail(
                    "CLEARANCE_CLOCK",
                    format!("`{other}` is neither `system` nor `manual`"),
                ));
            }
        };
        let public_url = match raw.public_url.as_deref().map(str::trim) {
            None | Some("") => url::Url::parse(&format!("http://{bind}"))
                .map_err(|e| fail("CLEARANCE_BIND", e.to_string()))?,
            Some(value) => {
                let url = url::Url::parse(value).map_err(|e| {
                    fail(
                        "CLEARANCE_PUBLIC_URL",
                        format!("`{value}` is not a URL ({e})"),
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(fail(
                        "CLEARANCE_PUBLIC_URL",
                        "must be an http:// or https:// URL".into(),
                    ));
                }
                url
            }
        };
        let log_format = match raw.log_format.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(fail(
                    "CLEARANCE_LOG_FORMAT",
                    format!("`{other}` is neither `text` nor `json`"),
                ));
            }
        };
        if raw.max_body_bytes < 1024 {
            return Err(fail(
                "CLEARANCE_MAX_BODY_BYTES",
                "must be at least 1024".into(),
            ));
        }
        let non_empty =
            |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let existing_file =
            |var: &str, v: Option<String>| -> Result<Option<PathBuf>, ConfigError> {
                match non_empty(v) {
                    None => Ok(None),
                    Some(p) if Path::new(&p).is_file() => Ok(Some(PathBuf::from(p))),
                    Some(p) => Err(fail(var, format!("file `{p}` does not exist"))),
                }
            };
        let jwt = JwtConfig {
            secret: non_empty(raw.jwt_secret),
            public_key: existing_file("CLEARANCE_JWT_PUBLIC_KEY", raw.jwt_public_key)?,
            jwks: existing_file("CLEARANCE_JWT_JWKS", raw.jwt_jwks)?,
            issuer: non_empty(raw.jwt_issuer),
            audience: non_empty(raw.jwt_audience),
        };
        if let Some(secret) = &jwt.secret
            && secret.len() < 16
        {
            return Err(fail(
                "CLEARANCE_JWT_SECRET",
                "must be at least 16 characters".into(),
            ));
        }

        let mail_from_text = match non_empty(raw.mail_from.clone()) {
            Some(text) => text,
            None => default_sender(&public_url),
        };
        let mail_from = mail_from_text.trim().parse().map_err(|e| {
            fail(
                "CLEARANCE_MAIL_FROM",
                format!(
                    "`{mail_from_text}` is not a mailbox such as \"Clearance reviews <clearance@example.com>\" ({e})"
                ),
            )
        })?;
        let organisation = non_empty(raw.organisation.clone()).map(|o| o.trim().to_owned());
        if let Some(name) = &organisation
            && (name.chars().count() > 100 || name.chars().any(char::is_control))
        {
            return Err(fail(
                "CLEARANCE_ORGANISATION",
                "must be one line of at most 100 characters".into(),
            ));
        }
        if raw.outbox_max_attempts == 0 {
            return Err(fail(
                "CLEARANCE_OUTBOX_MAX_ATTEMPTS",
                "must be at least 1".into(),
            ));
        }
        if raw.status_refresh_ms < 100 {
            return Err(fail(
                "CLEARANCE_STATUS_REFRESH_MS",
                "must be at least 100".into(),
            ));
        }
        let attestation_keys = match non_empty(raw.attestation_keys) {
            Some(path) => PathBuf::from(path),
            None => data_dir.join("attestation-keys"),
        };

        let schedules = Schedules {
            sla_sweep: parse_schedule("CLEARANCE_SCHEDULE_SLA_SWEEP", &raw.schedule_sla_sweep)?,
            re_review_sweep: parse_schedule(
                "CLEARANCE_SCHEDULE_RE_REVIEW_SWEEP",
                &raw.schedule_re_review_sweep,
            )?,
            digest: parse_schedule("CLEARANCE_SCHEDULE_DIGEST", &raw.schedule_digest)?,
            outbox: parse_schedule("CLEARANCE_SCHEDULE_OUTBOX", &raw.schedule_outbox)?,
        };
        let mut mailboxes = std::collections::BTreeMap::new();
        for (role, value) in [
            (
                crate::auth::Role::VendorManager,
                &raw.mailbox_vendor_manager,
            ),
            (
                crate::auth::Role::SecurityReviewer,
                &raw.mailbox_security_reviewer,
            ),
            (
                crate::auth::Role::PrivacyReviewer,
                &raw.mailbox_privacy_reviewer,
            ),
            (crate::auth::Role::RaiReviewer, &raw.mailbox_rai_reviewer),
            (crate::auth::Role::Approver, &raw.mailbox_approver),
            (crate::auth::Role::Admin, &raw.mailbox_admin),
            (crate::auth::Role::Integrator, &raw.mailbox_integrator),
        ] {
            let var = format!("CLEARANCE_MAILBOX_{}", role.as_str().to_ascii_uppercase());
            let emails =
                parse_addresses(value.as_deref().unwrap_or_default()).map_err(|m| fail(&var, m))?;
            if !emails.is_empty() {
                mailboxes.insert(role, emails);
            }
        }

        let oidc = match (non_empty(raw.oidc_issuer), non_empty(raw.oidc_client_id)) {
            (None, None) => None,
            (Some(issuer), Some(client_id)) => {
                let parsed = url::Url::parse(&issuer).map_err(|e| {
                    fail(
                        "CLEARANCE_OIDC_ISSUER",
                        format!("`{issuer}` is not a URL ({e})"),
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(fail(
                        "CLEARANCE_OIDC_ISSUER",
                        format!("`{issuer}` is not an http(s) URL"),
                    ));
                }
                let role_map = parse_role_map(raw.oidc_role_map.as_deref().unwrap_or_default())
                    .map_err(|m| fail("CLEARANCE_OIDC_ROLE_MAP", m))?;
                Some(OidcConfig {
                    issuer,
                    client_id,
                    client_secret: non_empty(raw.oidc_client_secret),
                    roles_claim: raw.oidc_roles_claim.trim().to_owned(),
                    role_map,
                })
            }
            (Some(_), None) => {
                return Err(fail(
                    "CLEARANCE_OIDC_CLIENT_ID",
                    "is required with CLEARANCE_OIDC_ISSUER".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(fail(
                    "CLEARANCE_OIDC_ISSUER",
                    "is required with CLEARANCE_OIDC_CLIENT_ID".into(),
                ));
            }
        };
        let session_time = |var: &str, text: &str| {
            crate::duration::parse(text)
                .map_err(|e| fail(var, e.to_string()))
                .and_then(|d| {
                    if d < chrono::TimeDelta::minutes(1) || d > chrono::TimeDelta::days(90) {
                        Err(fail(var, "must be between 1m and 90d".into()))
                    } else {
                        Ok(d)
                    }
                })
        };
        let session_idle = session_time("CLEARANCE_SESSION_IDLE", &raw.session_idle)?;
        let session_lifetime = session_time("CLEARANCE_SESSION_LIFETIME", &raw.session_lifetime)?;
        let attestation_lifetime =
            session_time("CLEARANCE_ATTESTATION_LIFETIME", &raw.attestation_lifetime)?;

        let vocabulary = vocabulary(raw.regions.as_deref(), raw.use_cases.as_deref())?;
        let webhook_targets = match raw.webhook_targets.parse() {
            Ok(crate::webhooks::guard::Targets::Public) if raw.webhook_allow_private => {
                crate::webhooks::guard::Targets::Internal
            }
            Ok(targets) => targets,
            Err(why) => return Err(fail("CLEARANCE_WEBHOOK_TARGETS", why)),
        };
        let at_least_one = |var: &str, n: usize| {
            if n == 0 {
                Err(fail(var, "must be at least 1".into()))
            } else {
                Ok(n)
            }
        };
        let intake_per_asker = at_least_one("CLEARANCE_INTAKE_PER_ASKER", raw.intake_per_asker)?;
        let usage_use_cases_per_asker = at_least_one(
            "CLEARANCE_USAGE_USE_CASES_PER_ASKER",
            raw.usage_use_cases_per_asker,
        )?;
        // A catalogue of use cases bounds them already.
        let usage_use_cases_per_asker = vocabulary
            .use_cases()
            .is_none()
            .then_some(usage_use_cases_per_asker);

        Ok(Self {
            oidc,
            session_idle,
            session_lifetime,
            attestation_lifetime,
            vocabulary,
            webhook_targets,
            limits: Limits {
                failed_auth_per_minute: std::num::NonZeroU32::new(raw.failed_auth_per_minute),
                supplier_requests_per_minute: std::num::NonZeroU32::new(
                    raw.supplier_requests_per_minute,
                ),
                trust_forwarded_for: raw.trust_forwarded_for,
            },
            intake_flush: (raw.intake_flush_ms > 0)
                .then(|| Duration::from_millis(raw.intake_flush_ms)),
            intake_per_asker,
            usage_use_cases_per_asker,
            scheduler: raw.scheduler,
            schedules,
            mailboxes,
            mail_from,
            organisation,
            outbox_max_attempts: raw.outbox_max_attempts,
            outbox_interval: (raw.outbox_interval_ms > 0)
                .then(|| Duration::from_millis(raw.outbox_interval_ms)),
            status_refresh: Duration::from_millis(raw.status_refresh_ms),
            attestation_keys,
            bind,
            data_dir,
            database,
            database_pool_size: raw.database_pool_size,
            smtp_url,
            workflows: PathBuf::from(raw.workflows.trim()),
            clock,
            public_url,
            jwt,
            log_format,
            max_body_bytes: raw.max_body_bytes,
            shutdown_timeout: Duration::from_secs(raw.shutdown_timeout_secs),
        })
    }
}

/// Reads `group=role role2, group2=role3` (each group's roles separated by
/// spaces or `+`).
pub fn parse_role_map(
    text: &str,
) -> Result<std::collections::BTreeMap<String, Vec<crate::auth::Role>>, String> {
    let mut map = std::collections::BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (group, roles) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}` is not `group=role`"))?;
        let roles = roles
            .split([' ', '+'])
            .filter(|r| !r.is_empty())
            .map(crate::auth::Role::named)
            .collect::<Result<Vec<_>, _>>()?;
        if group.trim().is_empty() || roles.is_empty() {
            return Err(format!("`{entry}` is not `group=role`"));
        }
        map.insert(group.trim().to_owned(), roles);
    }
    Ok(map)
}

/// The configuration key an environment variable sets, if it is one of ours.
fn env_key(variable: &str) -> Option<String> {
    match variable {
        "DATABASE_URL" | "SMTP_URL" => Some(variable.to_ascii_lowercase()),
        // The file's own name, and the `clearance check` gate's settings.
        CONFIG_FILE_VAR | "CLEARANCE_SERVER" | "CLEARANCE_TOKEN" => None,
        _ => variable
            .strip_prefix("CLEARANCE_")
            .filter(|rest| !rest.is_empty())
            .map(str::to_ascii_lowercase),
    }
}

/// Turns figment's error into one line naming the key and where it came from.
fn describe_figment_error(error: &figment::Error) -> String {
    let key = error.path.join(".");
    let variable = match key.as_str() {
        "" => None,
        "database_url" => Some("DATABASE_URL".to_owned()),
        "smtp_url" => Some("SMTP_URL".to_owned()),
        key => Some(format!("CLEARANCE_{}", key.to_ascii_uppercase())),
    };
    let source = error
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .map(|source| format!(" (in {source})"))
        .unwrap_or_default();
    match variable {
        Some(var) => format!("{var}: {}{source}", error.kind),
        None => format!("{}{source}", error.kind),
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_with(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.clear_env();
            for (k, v) in env {
                jail.set_env(k, v);
            }
            result = Some(Config::from_figment(Config::figment(None)));
            Ok(())
        });
        result.expect("jail ran")
    }

    #[test]
    fn defaults_give_a_first_run_configuration() {
        let config = load_with(&[]).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database,
            DatabaseUrl::Sqlite(PathBuf::from("./data/clearance.sqlite3"))
        );
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.clock, ClockMode::System);
        assert!(config.smtp_url.is_none());
        assert!(config.scheduler);
        assert!(config.schedules.sla_sweep.is_some());
        assert!(config.mailboxes.is_empty());
        assert_eq!(
            config.webhook_targets,
            crate::webhooks::guard::Targets::Public
        );
        let private = load_with(&[("CLEARANCE_WEBHOOK_ALLOW_PRIVATE", "true")]).unwrap();
        assert_eq!(
            private.webhook_targets,
            crate::webhooks::guard::Targets::Internal
        );
    }

    #[test]
    fn mailboxes_and_schedules_come_from_the_environment() {
        let config = load_with(&[
            (
                "CLEARANCE_MAILBOX_SECURITY_REVIEWER",
                "a@x.example, b@y.example",
            ),
            ("CLEARANCE_SCHEDULE_DIGEST", "off"),
        ])
        .unwrap();
        assert_eq!(
            config.mailboxes[&crate::auth::Role::SecurityReviewer],
            ["a@x.example", "b@y.example"]
        );
        assert!(config.schedules.digest.is_none());
    }

    #[test]
    fn the_bounds_of_one_asker_have_defaults_and_are_at_least_one() {
        let config = load_with(&[]).unwrap();
        assert_eq!(config.intake_per_asker, crate::intake::PER_ASKER_DEFAULT);
        assert_eq!(
            config.usage_use_cases_per_asker,
            Some(crate::usage::USE_CASES_PER_ASKER_DEFAULT)
        );
        let config = load_with(&[
            ("CLEARANCE_INTAKE_PER_ASKER", "7"),
            ("CLEARANCE_USE_CASES", "support-chat"),
        ])
        .unwrap();
        assert_eq!(config.intake_per_asker, 7);
        assert_eq!(
            config.usage_use_cases_per_asker, None,
            "a catalogue bounds them"
        );
        let error = load_with(&[("CLEARANCE_INTAKE_PER_ASKER", "0")]).unwrap_err();
        assert!(
            error.to_string().contains("CLEARANCE_INTAKE_PER_ASKER"),
            "{error}"
        );
        let error = load_with(&[("CLEARANCE_USAGE_USE_CASES_PER_ASKER", "0")]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("CLEARANCE_USAGE_USE_CASES_PER_ASKER"),
            "{error}"
        );
    }

    #[test]
    fn database_url_chooses_postgres_by_scheme() {
        let config = load_with(&[("DATABASE_URL", "postgres://u@localhost:5432/db")]).unwrap();
        assert!(config.database.is_postgres());
        let config = load_with(&[("DATABASE_URL", "sqlite:///tmp/x.db")]).unwrap();
        assert_eq!(config.database, DatabaseUrl::Sqlite("/tmp/x.db".into()));
    }

    #[test]
    fn the_sender_defaults_to_the_public_domain_and_vocabularies_are_codes() {
        let config =
            load_with(&[("CLEARANCE_PUBLIC_URL", "https://clearance.example.com")]).unwrap();
        assert_eq!(
            config.mail_from.to_string(),
            "Clearance reviews <clearance@clearance.example.com>"
        );
        let local = load_with(&[]).unwrap();
        assert_eq!(local.mail_from.email.to_string(), "clearance@localhost");
        let chosen = load_with(&[("CLEARANCE_MAIL_FROM", "Vendor risk <risk@x.example>")]).unwrap();
        assert_eq!(chosen.mail_from.email.to_string(), "risk@x.example");

        let config = load_with(&[
            ("CLEARANCE_REGIONS", "EU, uk"),
            ("CLEARANCE_USE_CASES", "support-chat"),
        ])
        .unwrap();
        assert!(config.vocabulary.knows_region("eu") && !config.vocabulary.knows_region("us"));
        assert!(!config.vocabulary.knows_use_case("coding"));
        assert!(load_with(&[("CLEARANCE_REGIONS", "eu, not a code")]).is_err());
        assert!(load_with(&[("CLEARANCE_ATTESTATION_LIFETIME", "1000d")]).is_err());
    }

    #[test]
    fn the_organisation_is_one_trimmed_line() {
        assert_eq!(load_with(&[]).unwrap().organisation, None);
        let named = load_with(&[("CLEARANCE_ORGANISATION", "  Example Bank ")]).unwrap();
        assert_eq!(named.organisation.as_deref(), Some("Example Bank"));
        let error = load_with(&[("CLEARANCE_ORGANISATION", "Example\nBank")]).unwrap_err();
        assert!(
            error.to_string().contains("CLEARANCE_ORGANISATION"),
            "{error}"
        );
    }

    #[test]
    fn numeric_looking_secrets_stay_text() {
        let config = load_with(&[("CLEARANCE_JWT_SECRET", "12345678901234567890")]).unwrap();
        assert_eq!(config.jwt.secret.as_deref(), Some("12345678901234567890"));
    }

    #[test]
    fn numbers_and_switches_are_read_from_text() {
        let config = load_with(&[
            ("CLEARANCE_DATABASE_POOL_SIZE", "3"),
            ("CLEARANCE_OUTBOX_MAX_ATTEMPTS", "4"),
            ("CLEARANCE_SCHEDULER", "false"),
        ])
        .unwrap();
        assert_eq!(config.database_pool_size, 3);
        assert_eq!(config.outbox_max_attempts, 4);
        assert!(!config.scheduler);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases = [
            ("CLEARANCE_BIND", "not-an-address"),
            ("DATABASE_URL", "mysql://x/y"),
            ("SMTP_URL", "http://mail"),
            ("CLEARANCE_CLOCK", "sundial"),
            ("CLEARANCE_PUBLIC_URL", "ftp://x"),
            ("CLEARANCE_LOG_FORMAT", "xml"),
            ("CLEARANCE_JWT_SECRET", "short"),
            ("CLEARANCE_JWT_JWKS", "/nonexistent/jwks.json"),
            ("CLEARANCE_DATABASE_POOL_SIZE", "many"),
            ("CLEARANCE_SCHEDULE_SLA_SWEEP", "every five minutes"),
            ("CLEARANCE_SCHEDULE_DIGEST", "0 0 7 * *"),
            ("CLEARANCE_MAILBOX_SECURITY_REVIEWER", "a@x, not an address"),
            ("CLEARANCE_WEBHOOK_TARGETS", "anywhere"),
        ];
        for (var, value) in cases {
            let err = load_with(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={value} gave `{err}`");
            assert!(!err.contains('\n'), "error is one line: {err}");
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("c.toml", "bind = \"0.0.0.0:9000\"\nbindd = 1\n")?;
            result = Some(Config::from_figment(Config::figment(Some(Path::new(
                "c.toml",
            )))));
            Ok(())
        });
        let err = result.unwrap().unwrap_err().to_string();
        assert!(err.contains("bindd"), "{err}");
    }

    #[test]
    fn the_file_is_overridden_by_the_environment() {
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("c.toml", "bind = \"0.0.0.0:9000\"\nclock = \"manual\"\n")?;
            jail.set_env("CLEARANCE_BIND", "127.0.0.1:9001");
            result = Some(Config::from_figment(Config::figment(Some(Path::new(
                "c.toml",
            )))));
            Ok(())
        });
        let config = result.unwrap().unwrap();
        assert_eq!(config.bind.port(), 9001);
        assert_eq!(config.clock, ClockMode::Manual);
    }
}
