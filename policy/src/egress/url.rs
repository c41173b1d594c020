//! A strict parser for `scheme://host[:port][/path][?query][#fragment]`.
//!
//! Strict on purpose. Browsers repair what they are given (they drop tabs and newlines, read `\` as
//! `/`, decode percent-escapes in hosts), and every repair is a place where the proxy and the checker
//! could disagree about where a URL goes. Here anything that more than one reader could read in more
//! than one way is refused instead.

use super::host::parse_host;
use super::{EgressError, Host};

/// Longest URL accepted, in bytes: what common servers accept in a request line.
pub(super) const MAX_URL_LEN: usize = 8192;

/// The parts of a URL an egress decision needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UrlParts<'a> {
    /// As written; the caller lowercases.
    pub(super) scheme: &'a str,
    pub(super) host: Host,
    pub(super) port: Option<u16>,
}

fn invalid(reason: impl Into<String>) -> EgressError {
    EgressError::InvalidUrl { reason: reason.into() }
}

/// Splits and validates `input`. Userinfo is refused with [`EgressError::Userinfo`], anything else
/// malformed with [`EgressError::InvalidUrl`].
pub(super) fn parse(input: &str) -> Result<UrlParts<'_>, EgressError> {
    if input.is_empty() {
        return Err(invalid("the URL is empty"));
    }
    if input.len() > MAX_URL_LEN {
        return Err(invalid(format!("the URL is {} bytes long; the limit is {MAX_URL_LEN}", input.len())));
    }
    // Refused everywhere, before any splitting, so no delimiter can be hidden behind them.
    if let Some(offset) = input.bytes().position(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid(format!("byte {offset} is whitespace or a control character; percent-encode it")));
    }
    if input.contains('\\') {
        return Err(invalid("the URL contains a backslash, which browsers read as '/' and other parsers do not"));
    }

    let (scheme, rest) = split_scheme(input)?;
    let rest =
        rest.strip_prefix("//").ok_or_else(|| invalid("expected \"//\" after the scheme, as in https://host/"))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(EgressError::Userinfo);
    }
    let (host_text, port_text) = split_host_port(authority)?;
    let host = parse_host(host_text).map_err(|reason| invalid(format!("invalid host: {reason}")))?;
    let port = port_text.map(parse_port).transpose()?;
    check_tail(tail)?;
    Ok(UrlParts { scheme, host, port })
}

/// Whether `scheme` is valid per RFC 3986: a letter, then letters, digits, `+`, `-` or `.`.
pub(super) fn is_valid_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `scheme:rest`.
fn split_scheme(input: &str) -> Result<(&str, &str), EgressError> {
    let missing = || invalid("expected a scheme, as in https://host/");
    let colon = input.find(':').ok_or_else(missing)?;
    let (scheme, rest) = input.split_at(colon);
    if !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(missing());
    }
    if !is_valid_scheme(scheme) {
        return Err(invalid("the scheme may contain only letters, digits, '+', '-' and '.'"));
    }
    Ok((scheme, rest.get(1..).unwrap_or_default()))
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 address.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), EgressError> {
    let (host, after_host) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or_else(|| invalid("an IPv6 address must be closed with ']'"))?;
        authority.split_at(close + 1)
    } else {
        let end = authority.find(':').unwrap_or(authority.len());
        authority.split_at(end)
    };
    match after_host.strip_prefix(':') {
        None if after_host.is_empty() => Ok((host, None)),
        None => Err(invalid("unexpected characters after the IPv6 address; expected ':port' or the path")),
        Some(port) if port.contains(':') => {
            Err(invalid("an IPv6 address must be written in brackets, as in http://[2001:db8::1]/"))
        }
        Some(port) => Ok((host, Some(port))),
    }
}

/// A port: 1 to 65535 in plain decimal. An empty port, `0`, signs and leading zeros are refused:
/// each is read differently by some parser.
fn parse_port(text: &str) -> Result<u16, EgressError> {
    if text.is_empty() {
        return Err(invalid("the port after ':' is empty"));
    }
    let plain = text.len() <= 5 && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse() {
        Ok(port) if plain => Ok(port),
        _ => Err(invalid(format!("invalid port {}: expected a decimal number from 1 to 65535", Excerpt(text)))),
    }
}

/// Path, query and fragment: the decision does not depend on them, but the proxy forwards them, so
/// they must be printable ASCII with well-formed percent-escapes.
fn check_tail(tail: &str) -> Result<(), EgressError> {
    let bytes = tail.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if !b.is_ascii() {
            return Err(invalid("non-ASCII characters in the path, query or fragment must be percent-encoded"));
        }
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3).filter(|hex| hex.iter().all(u8::is_ascii_hexdigit));
            if escape.is_none() {
                return Err(invalid("'%' in the path, query or fragment must start a two-digit hex escape"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Shows the start of untrusted text in a message, quoted and escaped, without the rest.
pub(super) struct Excerpt<'a>(pub(super) &'a str);

impl std::fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 40;
        match self.0.char_indices().nth(SHOWN) {
            Some((cut, _)) => write!(f, "{:?}...", self.0.get(..cut).unwrap_or_default()),
            None => write!(f, "{:?}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn parts(input: &str) -> UrlParts<'_> {
        parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn reason(input: &str) -> String {
        match parse(input) {
            Err(EgressError::InvalidUrl { reason }) => reason,
            other => panic!("{input:?}: expected INVALID_URL, got {other:?}"),
        }
    }

    #[test]
    fn splits_well_formed_urls() {
        let url = parts("HTTPS://Example.com:8443/a/b?q=1&r=%2F#frag@x");
        assert_eq!(url, UrlParts { scheme: "HTTPS", host: Host::Name("example.com".into()), port: Some(8443) });
        assert_eq!(parts("http://example.com").port, None);
        assert_eq!(parts("http://example.com?x").host, Host::Name("example.com".into()));
        assert_eq!(parts("http://example.com#x").host, Host::Name("example.com".into()));
        assert_eq!(parts("git+ssh://example.com:22/").scheme, "git+ssh");
        let v6 = parts("http://[2001:db8::1]:8080/");
        assert_eq!((v6.host, v6.port), (Host::Ip("2001:db8::1".parse::<IpAddr>().unwrap()), Some(8080)));
        assert_eq!(parts("http://[::1]").port, None);
        assert_eq!(parts("http://a/%41%7e").host, Host::Name("a".into()));
        assert_eq!(parts("http://x:65535").port, Some(65535));
    }

    #[test]
    fn refuses_userinfo_before_anything_in_the_authority() {
        for input in [
            "http://a@evil.com",
            "http://user:pass@good.com/",
            "http://good.com@evil.com",
            "http://@x",
            "http://[::1]@x",
        ] {
            assert_eq!(parse(input), Err(EgressError::Userinfo), "{input}");
        }
    }

    #[test]
    fn refuses_ambiguous_characters() {
        assert!(reason("http://evil.com\\@good.com").contains("backslash"));
        assert!(reason("http://evil.com\\.good.com/").contains("backslash"));
        assert!(reason("http://a/b\\c").contains("backslash"));
        assert!(reason("http://exa mple.com").contains("whitespace"));
        assert!(reason("http://example.com\t/").contains("whitespace"));
        assert!(reason(" http://example.com").contains("byte 0"));
        assert!(reason("http://example.com/\r\nHost: evil").contains("whitespace"));
        assert!(reason("http://example.com\0.evil").contains("control"));
        assert!(reason("http://ex\u{7f}ample.com").contains("control"));
        assert!(reason("http://ex%61mple.com").contains("percent-encoding"));
        assert!(reason("http://bücher.ch").contains("punycode (xn--)"));
        assert!(reason("http://example.com/ü").contains("percent-encoded"));
        assert!(reason("http://example.com/%zz").contains("hex escape"));
        assert!(reason("http://example.com/%4").contains("hex escape"));
    }

    #[test]
    fn refuses_malformed_structure() {
        for (input, expected) in [
            ("", "empty"),
            ("example.com", "expected a scheme"),
            ("//example.com", "expected a scheme"),
            ("1http://x", "expected a scheme"),
            ("ht_tp://x", "scheme may contain only"),
            ("http:example.com", "expected \"//\""),
            ("http:/example.com", "expected \"//\""),
            ("http://", "the host is empty"),
            ("http:///path", "the host is empty"),
            ("http://:80/", "the host is empty"),
            ("http://x:/", "port after ':' is empty"),
            ("http://x:0", "invalid port"),
            ("http://x:080", "invalid port"),
            ("http://x:65536", "invalid port"),
            ("http://x:+80", "invalid port"),
            ("http://x:8o", "invalid port"),
            ("http://x:1:2", "must be written in brackets"),
            ("http://::1/", "must be written in brackets"),
            ("http://2001:db8::1/", "must be written in brackets"),
            ("http://[::1]x/", "unexpected characters after the IPv6 address"),
            ("http://[::1/", "must be closed with ']'"),
            ("http://[fe80::1%25eth0]/", "zone identifiers"),
            ("http://a]b/", "brackets are only allowed"),
            ("http://example.1/", "must be an IPv4 address"),
            ("http://1.2.3.4.5/", "must be an IPv4 address"),
        ] {
            let got = reason(input);
            assert!(got.contains(expected), "{input:?}: {got:?} lacks {expected:?}");
        }
        assert!(reason(&format!("http://x/{}", "a".repeat(MAX_URL_LEN))).contains("limit is 8192"));
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(Excerpt("a\"b").to_string(), r#""a\"b""#);
        let long = "x".repeat(100);
        assert_eq!(Excerpt(&long).to_string(), format!("{:?}...", "x".repeat(40)));
        let wide = "é".repeat(50);
        assert_eq!(Excerpt(&wide).to_string(), format!("{:?}...", "é".repeat(40)));
    }
}
