//! Egress control: URL parsing, host allowlists, and SSRF-proof address checks.
//!
//! An [`EgressPolicy`] decides whether a sandbox may open a connection, twice:
//!
//! 1. [`check_url`](EgressPolicy::check_url), on the URL the sandbox asked for, before any DNS
//!    lookup: the URL is parsed strictly (our own parser, see below), then the scheme, the address
//!    range of an IP literal, the host allowlist and the port are checked, in that order.
//! 2. [`check_resolved`](EgressPolicy::check_resolved), on the addresses the name resolved to: the
//!    host must still be allowed and *every* address must be outside the special-purpose ranges of
//!    [`special_range`], so an allowed name whose DNS answer points at `127.0.0.1` or at the cloud
//!    metadata service (DNS rebinding) is refused. The proxy must then connect to exactly the
//!    addresses it checked, never resolve again.
//!
//! IP literals are read the way browsers read them (the WHATWG URL standard), because that is how
//! the HTTP clients inside a sandbox read them: `http://2130706433/`, `http://0x7f.1/`,
//! `http://0177.0.0.1/` and `http://[::ffff:7f00:1]/` all mean `127.0.0.1`, and all are denied.
//!
//! The parser refuses rather than repairs: userinfo (`user@host`), backslashes, whitespace, control
//! characters, percent-escapes and non-ASCII characters in the host, zone identifiers, empty or
//! leading-zero ports, and hosts whose last label is a number but which are not valid IPv4. Each of
//! these is read differently by different URL parsers, which is how SSRF filters are bypassed.
//!
//! ```
//! use sandguard_policy::EgressPolicy;
//!
//! let policy = EgressPolicy::new(["https"], ["api.example.com", "*.githubusercontent.com"], None)?;
//! let target = policy.check_url("https://API.example.com/v1/items?page=2")?;
//! assert_eq!(target.to_string(), "https://api.example.com:443");
//! assert!(policy.check_url("https://raw.githubusercontent.com/x").is_ok());
//!
//! let refuse = |url| policy.check_url(url).unwrap_err().code();
//! assert_eq!(refuse("https://githubusercontent.com/"), "EGRESS_HOST_NOT_ALLOWED");
//! assert_eq!(refuse("http://api.example.com/"), "EGRESS_SCHEME_NOT_ALLOWED");
//! assert_eq!(refuse("https://api.example.com:8443/"), "EGRESS_PORT_NOT_ALLOWED");
//! assert_eq!(refuse("https://user@api.example.com/"), "EGRESS_USERINFO");
//! assert_eq!(refuse("https://0x7f.1/"), "EGRESS_ADDRESS_DENIED");
//!
//! // After DNS: one private address among public ones is enough to refuse.
//! let addrs = ["93.184.215.14".parse()?, "10.0.0.7".parse()?];
//! assert_eq!(policy.check_resolved("api.example.com", &addrs).unwrap_err().code(), "EGRESS_ADDRESS_DENIED");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod allowlist;
mod host;
mod ip;
mod url;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use ip::special_range;

use crate::port::PortRange;
use allowlist::HostAllowlist;
use url::Excerpt;

/// Why an outbound connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The URL could not be parsed, or is written in a way parsers disagree on. Code `INVALID_URL`.
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is not in the policy. Code `EGRESS_SCHEME_NOT_ALLOWED`.
    #[error("scheme {} is not allowed; allowed schemes: {}", Excerpt(.scheme), List(.allowed))]
    SchemeNotAllowed {
        /// The refused scheme, lowercase.
        scheme: String,
        /// The policy's schemes.
        allowed: Vec<String>,
    },
    /// The URL carries credentials (`user:password@host`). Code `EGRESS_USERINFO`.
    ///
    /// The credentials are not repeated anywhere, so they cannot leak into logs.
    #[error("credentials in the URL (user@host) are not allowed; remove the part before '@'")]
    Userinfo,
    /// The host is not in the allowlist. Code `EGRESS_HOST_NOT_ALLOWED`.
    #[error("host {host} is not allowed: it matches no entry of the egress allowlist")]
    HostNotAllowed {
        /// The refused host.
        host: Host,
    },
    /// The port is not allowed for the scheme. Code `EGRESS_PORT_NOT_ALLOWED`.
    #[error("port {port} is not allowed for {scheme}; allowed ports: {}", PortList(.allowed))]
    PortNotAllowed {
        /// The refused port.
        port: u16,
        /// The URL's scheme.
        scheme: String,
        /// The ports the policy allows for that scheme.
        allowed: Vec<PortRange>,
    },
    /// The address is in a special-purpose range (private, loopback, metadata, ...), which no
    /// allowlist entry can open. Code `EGRESS_ADDRESS_DENIED`.
    #[error(
        "address {address} is in a denied range: {range}; egress never reaches private, loopback, link-local, \
         metadata or other special-purpose addresses"
    )]
    AddressDenied {
        /// The refused address.
        address: IpAddr,
        /// The range it is in, as named by [`special_range`].
        range: &'static str,
    },
    /// A host name resolved to no address, so there is nothing that could be checked. Code
    /// `EGRESS_NO_ADDRESSES`.
    #[error("host {host} resolved to no addresses; there is nothing to connect to")]
    NoAddresses {
        /// The host.
        host: Host,
    },
    /// An entry given to [`EgressPolicy::new`] is malformed. Code `INVALID_EGRESS_RULE`.
    #[error("invalid egress rule {}: {reason}", Excerpt(.rule))]
    InvalidRule {
        /// The refused entry.
        rule: String,
        /// What is wrong with it, and what is allowed.
        reason: String,
    },
}

impl EgressError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "INVALID_URL",
            Self::SchemeNotAllowed { .. } => "EGRESS_SCHEME_NOT_ALLOWED",
            Self::Userinfo => "EGRESS_USERINFO",
            Self::HostNotAllowed { .. } => "EGRESS_HOST_NOT_ALLOWED",
            Self::PortNotAllowed { .. } => "EGRESS_PORT_NOT_ALLOWED",
            Self::AddressDenied { .. } => "EGRESS_ADDRESS_DENIED",
            Self::NoAddresses { .. } => "EGRESS_NO_ADDRESSES",
            Self::InvalidRule { .. } => "INVALID_EGRESS_RULE",
        }
    }
}

/// Formats `a, b` for error messages, or `none`.
struct List<'a>(&'a [String]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.0.join(", "))
    }
}

/// Formats `80, 8000-8100` for error messages, or `none`.
struct PortList<'a>(&'a [PortRange]);

impl fmt::Display for PortList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match (range.start(), range.end()) {
                (start, end) if start == end => write!(f, "{start}")?,
                (start, end) => write!(f, "{start}-{end}")?,
            }
        }
        Ok(())
    }
}

/// A URL's host: a lowercase DNS name without trailing dot, or an IP address in canonical form.
///
/// Parsing accepts what a URL authority accepts (names, IPv4 in every browser notation, IPv6 in
/// brackets) and also a bare IPv6 address; `Display` writes IPv6 in brackets, so it parses back.
///
/// ```
/// use sandguard_policy::Host;
///
/// assert_eq!("Example.COM.".parse::<Host>()?, Host::Name("example.com".into()));
/// assert_eq!("0x7f.1".parse::<Host>()?.to_string(), "127.0.0.1");
/// assert_eq!("::1".parse::<Host>()?.to_string(), "[::1]");
/// # Ok::<(), sandguard_policy::egress::EgressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercase, no trailing dot.
    Name(String),
    /// An IP literal, whatever notation it was written in.
    Ip(IpAddr),
}

impl FromStr for Host {
    type Err = EgressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        host::parse_host_or_bare_ipv6(text)
            .map_err(|reason| EgressError::InvalidUrl { reason: format!("invalid host {}: {reason}", Excerpt(text)) })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// Where an allowed connection goes.
///
/// `Display` writes `scheme://host:port`, with the port always present.
///
/// ```
/// use sandguard_policy::{EgressPolicy, Host};
///
/// let target = EgressPolicy::parse_url("HTTP://[2606:4700::1111]/dns-query")?;
/// assert_eq!(target.port, 80);
/// assert!(matches!(target.host, Host::Ip(_)));
/// assert_eq!(target.to_string(), "http://[2606:4700::1111]:80");
/// # Ok::<(), sandguard_policy::egress::EgressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressTarget {
    /// Lowercase scheme.
    pub scheme: String,
    /// Normalised host.
    pub host: Host,
    /// Explicit port, or the scheme's default.
    pub port: u16,
}

impl fmt::Display for EgressTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The port a scheme uses when a URL gives none: 80 for `http`, 443 for `https`, none for any other.
///
/// Other schemes must be given explicit port ranges in an [`EgressPolicy`], and an explicit port in
/// their URLs, so that no port is ever guessed.
pub fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else {
        None
    }
}

/// Which outbound connections a sandbox may make.
///
/// Compiled once by [`new`](Self::new): schemes lowercased, host entries normalised into sets, so a
/// check is a handful of hash lookups. The default allows schemes `http` and `https` on their default
/// ports, and no host at all.
///
/// Host entries are exact names (`api.example.com`), wildcards (`*.example.com`, which matches names
/// any number of labels below `example.com` but not `example.com` itself: list both to allow both),
/// IP addresses in any notation (`203.0.113.9`, `[2001:db8::1]`), or `*` for every host. Names are
/// case-insensitive and a trailing dot is ignored. No entry ever opens the ranges of
/// [`special_range`]: the address check runs before the allowlist.
///
/// ```
/// use sandguard_policy::{EgressPolicy, PortRange};
///
/// let ports: Vec<PortRange> = vec!["443".parse()?, "8000-8100".parse()?];
/// let policy = EgressPolicy::new(["https", "wss"], ["*.example.com", "1.1.1.1"], Some(ports))?;
/// assert!(policy.check_url("wss://chat.example.com:8080/").is_ok());
/// assert!(policy.check_url("https://1.1.1.1/").is_ok());
/// assert_eq!(policy.check_url("https://10.1.2.3/").unwrap_err().code(), "EGRESS_ADDRESS_DENIED");
/// assert_eq!(policy.check_url("wss://chat.example.com/").unwrap_err().code(), "INVALID_URL"); // no port
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Lowercase, deduplicated.
    schemes: Vec<String>,
    hosts: HostAllowlist,
    /// `None`: each scheme's [`default_port`] only.
    ports: Option<Vec<PortRange>>,
}

impl Default for EgressPolicy {
    /// Schemes `http` and `https` on ports 80 and 443; no host allowed.
    fn default() -> Self {
        Self { schemes: vec!["http".into(), "https".into()], hosts: HostAllowlist::default(), ports: None }
    }
}

impl EgressPolicy {
    /// A policy with the given schemes (lowercased), hosts (exact or `*.suffix`) and ports
    /// (`None`: each scheme's default port only).
    ///
    /// # Errors
    ///
    /// [`EgressError::InvalidRule`] for a malformed scheme or host entry, or when `ports` is `None`
    /// and a scheme has no [`default_port`].
    pub fn new<S, H>(schemes: S, hosts: H, ports: Option<Vec<PortRange>>) -> Result<Self, EgressError>
    where
        S: IntoIterator,
        S::Item: AsRef<str>,
        H: IntoIterator,
        H::Item: AsRef<str>,
    {
        let mut allowed: Vec<String> = Vec::new();
        for scheme in schemes {
            let scheme = scheme.as_ref();
            let refuse = |reason: &str| EgressError::InvalidRule { rule: scheme.to_owned(), reason: reason.to_owned() };
            if !url::is_valid_scheme(scheme) {
                return Err(refuse("a scheme is a letter followed by letters, digits, '+', '-' or '.'"));
            }
            if ports.is_none() && default_port(scheme).is_none() {
                return Err(refuse("this scheme has no default port; give the allowed ports explicitly"));
            }
            let scheme = scheme.to_ascii_lowercase();
            if !allowed.contains(&scheme) {
                allowed.push(scheme);
            }
        }
        Ok(Self { schemes: allowed, hosts: HostAllowlist::new(hosts)?, ports })
    }

    /// The allowed schemes, lowercase.
    pub fn schemes(&self) -> &[String] {
        &self.schemes
    }

    /// The allowed port ranges, or `None` for each scheme's [`default_port`].
    pub fn ports(&self) -> Option<&[PortRange]> {
        self.ports.as_deref()
    }

    /// Parses a URL without deciding on it: the scheme is lowercased, the host normalised and a
    /// missing port replaced by the scheme's [`default_port`].
    ///
    /// # Errors
    ///
    /// [`EgressError::InvalidUrl`], or [`EgressError::Userinfo`] for a URL with credentials.
    pub fn parse_url(url: &str) -> Result<EgressTarget, EgressError> {
        let parts = url::parse(url)?;
        let port = port_or_default(parts.scheme, parts.port)?;
        Ok(EgressTarget { scheme: parts.scheme.to_ascii_lowercase(), host: parts.host, port })
    }

    /// Decides on a URL before resolution.
    ///
    /// In order: the URL must parse ([`parse_url`](Self::parse_url)), its scheme be allowed, an IP
    /// literal host be outside [`special_range`], the host be allowed, and the port be allowed.
    ///
    /// # Errors
    ///
    /// The first check that fails, as an [`EgressError`].
    pub fn check_url(&self, url: &str) -> Result<EgressTarget, EgressError> {
        let parts = url::parse(url)?;
        let scheme = self.allowed_scheme(parts.scheme)?;
        if let Host::Ip(address) = parts.host {
            refuse_special(address)?;
        }
        if !self.hosts.allows(&parts.host) {
            return Err(EgressError::HostNotAllowed { host: parts.host });
        }
        let port = port_or_default(scheme, parts.port)?;
        if !self.allows_port(scheme, port) {
            return Err(EgressError::PortNotAllowed {
                port,
                scheme: scheme.to_owned(),
                allowed: self.allowed_ports(scheme),
            });
        }
        Ok(EgressTarget { scheme: scheme.to_owned(), host: parts.host, port })
    }

    /// Whether [`check_url`](Self::check_url) allows `url`.
    pub fn allows(&self, url: &str) -> bool {
        self.check_url(url).is_ok()
    }

    /// Decides again on the addresses a name resolved to (DNS rebinding): every one must be public.
    ///
    /// `host` is parsed like [`Host`]; the executor passes the host of the [`EgressTarget`] that
    /// [`check_url`](Self::check_url) returned, then connects only to the addresses checked here.
    ///
    /// # Errors
    ///
    /// [`EgressError::InvalidUrl`] for a malformed host, [`EgressError::HostNotAllowed`],
    /// [`EgressError::NoAddresses`] when `addrs` is empty, or [`EgressError::AddressDenied`] for the
    /// first address in a special range.
    pub fn check_resolved(&self, host: &str, addrs: &[IpAddr]) -> Result<(), EgressError> {
        self.check_resolved_host(&host.parse()?, addrs)
    }

    /// [`check_resolved`](Self::check_resolved) for a host that is already parsed.
    ///
    /// # Errors
    ///
    /// As [`check_resolved`](Self::check_resolved).
    pub fn check_resolved_host(&self, host: &Host, addrs: &[IpAddr]) -> Result<(), EgressError> {
        if let Host::Ip(address) = host {
            refuse_special(*address)?;
        }
        if !self.hosts.allows(host) {
            return Err(EgressError::HostNotAllowed { host: host.clone() });
        }
        if addrs.is_empty() {
            return Err(EgressError::NoAddresses { host: host.clone() });
        }
        addrs.iter().try_for_each(|&address| refuse_special(address))
    }

    fn allowed_scheme(&self, scheme: &str) -> Result<&str, EgressError> {
        self.schemes.iter().find(|allowed| allowed.eq_ignore_ascii_case(scheme)).map(String::as_str).ok_or_else(|| {
            EgressError::SchemeNotAllowed { scheme: scheme.to_ascii_lowercase(), allowed: self.schemes.clone() }
        })
    }

    fn allows_port(&self, scheme: &str, port: u16) -> bool {
        match &self.ports {
            Some(ranges) => ranges.iter().any(|range| (range.start()..=range.end()).contains(&port)),
            None => default_port(scheme) == Some(port),
        }
    }

    fn allowed_ports(&self, scheme: &str) -> Vec<PortRange> {
        match &self.ports {
            Some(ranges) => ranges.clone(),
            None => default_port(scheme).and_then(|port| PortRange::new(port, port).ok()).into_iter().collect(),
        }
    }
}

fn port_or_default(scheme: &str, port: Option<u16>) -> Result<u16, EgressError> {
    port.or_else(|| default_port(scheme)).ok_or_else(|| EgressError::InvalidUrl {
        reason: format!("the URL has no port, and scheme {} has no default port", Excerpt(scheme)),
    })
}

fn refuse_special(address: IpAddr) -> Result<(), EgressError> {
    match special_range(address) {
        Some(range) => Err(EgressError::AddressDenied { address, range }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
