//! Per-client rate limits on the traffic an attacker or a broken client
//! makes: failed authentications (a missing, forged, expired or revoked
//! token, a bad sign-in link) and the supplier links. An authenticated
//! request is never counted, so the integrators' status lookups and checks
//! cost nothing here. Limits are per client address, per instance, in
//! memory (governor's GCRA, a burst of the minute's allowance).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Limits;

/// Addresses a limiter remembers before it forgets those that are idle
/// again (an attacker with many addresses must not grow it without end).
const REMEMBERED: usize = 100_000;

/// A client over its limit: how long until it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// The `Retry-After` value: whole seconds, at least one.
    pub fn seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// The limiters of one instance.
#[derive(Debug)]
pub struct RateLimits {
    failed_auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    supplier: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded_for: bool,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(limits: &Limits) -> Self {
        let keyed = |per_minute: Option<NonZeroU32>| {
            per_minute.map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)))
        };
        Self {
            failed_auth: keyed(limits.failed_auth_per_minute),
            supplier: keyed(limits.supplier_requests_per_minute),
            trust_forwarded_for: limits.trust_forwarded_for,
            clock: DefaultClock::default(),
        }
    }

    /// Counts a failed authentication by the client of `req`.
    pub fn failed_auth(&self, req: &HttpRequest) -> Result<(), Limited> {
        self.count(self.failed_auth.as_ref(), req)
    }

    /// Counts a request made with a supplier link by the client of `req`.
    pub fn supplier(&self, req: &HttpRequest) -> Result<(), Limited> {
        self.count(self.supplier.as_ref(), req)
    }

    fn count(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
        req: &HttpRequest,
    ) -> Result<(), Limited> {
        let (Some(limiter), Some(client)) = (limiter, self.client(req)) else {
            return Ok(());
        };
        if limiter.len() > REMEMBERED {
            limiter.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// The client's address: the connection's peer, or behind a trusted
    /// proxy the first address it forwarded.
    fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let info = req.connection_info();
            if let Some(ip) = info.realip_remote_addr().and_then(parse_ip) {
                return Some(ip);
            }
        }
        req.peer_addr().map(|addr| addr.ip())
    }
}

/// An address as `Forwarded` or `X-Forwarded-For` give it: bare, with a
/// port, or an IPv6 address in brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse().ok().or_else(|| {
        text.parse::<std::net::SocketAddr>()
            .ok()
            .map(|addr| addr.ip())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn limits(per_minute: u32, trust: bool) -> RateLimits {
        RateLimits::new(&Limits {
            failed_auth_per_minute: NonZeroU32::new(per_minute),
            supplier_requests_per_minute: None,
            trust_forwarded_for: trust,
        })
    }

    #[test]
    fn a_client_gets_its_minute_allowance_then_waits() {
        let limits = limits(3, false);
        let from = |ip: &str| {
            TestRequest::default()
                .peer_addr(format!("{ip}:4000").parse().unwrap())
                .to_http_request()
        };
        for _ in 0..3 {
            assert_eq!(limits.failed_auth(&from("192.0.2.1")), Ok(()));
        }
        let limited = limits.failed_auth(&from("192.0.2.1")).unwrap_err();
        assert!((1..=20).contains(&limited.seconds()), "{limited:?}");
        assert_eq!(
            limits.failed_auth(&from("192.0.2.2")),
            Ok(()),
            "another client"
        );
        assert_eq!(
            limits.supplier(&from("192.0.2.1")),
            Ok(()),
            "no supplier limit"
        );
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let request = || {
            TestRequest::default()
                .peer_addr("10.0.0.1:4000".parse().unwrap())
                .insert_header(("x-forwarded-for", "198.51.100.7, 10.0.0.1"))
                .to_http_request()
        };
        let trusting = limits(1, true);
        assert_eq!(trusting.client(&request()), "198.51.100.7".parse().ok());
        let direct = limits(1, false);
        assert_eq!(direct.client(&request()), "10.0.0.1".parse().ok());
        assert_eq!(parse_ip("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
    }
}
