//! Where webhooks may go: one address policy, applied when a subscription
//! is made (through the API or the console) and again before each delivery,
//! where the receiver's name is resolved once more and the addresses the
//! delivery connects to are the ones checked. Deliveries do not follow
//! redirects.
//!
//! By default ([`Targets::Public`]) a receiver must be globally reachable:
//! every range of IANA's IPv4 and IPv6 special-purpose address registries is
//! refused (loopback, private, shared and link-local ranges — the cloud
//! metadata address among them —, documentation and benchmarking ranges,
//! protocol assignments, reserved space), and so are multicast and
//! addresses that embed one of those (IPv4-mapped and -compatible, NAT64,
//! 6to4). [`Targets::Internal`] admits any unicast address, for receivers
//! inside the organisation's network; [`Targets::Loopback`] admits only
//! this host, and never asks DNS about any other name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::{Ipv4Net, Ipv6Net};

/// Which receivers webhooks may reach (`CLEARANCE_WEBHOOK_TARGETS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Targets {
    /// Globally reachable addresses only.
    #[default]
    Public,
    /// Any unicast address, private and loopback ones included.
    Internal,
    /// This host only (`localhost`, 127.0.0.0/8, `::1`).
    Loopback,
}

impl FromStr for Targets {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "internal" => Ok(Self::Internal),
            "loopback" => Ok(Self::Loopback),
            other => Err(format!(
                "`{other}` is not one of public, internal, loopback"
            )),
        }
    }
}

impl Targets {
    /// Whether a delivery may connect to `ip`; answers why not, in words.
    pub fn permits(self, ip: IpAddr) -> Result<(), String> {
        let refused = match self {
            Targets::Public => special_purpose(ip),
            Targets::Internal => not_unicast(ip),
            Targets::Loopback => !loopback(ip),
        };
        if !refused {
            return Ok(());
        }
        Err(match self {
            Targets::Public => format!(
                "{ip} is a special-purpose address (internal, reserved or for documentation); \
                 webhooks go to receivers on the public internet unless \
                 CLEARANCE_WEBHOOK_TARGETS=internal"
            ),
            Targets::Internal => format!("{ip} is not a unicast address"),
            Targets::Loopback => format!(
                "{ip} is not an address of this host; webhooks go only to this host \
                 (CLEARANCE_WEBHOOK_TARGETS=loopback)"
            ),
        })
    }
}

/// IANA's IPv4 special-purpose registry, multicast and the limited
/// broadcast address.
const SPECIAL_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IANA's IPv6 special-purpose registry and multicast; the translation
/// prefixes (IPv4-mapped, NAT64, 6to4) are judged by the IPv4 address they
/// carry, in [`special_purpose`].
const SPECIAL_V6: &[&str] = &[
    "::/96",
    "::ffff:0:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

fn nets_v4() -> &'static [Ipv4Net] {
    static NETS: std::sync::OnceLock<Vec<Ipv4Net>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| SPECIAL_V4.iter().filter_map(|n| n.parse().ok()).collect())
}

fn nets_v6() -> &'static [Ipv6Net] {
    static NETS: std::sync::OnceLock<Vec<Ipv6Net>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| SPECIAL_V6.iter().filter_map(|n| n.parse().ok()).collect())
}

/// Whether `ip` is in a special-purpose range, or carries an IPv4 address
/// that is.
pub fn special_purpose(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::BROADCAST || nets_v4().iter().any(|n| n.contains(&v4)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => special_purpose(IpAddr::V4(v4)),
            None => nets_v6().iter().any(|n| n.contains(&v6)),
        },
    }
}

/// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) address stands for.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(from(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

fn loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn not_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    }
}

/// Whether a host name is this host's by definition (RFC 6761), answered
/// without asking DNS.
fn local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Resolves `url`'s host and checks every address against `targets`;
/// answers the addresses a delivery may connect to, or why the URL is
/// refused, in words.
pub async fn check_url(url: &str, targets: Targets) -> Result<Vec<SocketAddr>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = parsed.host().ok_or("the URL names no host")?;
    resolve(host, port, targets).await
}

async fn resolve(
    host: url::Host<&str>,
    port: u16,
    targets: Targets,
) -> Result<Vec<SocketAddr>, String> {
    let addresses: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) if local_name(name) => {
            vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
        }
        url::Host::Domain(name) if targets == Targets::Loopback => {
            return Err(format!(
                "`{name}` is not this host; webhooks go only to this host \
                 (CLEARANCE_WEBHOOK_TARGETS=loopback)"
            ));
        }
        url::Host::Domain(name) => {
            let found: Vec<IpAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("`{name}` does not resolve ({e})"))?
                .map(|a| a.ip())
                .collect();
            if found.is_empty() {
                return Err(format!("`{name}` does not resolve"));
            }
            found
        }
    };
    for ip in &addresses {
        targets.permits(*ip)?;
    }
    Ok(addresses
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Before a delivery to `url`, once: an address in the URL is checked here
/// (the client connects to it without resolving anything) and the
/// connection logged; a name is checked and logged by [`Resolver`] as the
/// client resolves it.
pub fn check_delivery(url: &url::Url, targets: Targets) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("the URL names no host".into()),
    };
    targets.permits(ip)?;
    let port = url.port_or_known_default().unwrap_or(443);
    crate::telemetry::egress("webhook", &ip.to_string(), &[SocketAddr::new(ip, port)]);
    Ok(())
}

/// The HTTP client's name resolution for deliveries: the same policy, at
/// the moment of connecting, so a name that resolved to a permitted address
/// when checked cannot be pointed elsewhere before the connection is made.
#[derive(Debug, Clone, Copy)]
pub struct Resolver(pub Targets);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let targets = self.0;
        Box::pin(async move {
            let addresses = resolve(url::Host::Domain(name.as_str()), 0, targets).await?;
            crate::telemetry::egress("webhook", name.as_str(), &addresses);
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_purpose_addresses_are_refused_by_default() {
        for special in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.10",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::7f00:1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(special_purpose(ip(special)), "{special}");
            assert!(Targets::Public.permits(ip(special)).is_err(), "{special}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!special_purpose(ip(public)), "{public}");
            assert!(Targets::Public.permits(ip(public)).is_ok(), "{public}");
        }
    }

    #[test]
    fn internal_targets_admit_private_unicast_only() {
        for admitted in ["127.0.0.1", "10.0.0.5", "fd00::1", "93.184.216.34"] {
            assert!(
                Targets::Internal.permits(ip(admitted)).is_ok(),
                "{admitted}"
            );
        }
        for refused in ["0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1"] {
            assert!(Targets::Internal.permits(ip(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn loopback_targets_admit_this_host_only() {
        for admitted in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(
                Targets::Loopback.permits(ip(admitted)).is_ok(),
                "{admitted}"
            );
        }
        for refused in ["10.0.0.5", "93.184.216.34", "2606:4700::1111", "0.0.0.0"] {
            assert!(Targets::Loopback.permits(ip(refused)).is_err(), "{refused}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_without_asking_dns_where_they_need_not() {
        let local = check_url("http://localhost:8080/hook", Targets::Loopback)
            .await
            .unwrap();
        assert!(
            local
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        // Refused before any lookup: the name is not this host's.
        let remote = check_url("https://receiver.invalid/hook", Targets::Loopback).await;
        assert!(remote.unwrap_err().contains("not this host"));
        let nat64 = check_url("http://[64:ff9b::7f00:1]/", Targets::Public).await;
        assert!(nat64.unwrap_err().contains("special-purpose"));
        let documentation = check_url("https://203.0.113.10/clearance", Targets::Public).await;
        assert!(documentation.unwrap_err().contains("special-purpose"));
        assert!("sideways".parse::<Targets>().is_err());
        assert_eq!("Loopback".parse::<Targets>(), Ok(Targets::Loopback));
    }
}
