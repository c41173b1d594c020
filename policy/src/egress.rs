//! Egress control: URL parsing, host allowlists, and SSRF-proof address checks.
//!
//! OWNER: helper B.

use std::net::IpAddr;

/// Why an outbound connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The URL could not be parsed. Code `INVALID_URL`.
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
}

impl EgressError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// A URL's host: a lowercase DNS name without trailing dot, or an IP address in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercase, no trailing dot.
    Name(String),
    /// An IP literal, whatever notation it was written in.
    Ip(IpAddr),
}

/// Where an allowed connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressTarget {
    /// Lowercase scheme.
    pub scheme: String,
    /// Normalised host.
    pub host: Host,
    /// Explicit port, or the scheme's default.
    pub port: u16,
}

/// Which outbound connections a sandbox may make.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    _todo: (),
}

impl EgressPolicy {
    /// A policy with the given schemes (lowercased), hosts (exact or `*.suffix`) and ports
    /// (`None`: each scheme's default port only).
    pub fn new<S, H>(schemes: S, hosts: H, ports: Option<Vec<crate::port::PortRange>>) -> Result<Self, EgressError>
    where
        S: IntoIterator,
        S::Item: AsRef<str>,
        H: IntoIterator,
        H::Item: AsRef<str>,
    {
        let _ = (schemes.into_iter(), hosts.into_iter(), ports);
        todo!()
    }
    /// Decides on a URL before resolution.
    pub fn check_url(&self, url: &str) -> Result<EgressTarget, EgressError> {
        let _ = url;
        todo!()
    }
    /// Decides again on the addresses a name resolved to (DNS rebinding): every one must be public.
    pub fn check_resolved(&self, host: &str, addrs: &[IpAddr]) -> Result<(), EgressError> {
        let _ = (host, addrs);
        todo!()
    }
}
