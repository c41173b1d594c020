//! Tests of the egress policy as a whole; the parsers' own tests sit beside them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn policy(hosts: &[&str]) -> EgressPolicy {
    EgressPolicy::new(["http", "https"], hosts, None).unwrap()
}

fn code(policy: &EgressPolicy, url: &str) -> &'static str {
    policy.check_url(url).map_or_else(|e| e.code(), |t| panic!("{url:?} was allowed as {t}"))
}

fn ports(ranges: &[(u16, u16)]) -> Option<Vec<PortRange>> {
    Some(ranges.iter().map(|&(start, end)| PortRange::new(start, end).unwrap()).collect())
}

#[test]
fn every_notation_of_loopback_is_denied() {
    let everything = policy(&["*"]);
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "127.1",
        "127.0.1",
        "0x7f.1",
        "0177.0.0.1",
        "0x7F.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::127.0.0.1]",
        "[2002:7f00:1::]",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "0",
        "0.0.0.0",
    ] {
        let url = format!("http://{host}/");
        assert_eq!(code(&everything, &url), "EGRESS_ADDRESS_DENIED", "{url}");
        assert_eq!(code(&policy(&[host]), &url), "EGRESS_ADDRESS_DENIED", "{url} with the literal allowlisted");
    }
}

#[test]
fn metadata_services_are_denied_in_every_notation() {
    let everything = policy(&["*"]);
    for (url, range) in [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://2852039166/latest/meta-data/", "cloud metadata"),
        ("http://0xa9fea9fe/", "cloud metadata"),
        ("http://0251.0376.0251.0376/", "cloud metadata"),
        ("http://169.254.43518/", "cloud metadata"),
        ("http://0xA9.0xFE.0xA9.0xFE/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "AWS metadata"),
        ("http://[FD00:EC2:0::254]/latest/meta-data/", "AWS metadata"),
        ("http://100.100.100.200/latest/meta-data/", "Alibaba"),
        ("http://1684301000/", "Alibaba"),
        ("http://168.63.129.16/", "Azure"),
        ("http://[::ffff:168.63.129.16]/", "Azure"),
    ] {
        match everything.check_url(url) {
            Err(error @ EgressError::AddressDenied { .. }) => {
                assert!(error.to_string().contains(range), "{url}: {error}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn private_and_special_ranges_are_named() {
    let error = policy(&["*"]).check_url("http://10.0.0.1:8080/").unwrap_err();
    assert_eq!(
        error,
        EgressError::AddressDenied { address: Ipv4Addr::new(10, 0, 0, 1).into(), range: "private-use (10.0.0.0/8)" }
    );
    assert!(error.to_string().contains("private-use"), "{error}");
    let everything = policy(&["*"]);
    for url in [
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    ] {
        assert_eq!(code(&everything, url), "EGRESS_ADDRESS_DENIED", "{url}");
    }
}

#[test]
fn userinfo_and_backslash_tricks_are_refused() {
    let good = policy(&["good.com"]);
    assert_eq!(code(&good, "http://a@evil.com"), "EGRESS_USERINFO");
    assert_eq!(code(&good, "http://good.com@evil.com"), "EGRESS_USERINFO");
    assert_eq!(code(&good, "http://evil.com@good.com"), "EGRESS_USERINFO");
    assert_eq!(code(&good, "http://evil.com\\@good.com"), "INVALID_URL");
    assert_eq!(code(&good, "http://good.com\\.evil.com/"), "INVALID_URL");
    assert!(!EgressError::Userinfo.to_string().contains("evil"), "credentials are never echoed");
    // sandguard:allow(credentials-in-url) -- a made-up credential shape, for tests and docs
    let leaked = good.check_url("http://admin:hunter2@good.com/").unwrap_err().to_string();
    assert!(!leaked.contains("hunter2"), "{leaked}");
}

#[test]
fn wildcards_cover_subdomains_at_any_depth_but_not_the_suffix() {
    let policy = policy(&["*.example.com", "api.test"]);
    assert!(policy.allows("https://a.example.com/"));
    assert!(policy.allows("https://a.b.example.com/"));
    assert_eq!(code(&policy, "https://example.com/"), "EGRESS_HOST_NOT_ALLOWED");
    assert_eq!(code(&policy, "https://notexample.com/"), "EGRESS_HOST_NOT_ALLOWED");
    assert_eq!(code(&policy, "https://example.com.evil.net/"), "EGRESS_HOST_NOT_ALLOWED");
    assert!(policy.allows("https://api.test/"));
    assert_eq!(code(&policy, "https://www.api.test/"), "EGRESS_HOST_NOT_ALLOWED");
}

#[test]
fn hosts_are_case_insensitive_and_tolerate_one_trailing_dot() {
    let policy = policy(&["API.Example.com."]);
    for url in
        ["https://api.example.com/", "https://API.EXAMPLE.COM/", "https://api.example.com./", "HTTPS://Api.Example.Com"]
    {
        let target = policy.check_url(url).unwrap();
        assert_eq!(target.to_string(), "https://api.example.com:443", "{url}");
    }
    assert_eq!(code(&policy, "https://api.example.com../"), "INVALID_URL");
}

#[test]
fn ports_default_to_the_scheme_port() {
    let policy = policy(&["example.com"]);
    assert_eq!(policy.check_url("http://example.com").unwrap().port, 80);
    assert_eq!(policy.check_url("https://example.com").unwrap().port, 443);
    assert_eq!(policy.check_url("https://example.com:443/").unwrap().port, 443);
    assert_eq!(code(&policy, "https://example.com:80/"), "EGRESS_PORT_NOT_ALLOWED");
    let error = policy.check_url("https://example.com:8443/").unwrap_err();
    assert_eq!(error.to_string(), "port 8443 is not allowed for https; allowed ports: 443");
}

#[test]
fn explicit_port_ranges_replace_the_defaults() {
    let policy = EgressPolicy::new(["https", "ftp"], ["example.com"], ports(&[(443, 443), (8000, 8100)])).unwrap();
    assert!(policy.allows("https://example.com:8080/"));
    assert!(policy.allows("ftp://example.com:8000/"));
    assert_eq!(code(&policy, "ftp://example.com/"), "INVALID_URL");
    let error = policy.check_url("https://example.com:9000").unwrap_err();
    assert_eq!(error.to_string(), "port 9000 is not allowed for https; allowed ports: 443, 8000-8100");
    let closed = EgressPolicy::new(["https"], ["example.com"], Some(Vec::new())).unwrap();
    assert_eq!(code(&closed, "https://example.com/"), "EGRESS_PORT_NOT_ALLOWED");
}

#[test]
fn new_refuses_bad_rules() {
    let invalid = |result: Result<EgressPolicy, EgressError>| result.unwrap_err().code();
    assert_eq!(invalid(EgressPolicy::new(["ftp"], ["example.com"], None)), "INVALID_EGRESS_RULE");
    assert_eq!(invalid(EgressPolicy::new(["ht tp"], ["example.com"], None)), "INVALID_EGRESS_RULE");
    assert_eq!(invalid(EgressPolicy::new(["https"], ["a.*.com"], None)), "INVALID_EGRESS_RULE");
    assert_eq!(invalid(EgressPolicy::new(["https"], ["https://example.com"], None)), "INVALID_EGRESS_RULE");
    let message = EgressPolicy::new(["https"], ["bücher.de"], None).unwrap_err().to_string();
    assert!(message.contains("punycode"), "{message}");
    let policy = EgressPolicy::new(["HTTPS", "https"], Vec::<String>::new(), None).unwrap();
    assert_eq!(policy.schemes(), ["https"]);
    assert_eq!(policy.ports(), None);
}

#[test]
fn default_policy_allows_no_host() {
    let policy = EgressPolicy::default();
    assert_eq!(policy.schemes(), ["http", "https"]);
    assert_eq!(code(&policy, "https://example.com/"), "EGRESS_HOST_NOT_ALLOWED");
    assert_eq!(code(&policy, "ftp://example.com/"), "EGRESS_SCHEME_NOT_ALLOWED");
    let message = policy.check_url("gopher://x/").unwrap_err().to_string();
    assert_eq!(message, r#"scheme "gopher" is not allowed; allowed schemes: http, https"#);
}

#[test]
fn decisions_come_in_the_documented_order() {
    let policy = policy(&["example.com"]);
    // scheme before address, address before host, host before port.
    assert_eq!(code(&policy, "ftp://127.0.0.1:21/"), "EGRESS_SCHEME_NOT_ALLOWED");
    assert_eq!(code(&policy, "http://127.0.0.1:8080/"), "EGRESS_ADDRESS_DENIED");
    assert_eq!(code(&policy, "http://other.com:8080/"), "EGRESS_HOST_NOT_ALLOWED");
    assert_eq!(code(&policy, "http://example.com:8080/"), "EGRESS_PORT_NOT_ALLOWED");
}

#[test]
fn public_ip_literals_need_an_entry() {
    let policy = policy(&["1.1.1.1", "[2606:4700:4700::1111]"]);
    assert!(policy.allows("https://1.1.1.1/"));
    assert!(policy.allows("https://16843009/"), "the same address, written as one number");
    assert!(policy.allows("https://[2606:4700:4700:0::1111]/"));
    assert_eq!(code(&policy, "https://8.8.8.8/"), "EGRESS_HOST_NOT_ALLOWED");
}

#[test]
fn check_resolved_refuses_any_special_address() {
    let policy = policy(&["*.example.com"]);
    let public: IpAddr = "93.184.215.14".parse().unwrap();
    let private: IpAddr = "192.168.0.10".parse().unwrap();
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    assert_eq!(policy.check_resolved("www.example.com", &[public]), Ok(()));
    assert_eq!(policy.check_resolved("WWW.example.com.", &[public, "2606:2800::1".parse().unwrap()]), Ok(()));
    assert_eq!(
        policy.check_resolved("www.example.com", &[public, private, public]),
        Err(EgressError::AddressDenied { address: private, range: "private-use (192.168.0.0/16)" })
    );
    assert_eq!(policy.check_resolved("www.example.com", &[mapped]).unwrap_err().code(), "EGRESS_ADDRESS_DENIED");
    assert_eq!(policy.check_resolved("www.example.com", &[]).unwrap_err().code(), "EGRESS_NO_ADDRESSES");
    assert_eq!(policy.check_resolved("example.com", &[public]).unwrap_err().code(), "EGRESS_HOST_NOT_ALLOWED");
    assert_eq!(policy.check_resolved("www.exa mple.com", &[public]).unwrap_err().code(), "INVALID_URL");
    let everything = self::policy(&["*"]);
    assert_eq!(everything.check_resolved("[::1]", &[public]).unwrap_err().code(), "EGRESS_ADDRESS_DENIED");
    assert_eq!(everything.check_resolved("::1", &[public]).unwrap_err().code(), "EGRESS_ADDRESS_DENIED");
}

#[test]
fn display_round_trips() {
    for (url, shown) in [
        ("HTTPS://Example.com/x", "https://example.com:443"),
        ("http://[2606:4700::1111]:8080/", "http://[2606:4700::1111]:8080"),
        ("http://0x01.1/", "http://1.0.0.1:80"),
    ] {
        let target = EgressPolicy::parse_url(url).unwrap();
        assert_eq!(target.to_string(), shown);
        assert_eq!(EgressPolicy::parse_url(shown), Ok(target.clone()));
        assert_eq!(target.host.to_string().parse::<Host>(), Ok(target.host));
    }
    assert_eq!(EgressPolicy::parse_url("foo://example.com/").unwrap_err().code(), "INVALID_URL");
    assert_eq!(EgressPolicy::parse_url("foo://example.com:7/").unwrap().port, 7);
}

#[test]
fn default_ports() {
    assert_eq!(default_port("HTTP"), Some(80));
    assert_eq!(default_port("https"), Some(443));
    assert_eq!(default_port("ftp"), None);
}

// ---- properties -------------------------------------------------------------------------------

/// The denied IPv4 ranges, transcribed from the specification rather than from the code under test.
const DENIED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "100.100.100.200/32",
    "168.63.129.16/32",
];

fn cidr(text: &str) -> (u32, u32) {
    let (address, prefix) = text.split_once('/').unwrap();
    let address: Ipv4Addr = address.parse().unwrap();
    let prefix: u32 = prefix.parse().unwrap();
    let mask = if prefix == 0 { 0 } else { !0u32 << (32 - prefix) };
    (u32::from(address) & mask, mask)
}

fn reference_denied(ip: Ipv4Addr) -> bool {
    DENIED_V4.iter().map(|text| cidr(text)).any(|(network, mask)| u32::from(ip) & mask == network)
}

/// How to write an IPv4 address: how many parts, and each part's radix and zero padding.
#[derive(Debug, Clone)]
struct Notation {
    parts: usize,
    radix: [u8; 4],
    padding: [usize; 4],
    upper: bool,
    trailing_dot: bool,
}

fn notation() -> impl Strategy<Value = Notation> {
    (
        1..=4usize,
        [0..3u8, 0..3u8, 0..3u8, 0..3u8],
        [0..3usize, 0..3usize, 0..3usize, 0..3usize],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parts, radix, padding, upper, trailing_dot)| Notation {
            parts,
            radix,
            padding,
            upper,
            trailing_dot,
        })
}

/// Writes `ip` the way a browser would still read it: `127.1`, `0x7f.0.0.01`, `2130706433`, ...
fn render_v4(ip: Ipv4Addr, notation: &Notation) -> String {
    let octets = ip.octets();
    let split = notation.parts - 1;
    let mut values: Vec<u32> = octets[..split].iter().map(|&b| u32::from(b)).collect();
    values.push(octets[split..].iter().fold(0, |acc, &b| acc << 8 | u32::from(b)));
    let parts: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let zeros = "0".repeat(notation.padding[i]);
            match notation.radix[i] {
                0 => value.to_string(),
                1 => format!("0{zeros}{value:o}"),
                _ if notation.upper => format!("0X{zeros}{value:X}"),
                _ => format!("0x{zeros}{value:x}"),
            }
        })
        .collect();
    let dot = if notation.trailing_dot { "." } else { "" };
    format!("{}{dot}", parts.join("."))
}

/// An IPv6 form that carries `ip`, and the address it denotes.
fn embed(ip: Ipv4Addr, form: u8, notation: &Notation) -> (String, IpAddr) {
    let [a, b, c, d] = ip.octets();
    let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    match form {
        0 => (render_v4(ip, notation), IpAddr::V4(ip)),
        1 => (format!("[::ffff:{ip}]"), ip.to_ipv6_mapped().into()),
        2 => (format!("[::FFFF:{hi:x}:{lo:X}]"), ip.to_ipv6_mapped().into()),
        3 => (format!("[64:ff9b::{ip}]"), Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo).into()),
        _ => (format!("[2002:{hi:x}:{lo:x}::1]"), Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1).into()),
    }
}

fn denied_v4() -> impl Strategy<Value = Ipv4Addr> {
    (0..DENIED_V4.len(), any::<u32>()).prop_map(|(i, bits)| {
        let (network, mask) = cidr(DENIED_V4[i]);
        Ipv4Addr::from(network | (bits & !mask))
    })
}

fn public_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from).prop_filter("public", |ip| !reference_denied(*ip))
}

/// A label from a small alphabet, so that generated hosts and rules often overlap.
fn label() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "example", "com", "x-y", "_s", "0a", "xn--p1ai"]).prop_map(String::from)
}

#[derive(Debug, Clone)]
enum Rule {
    Everything,
    Exact(Vec<String>),
    Below(Vec<String>),
}

impl Rule {
    fn text(&self) -> String {
        match self {
            Self::Everything => "*".into(),
            Self::Exact(labels) => labels.join("."),
            Self::Below(labels) => format!("*.{}", labels.join(".")),
        }
    }

    /// The plain reading of the documented semantics, label by label.
    fn matches(&self, host: &[String]) -> bool {
        match self {
            Self::Everything => true,
            Self::Exact(labels) => host == labels.as_slice(),
            Self::Below(labels) => host.len() > labels.len() && host[host.len() - labels.len()..] == labels[..],
        }
    }
}

fn rule() -> impl Strategy<Value = Rule> {
    let labels = || prop::collection::vec(label(), 1..=3);
    prop_oneof![1 => Just(Rule::Everything), 5 => labels().prop_map(Rule::Exact), 5 => labels().prop_map(Rule::Below)]
}

/// Mostly well-formed URLs with a share of near misses, so both outcomes are common.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["http", "HTTPS", "ftp", "x+y"]);
    let userinfo = prop_oneof![5 => Just(""), 1 => Just("u@")];
    let host = prop_oneof![
        prop::collection::vec(label(), 1..=3).prop_map(|labels| labels.join(".")),
        (any::<u32>(), notation()).prop_map(|(bits, notation)| render_v4(Ipv4Addr::from(bits), &notation)),
        any::<u128>().prop_map(|bits| format!("[{}]", Ipv6Addr::from(bits))),
        "[a-zA-Z0-9.%_:\\[\\]-]{0,12}",
    ];
    let port = prop_oneof![Just(String::new()), (1..=65535u16).prop_map(|port| format!(":{port}")), ":[0-9]{0,6}"];
    let tail = "([/?#][a-zA-Z0-9%/?#@]{0,8})?";
    (scheme, userinfo, host, port, tail)
        .prop_map(|(scheme, userinfo, host, port, tail)| format!("{scheme}://{userinfo}{host}{port}{tail}"))
}

proptest! {
    #[test]
    fn denied_ipv4_is_denied_in_every_notation(
        ip in denied_v4(), notation in notation(), form in 0..5u8, star in any::<bool>(),
    ) {
        let (host, address) = embed(ip, form, &notation);
        prop_assert_eq!(EgressPolicy::parse_url(&format!("http://{host}/")).map(|t| t.host), Ok(Host::Ip(address)));
        let allowlist = if star { "*".to_owned() } else { host.clone() };
        let policy = EgressPolicy::new(["http"], [allowlist], None).unwrap();
        let decision = policy.check_url(&format!("http://{host}/x"));
        prop_assert_eq!(decision.map_err(|e| e.code()), Err("EGRESS_ADDRESS_DENIED"));
        prop_assert_eq!(policy.check_resolved("example.com", &[address]).map_err(|e| e.code()), Err(if star { "EGRESS_ADDRESS_DENIED" } else { "EGRESS_HOST_NOT_ALLOWED" }));
    }

    #[test]
    fn public_ipv4_round_trips_and_is_allowed(ip in public_v4(), notation in notation(), form in 0..5u8) {
        let (host, address) = embed(ip, form, &notation);
        let policy = EgressPolicy::new(["https"], ["*"], None).unwrap();
        let target = policy.check_url(&format!("https://{host}/")).unwrap();
        prop_assert_eq!(&target.host, &Host::Ip(address));
        prop_assert_eq!(EgressPolicy::parse_url(&target.to_string()), Ok(target.clone()));
        prop_assert_eq!(policy.check_resolved(&target.host.to_string(), &[address]), Ok(()));
    }

    #[test]
    fn ipv4_classification_agrees_with_the_reference(bits in any::<u32>()) {
        let ip = Ipv4Addr::from(bits);
        prop_assert_eq!(special_range(ip.into()).is_some(), reference_denied(ip));
        // An address that carries an IPv4 address is judged by it.
        prop_assert_eq!(special_range(ip.to_ipv6_mapped().into()).is_some(), reference_denied(ip));
    }

    #[test]
    fn host_allowlist_agrees_with_the_reference(
        rules in prop::collection::vec(rule(), 0..4),
        host in prop::collection::vec(label(), 1..=4),
        upper in prop::collection::vec(any::<bool>(), 64),
        trailing_dot in any::<bool>(),
    ) {
        let written: String = host.join(".").chars().zip(upper.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c }).collect();
        let dot = if trailing_dot { "." } else { "" };
        let policy = EgressPolicy::new(["https"], rules.iter().map(Rule::text), None).unwrap();
        let expected = rules.iter().any(|rule| rule.matches(&host));
        match policy.check_url(&format!("https://{written}{dot}/path")) {
            Ok(target) => {
                prop_assert!(expected);
                prop_assert_eq!(target.host, Host::Name(host.join(".")));
            }
            Err(error) => {
                prop_assert!(!expected);
                prop_assert_eq!(error.code(), "EGRESS_HOST_NOT_ALLOWED");
            }
        }
    }

    #[test]
    fn parsed_urls_display_as_urls_that_parse_to_themselves(
        url in url_like(),
    ) {
        if let Ok(target) = EgressPolicy::parse_url(&url) {
            let authority = url.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
            prop_assert!(!authority.contains('@'));
            prop_assert_eq!(EgressPolicy::parse_url(&target.to_string()), Ok(target));
        }
    }

    #[test]
    fn never_panics_on_any_text(url in any::<String>()) {
        let policy = EgressPolicy::new(["http", "https"], ["*"], None).unwrap();
        if let Ok(target) = policy.check_url(&url) {
            if let Host::Ip(address) = target.host {
                prop_assert_eq!(special_range(address), None);
            }
        }
    }
}
