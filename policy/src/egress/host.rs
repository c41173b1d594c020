//! Host syntax: DNS names, IPv4 in every browser notation, bracketed IPv6.
//!
//! Shared by URLs, allowlist entries and [`Host`]'s `FromStr`, so a host means the same thing
//! wherever it is written.

use std::net::{IpAddr, Ipv6Addr};

use super::Host;
use super::ip::{ends_in_number, parse_ipv4};

/// Longest DNS name, without the trailing dot (RFC 1035).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

const ZONE_REFUSED: &str = "IPv6 zone identifiers (%...) are not allowed";

/// Parses a host as written in a URL authority: a name, an IPv4 address in any notation, or an
/// IPv6 address in brackets. The error is a reason for a message.
pub(super) fn parse_host(text: &str) -> Result<Host, &'static str> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("an IPv6 address must be closed with ']'")?;
        return parse_ipv6(inner).map(|ip| Host::Ip(IpAddr::V6(ip)));
    }
    parse_name_or_ipv4(text)
}

/// Like [`parse_host`], and also takes a bare IPv6 address: without a port after it, its colons
/// are unambiguous.
pub(super) fn parse_host_or_bare_ipv6(text: &str) -> Result<Host, &'static str> {
    if text.contains(':') && !text.starts_with('[') {
        return match parse_ipv6(text) {
            Ok(ip) => Ok(Host::Ip(IpAddr::V6(ip))),
            Err(ZONE_REFUSED) => Err(ZONE_REFUSED),
            Err(_) => Err("neither a host name nor an IPv6 address (a port is not allowed here)"),
        };
    }
    parse_host(text)
}

fn parse_ipv6(text: &str) -> Result<Ipv6Addr, &'static str> {
    if text.contains('%') {
        // A zone names an interface of the machine that parses it, so its meaning depends on where
        // the proxy runs; it can only point at link-local space anyway.
        return Err(ZONE_REFUSED);
    }
    text.parse().map_err(|_| "invalid IPv6 address")
}

fn parse_name_or_ipv4(text: &str) -> Result<Host, &'static str> {
    if text.is_empty() {
        return Err("the host is empty");
    }
    // Bounds the work below and every later copy; the extra byte is for a trailing dot.
    if text.len() > MAX_NAME_LEN + 1 {
        return Err("the host is longer than 253 bytes");
    }
    for &b in text.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {}
            b'%' => return Err("percent-encoding is not allowed in the host"),
            0x80.. => return Err("non-ASCII host; use the punycode (xn--) form"),
            b'[' | b']' => return Err("brackets are only allowed around a whole IPv6 address"),
            b':' => return Err("an IPv6 address must be written in brackets, as in http://[2001:db8::1]/"),
            _ => return Err("host names may contain only letters, digits, '-', '_' and '.'"),
        }
    }
    // A fully qualified `example.com.` names the same host as `example.com`.
    let text = text.strip_suffix('.').unwrap_or(text);
    if ends_in_number(text) {
        return parse_ipv4(text)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or("the host ends in a number, so it must be an IPv4 address, but it is not a valid one");
    }
    if text.len() > MAX_NAME_LEN {
        return Err("the host is longer than 253 bytes");
    }
    for label in text.split('.') {
        if label.is_empty() {
            return Err("the host has an empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("a host label is longer than 63 bytes");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a host label starts or ends with '-'");
        }
    }
    Ok(Host::Name(text.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn name(text: &str) -> Host {
        Host::Name(text.into())
    }

    #[test]
    fn names_are_lowercased_without_trailing_dot() {
        assert_eq!(parse_host("Example.COM"), Ok(name("example.com")));
        assert_eq!(parse_host("example.com."), Ok(name("example.com")));
        assert_eq!(parse_host("_srv.a-b.xn--bcher-kva.ch"), Ok(name("_srv.a-b.xn--bcher-kva.ch")));
        assert_eq!(parse_host("1.2.3.example"), Ok(name("1.2.3.example")));
        assert_eq!(parse_host("0x7g"), Ok(name("0x7g")), "not hexadecimal, so a name");
        let longest = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
        assert_eq!(parse_host(&longest), Ok(Host::Name(longest.clone())));
        assert_eq!(parse_host(&format!("{longest}.")), Ok(Host::Name(longest.clone())));
        assert!(parse_host(&format!("{longest}a")).is_err());
    }

    #[test]
    fn refuses_malformed_names() {
        for (text, reason) in [
            ("", "the host is empty"),
            (".", "the host has an empty label"),
            ("a..b", "the host has an empty label"),
            ("example.com..", "the host has an empty label"),
            (".example.com", "the host has an empty label"),
            ("-a.com", "a host label starts or ends with '-'"),
            ("a-.com", "a host label starts or ends with '-'"),
            ("ex%61mple.com", "percent-encoding is not allowed in the host"),
            ("bücher.ch", "non-ASCII host; use the punycode (xn--) form"),
            ("a b", "host names may contain only letters, digits, '-', '_' and '.'"),
            ("a*b", "host names may contain only letters, digits, '-', '_' and '.'"),
            ("::1", "an IPv6 address must be written in brackets, as in http://[2001:db8::1]/"),
            ("a]", "brackets are only allowed around a whole IPv6 address"),
        ] {
            assert_eq!(parse_host(text), Err(reason), "{text:?}");
        }
        assert_eq!(parse_host(&format!("{}.com", "a".repeat(64))), Err("a host label is longer than 63 bytes"));
    }

    #[test]
    fn numeric_hosts_must_be_ipv4() {
        let loopback = Ok(Host::Ip(Ipv4Addr::LOCALHOST.into()));
        assert_eq!(parse_host("0x7F.1"), loopback);
        assert_eq!(parse_host("127.0.0.1."), loopback);
        for text in ["example.1", "1.2.3.4.5", "256.0.0.1", "09", "a.0x", "127.0.0.1..", "999999999999999999999999"] {
            let error = parse_host(text).unwrap_err();
            assert!(error.contains("empty label") || error.contains("IPv4"), "{text:?}: {error}");
        }
    }

    #[test]
    fn ipv6_needs_brackets_in_urls_and_refuses_zones() {
        assert_eq!(parse_host("[::1]"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host("[::FFFF:127.0.0.1]"), Ok(Host::Ip("::ffff:7f00:1".parse().unwrap())));
        assert_eq!(parse_host("[fe80::1%25eth0]"), Err("IPv6 zone identifiers (%...) are not allowed"));
        assert_eq!(parse_host("[fe80::1%eth0]"), Err("IPv6 zone identifiers (%...) are not allowed"));
        assert_eq!(parse_host("[127.0.0.1]"), Err("invalid IPv6 address"));
        assert_eq!(parse_host("[::1"), Err("an IPv6 address must be closed with ']'"));
        assert_eq!(parse_host("[]"), Err("invalid IPv6 address"));
        assert_eq!(parse_host("[::ffff:0127.0.0.1]"), Err("invalid IPv6 address"), "no octal inside IPv6");
        assert_eq!(parse_host_or_bare_ipv6("::1"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host_or_bare_ipv6("[::1]"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(parse_host_or_bare_ipv6("Example.com"), Ok(name("example.com")));
        assert_eq!(parse_host_or_bare_ipv6("fe80::1%eth0"), Err(ZONE_REFUSED));
        let with_port = parse_host_or_bare_ipv6("example.com:443").unwrap_err();
        assert!(with_port.contains("a port is not allowed here"), "{with_port}");
    }
}
