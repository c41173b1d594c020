//! `egress_url`: our strict URL parser and `EgressPolicy` against the WHATWG parser of the `url`
//! crate, a reference allowlist matcher, and a reference table of denied addresses built on the
//! standard library's address predicates.
//!
//! The input is text: the first line is a URL, each later line an address the URL's host
//! "resolved" to (DNS rebinding). Properties:
//!
//! 1. Whenever our parser accepts a URL, `url` accepts it too and finds the same host (name or
//!    address) and port. We are stricter by design, so a URL only `url` accepts proves nothing.
//! 2. `check_url` never allows a host in a denied range (by the reference), nor a host the
//!    reference matcher finds in no allowlist entry.
//! 3. `check_resolved` never allows a list with a denied address; and `special_range` names every
//!    address the reference denies.
//!
//! Deliberate differences from `url`, skipped rather than reported:
//! - `url` keeps a trailing dot (`example.com.`); we drop it, as DNS does. Compared without it.
//! - Schemes `url` does not know as special get an opaque host there (case kept, no IPv4 parsing),
//!   while we read every authority like `http`'s; for those the host is compared by parsing the
//!   same URL with the scheme replaced by `http` (`file` too: `url` maps `localhost` away).
//! - `url` runs IDNA on names and refuses `xn--` labels that are not valid punycode; we pass
//!   ASCII names to DNS as they are (and refuse non-ASCII ones), so such a name is not compared.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sandguard_policy::egress::special_range;
use sandguard_policy::{EgressPolicy, EgressTarget, Host, PortRange};

use crate::{Violation, violation};

/// The allowlists of the target's two policies.
pub const HOSTS: [&[&str]; 2] = [
    &["*.example.com", "api.test.org", "93.184.215.14", "[2606:4700::1111]", "xn--bcher-kva.ch", "0x5db8d70f"],
    &["*"],
];

/// The target's policies: default schemes and ports with a list of hosts, and every host with
/// many schemes on every port, so only the address check stands between a URL and a connection.
pub fn policies() -> [EgressPolicy; 2] {
    let every_port = Some(vec![PortRange::new(1, 65535).expect("a valid range")]);
    [
        EgressPolicy::new(["http", "https"], HOSTS[0], None).expect("a valid policy"),
        EgressPolicy::new(["http", "https", "ws", "wss", "ftp", "git+ssh", "file"], HOSTS[1], every_port)
            .expect("a valid policy"),
    ]
}

/// Whether the reference denies `ip`: the IANA special-purpose registries (entries not globally
/// reachable), through the standard library's predicates where it has them, and the cloud
/// metadata endpoints. Addresses embedding IPv4 are judged by the IPv4 address.
pub fn reference_denies(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => reference_denies_v4(v4),
        IpAddr::V6(v6) => reference_denies_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn reference_denies_v4(ip: Ipv4Addr) -> bool {
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || in_v4(ip, [0, 0, 0, 0], 8)
        || in_v4(ip, [100, 64, 0, 0], 10)
        || in_v4(ip, [192, 0, 0, 0], 24)
        || in_v4(ip, [192, 88, 99, 0], 24)
        || in_v4(ip, [198, 18, 0, 0], 15)
        || in_v4(ip, [240, 0, 0, 0], 4)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
}

fn in_v6(ip: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

fn reference_denies_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reference_denies_v4(v4);
    }
    let [_, _, a, b, c, d, ..] = ip.octets();
    let [.., w, x, y, z] = ip.octets();
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return reference_denies_v4(Ipv4Addr::new(w, x, y, z));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return reference_denies_v4(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || in_v6(ip, [0, 0, 0, 0, 0, 0, 0, 0], 96)
        || !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
        || in_v6(ip, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
        || in_v6(ip, [0x100, 0, 0, 0, 0, 0, 0, 0], 64)
        || in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 23)
        || in_v6(ip, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32)
        || in_v6(ip, [0x3fff, 0, 0, 0, 0, 0, 0, 0], 20)
        || in_v6(ip, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10)
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
}

/// A host as the reference sees it: `url`'s, trailing dot removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceHost {
    /// A domain, lowercase as `url` leaves it, without trailing dot.
    Name(String),
    /// An address.
    Ip(IpAddr),
}

/// The reference allowlist matcher over the entries in [`HOSTS`] (written independently of ours:
/// names are compared as text, address entries as `url` reads them).
pub fn reference_allows(entries: &[&str], host: &ReferenceHost) -> bool {
    entries.iter().any(|entry| {
        if *entry == "*" {
            return true;
        }
        match host {
            // An address entry may be in any notation; the WHATWG parser reads it.
            ReferenceHost::Ip(ip) => {
                matches!(reference_parse(&format!("http://{entry}/")), Ok((ReferenceHost::Ip(e), _)) if e == *ip)
            }
            ReferenceHost::Name(name) => match entry.strip_prefix("*.") {
                Some(suffix) => {
                    name.len() > suffix.len() + 1
                        && name.ends_with(suffix)
                        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
                }
                None => name == entry,
            },
        }
    })
}

/// Schemes whose hosts `url` parses as we do (domains with IPv4 notation, lowercase).
const SPECIAL: [&str; 5] = ["http", "https", "ws", "wss", "ftp"];

/// What `url` makes of the host and port of `input`, or why it refuses it.
fn reference_parse(input: &str) -> Result<(ReferenceHost, Option<u16>), String> {
    let scheme_len = input.find(':').unwrap_or(0);
    let scheme = input[..scheme_len].to_ascii_lowercase();
    let host_url = if SPECIAL.contains(&scheme.as_str()) {
        url::Url::parse(input).map_err(|e| e.to_string())?
    } else {
        let as_http = format!("http{}", &input[scheme_len..]);
        url::Url::parse(&as_http).map_err(|e| format!("{e} (read as {as_http:?})"))?
    };
    let port = host_url.port_or_known_default();
    let host = match host_url.host() {
        Some(url::Host::Domain(domain)) => ReferenceHost::Name(domain.strip_suffix('.').unwrap_or(domain).to_owned()),
        Some(url::Host::Ipv4(ip)) => ReferenceHost::Ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => ReferenceHost::Ip(IpAddr::V6(ip)),
        None => return Err("no host".to_owned()),
    };
    Ok((host, port))
}

fn ours(host: &Host) -> ReferenceHost {
    match host {
        Host::Name(name) => ReferenceHost::Name(name.clone()),
        Host::Ip(ip) => ReferenceHost::Ip(*ip),
    }
}

/// Property 1 for one URL our parser accepted as `target`.
pub fn check_parse(input: &str, target: &EgressTarget) -> Result<(), Violation> {
    let (host, port) = match reference_parse(input) {
        Ok(found) => found,
        Err(_) if matches!(&target.host, Host::Name(name) if name.split('.').any(|l| l.starts_with("xn--"))) => {
            return Ok(());
        }
        Err(error) => violation!("{input:?}: we parse it as {target}, the WHATWG parser refuses it: {error}"),
    };
    if host != ours(&target.host) {
        violation!("{input:?}: we read host {:?}, the WHATWG parser reads {host:?}", target.host);
    }
    if port.is_some_and(|port| port != target.port) {
        violation!("{input:?}: we read port {}, the WHATWG parser reads {port:?}", target.port);
    }
    Ok(())
}

/// Property 2 for one URL `policy` (with allowlist `entries`) allowed as `target`.
pub fn check_allowed(input: &str, entries: &[&str], target: &EgressTarget) -> Result<(), Violation> {
    let host = ours(&target.host);
    if let ReferenceHost::Ip(ip) = host
        && reference_denies(ip)
    {
        violation!("{input:?} was allowed, but its address {ip} is in a denied range");
    }
    if !reference_allows(entries, &host) {
        violation!("{input:?} was allowed, but no allowlist entry of {entries:?} covers host {host:?}");
    }
    Ok(())
}

/// Property 3 for addresses `policy` accepted for `target`.
pub fn check_resolved_allowed(input: &str, addrs: &[IpAddr]) -> Result<(), Violation> {
    if let Some(ip) = addrs.iter().find(|ip| reference_denies(**ip)) {
        violation!("{input:?}: resolved addresses {addrs:?} were accepted, but {ip} is in a denied range");
    }
    Ok(())
}

/// The target's oracle.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    let Ok(text) = std::str::from_utf8(data) else { return Ok(()) };
    let mut lines = text.split('\n');
    let input = lines.next().unwrap_or_default();
    let addrs: Vec<IpAddr> = lines.filter_map(|line| line.parse().ok()).collect();

    for ip in &addrs {
        if reference_denies(*ip) && special_range(*ip).is_none() {
            violation!("special_range({ip}) is None, but the reference denies it");
        }
    }
    if let Ok(target) = EgressPolicy::parse_url(input) {
        check_parse(input, &target)?;
    }
    for (policy, entries) in policies().iter().zip(HOSTS) {
        let Ok(target) = policy.check_url(input) else { continue };
        check_allowed(input, entries, &target)?;
        if !addrs.is_empty() && policy.check_resolved_host(&target.host, &addrs).is_ok() {
            check_resolved_allowed(input, &addrs)?;
            if policy.check_resolved(&target.host.to_string(), &addrs).is_err() {
                violation!("{input:?}: check_resolved on the host's text disagrees with check_resolved_host");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: Host, port: u16) -> EgressTarget {
        EgressTarget { scheme: "http".into(), host, port }
    }

    #[test]
    fn the_reference_denies_the_special_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "::ffff:127.0.0.1",
            "::1",
            "fd00:ec2::254",
            "2002:7f00:1::",
            "64:ff9b::a00:1",
            "5f00::1",
        ] {
            assert!(reference_denies(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "2606:4700::1111", "2002:5db8:d70e::1"] {
            assert!(!reference_denies(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_oracle_fails_on_wrong_answers() {
        let loopback = target(Host::Ip(Ipv4Addr::LOCALHOST.into()), 80);
        assert!(check_allowed("http://0x7f.1/", HOSTS[1], &loopback).is_err());
        let evil = target(Host::Name("badexample.com".into()), 80);
        assert!(check_allowed("http://badexample.com/", HOSTS[0], &evil).is_err());
        let misread = target(Host::Name("good.com".into()), 80);
        assert!(check_parse("http://good.com.evil.com/", &misread).is_err());
        let wrong_port = target(Host::Name("a.example.com".into()), 8080);
        assert!(check_parse("http://a.example.com/", &wrong_port).is_err());
        assert!(check_resolved_allowed("x", &["10.0.0.1".parse().unwrap()]).is_err());
        assert!(check(b"https://a.example.com/\n93.184.215.14\n").is_ok());
    }
}
