//! Logging: text for people, JSON for log collectors; `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(result);
}

/// The log target of every connection the service opens to another system
/// (`RUST_LOG=warn,clearance::egress=info` keeps these lines alone).
pub const EGRESS: &str = "clearance::egress";

/// Logs, before connecting, where the service is about to connect: what
/// for (`webhook`, `smtp`, `oidc`), the host named, and the addresses (with
/// ports) when they are known. One line each, so that an operator or a CI
/// run can list every system the service contacted.
pub fn egress(kind: &str, host: &str, addresses: &[std::net::SocketAddr]) {
    let addresses = addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(target: EGRESS, kind, host, addresses, "connecting");
}

/// [`egress`] for a connection to `url`: its host, and its address when the
/// host is an IP address (a name is resolved by the client that connects).
/// Nothing else of the URL is logged (it may carry credentials).
pub fn egress_url(kind: &str, url: &url::Url, default_port: u16) {
    let port = url.port_or_known_default().unwrap_or(default_port);
    let address = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![std::net::SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![std::net::SocketAddr::new(ip.into(), port)],
        _ => Vec::new(),
    };
    egress(kind, url.host_str().unwrap_or_default(), &address);
}
