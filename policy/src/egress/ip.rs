//! IP addresses: the browsers' IPv4 notations, and the special-purpose ranges egress never reaches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A prefix of an address family, as bits, with the name an error message shows.
struct Range<T> {
    network: T,
    mask: T,
    name: &'static str,
}

const fn v4(address: Ipv4Addr, prefix: u32, name: &'static str) -> Range<u32> {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Range { network: address.to_bits(), mask, name }
}

const fn v6(address: Ipv6Addr, prefix: u32, name: &'static str) -> Range<u128> {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    Range { network: address.to_bits(), mask, name }
}

/// Denied IPv4 ranges, most specific first so a message names the metadata service rather than
/// the block around it. Sources: the IANA IPv4 Special-Purpose Address Registry (every entry that is
/// not globally reachable, plus the documentation and 6to4-relay blocks) and the cloud metadata
/// endpoints reached without a name.
const V4_DENIED: [Range<u32>; 19] = [
    v4(Ipv4Addr::BROADCAST, 32, "limited broadcast (255.255.255.255)"),
    v4(Ipv4Addr::new(169, 254, 169, 254), 32, "cloud metadata service (169.254.169.254)"),
    v4(Ipv4Addr::new(100, 100, 100, 200), 32, "Alibaba Cloud metadata service (100.100.100.200)"),
    v4(Ipv4Addr::new(168, 63, 129, 16), 32, "Azure host endpoint, WireServer and metadata (168.63.129.16)"),
    v4(Ipv4Addr::new(0, 0, 0, 0), 8, "this network / unspecified (0.0.0.0/8)"),
    v4(Ipv4Addr::new(10, 0, 0, 0), 8, "private-use (10.0.0.0/8)"),
    v4(Ipv4Addr::new(100, 64, 0, 0), 10, "shared address space, carrier-grade NAT (100.64.0.0/10)"),
    v4(Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
    v4(Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"),
    v4(Ipv4Addr::new(172, 16, 0, 0), 12, "private-use (172.16.0.0/12)"),
    v4(Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"),
    v4(Ipv4Addr::new(192, 0, 2, 0), 24, "documentation, TEST-NET-1 (192.0.2.0/24)"),
    v4(Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99.0/24)"),
    v4(Ipv4Addr::new(192, 168, 0, 0), 16, "private-use (192.168.0.0/16)"),
    v4(Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"),
    v4(Ipv4Addr::new(198, 51, 100, 0), 24, "documentation, TEST-NET-2 (198.51.100.0/24)"),
    v4(Ipv4Addr::new(203, 0, 113, 0), 24, "documentation, TEST-NET-3 (203.0.113.0/24)"),
    v4(Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
    v4(Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"),
];

/// Denied IPv6 ranges that embed no IPv4 address, most specific first. Everything outside
/// `2000::/3` is denied anyway (see [`special_range`]); these entries only give it a precise name.
const V6_DENIED: [Range<u128>; 13] = [
    v6(Ipv6Addr::UNSPECIFIED, 128, "unspecified (::)"),
    v6(Ipv6Addr::LOCALHOST, 128, "loopback (::1)"),
    v6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), 128, "AWS metadata service (fd00:ec2::254)"),
    v6(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only (100::/64)"),
    v6(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use IPv4/IPv6 translation (64:ff9b:1::/48)"),
    v6(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo (2001::/32)"),
    v6(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignments (2001::/23)"),
    v6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation (2001:db8::/32)"),
    v6(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation (3fff::/20)"),
    v6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local (fc00::/7)"),
    v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local (fe80::/10)"),
    v6(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local, deprecated (fec0::/10)"),
    v6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast (ff00::/8)"),
];

const V4_MAPPED: Range<u128> = v6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped");
const V4_COMPATIBLE: Range<u128> = v6(Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible, deprecated (::/96)");
const NAT64: Range<u128> = v6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64");
const SIX_TO_FOUR: Range<u128> = v6(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4");
const GLOBAL_UNICAST: Range<u128> =
    v6(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3, "reserved, outside global unicast (2000::/3)");

impl<T: Copy + PartialEq + std::ops::BitAnd<Output = T>> Range<T> {
    fn contains(&self, bits: T) -> bool {
        bits & self.mask == self.network
    }
}

fn find<T: Copy + PartialEq + std::ops::BitAnd<Output = T>>(table: &[Range<T>], bits: T) -> Option<&'static str> {
    table.iter().find(|range| range.contains(bits)).map(|range| range.name)
}

/// The special-purpose range `ip` lies in, by name, or `None` for an ordinary public address.
///
/// Egress never reaches these addresses, whatever the host allowlist says: private, loopback,
/// link-local, CGNAT, documentation, benchmarking, multicast, reserved and broadcast blocks, and
/// the cloud metadata endpoints (`169.254.169.254`, `100.100.100.200`, `168.63.129.16`,
/// `fd00:ec2::254`).
///
/// IPv6 is denied outside global unicast `2000::/3`, and inside it for the blocks IANA marks as not
/// globally reachable (documentation, Teredo and the rest of `2001::/23`). Addresses that carry an
/// IPv4 address are judged by it, because that is where the packets go: IPv4-mapped
/// (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`) are denied
/// exactly when their IPv4 address is; the deprecated IPv4-compatible form (`::a.b.c.d`) always is.
///
/// ```
/// use sandguard_policy::egress::special_range;
/// use std::net::IpAddr;
///
/// let loopback: IpAddr = "::ffff:127.0.0.1".parse()?;
/// assert_eq!(special_range(loopback), Some("loopback (127.0.0.0/8)"));
/// let metadata: IpAddr = "169.254.169.254".parse()?;
/// assert_eq!(special_range(metadata), Some("cloud metadata service (169.254.169.254)"));
/// assert_eq!(special_range("93.184.215.14".parse()?), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => special_range_v4(ip),
        IpAddr::V6(ip) => special_range_v6(ip),
    }
}

fn special_range_v4(ip: Ipv4Addr) -> Option<&'static str> {
    find(&V4_DENIED, ip.to_bits())
}

fn special_range_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = ip.to_bits();
    if let Some(name) = find(&V6_DENIED, bits) {
        return Some(name);
    }
    let [_, _, a, b, c, d, ..] = ip.octets();
    let [.., w, x, y, z] = ip.octets();
    if V4_MAPPED.contains(bits) || NAT64.contains(bits) {
        return special_range_v4(Ipv4Addr::new(w, x, y, z));
    }
    if V4_COMPATIBLE.contains(bits) {
        return special_range_v4(Ipv4Addr::new(w, x, y, z)).or(Some(V4_COMPATIBLE.name));
    }
    if SIX_TO_FOUR.contains(bits) {
        return special_range_v4(Ipv4Addr::new(a, b, c, d));
    }
    if !GLOBAL_UNICAST.contains(bits) {
        return Some(GLOBAL_UNICAST.name);
    }
    None
}

/// Whether a host's last label is written as a number, which makes the whole host an IPv4 address
/// (or an error), as in the WHATWG URL standard's "ends in a number" rule.
///
/// Only the syntax counts: `09` and `99999999999` end in a number even though they are not valid
/// IPv4 numbers, so they are refused rather than looked up as names.
pub(super) fn ends_in_number(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex_digits = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
    match hex_digits {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Parses IPv4 in every notation browsers accept (WHATWG "IPv4 parser"): one to four parts, each
/// decimal, octal (leading `0`) or hexadecimal (`0x`), the last part filling the remaining bytes, so
/// `127.1`, `0x7f.0.0.1`, `0177.0.0.1` and `2130706433` are all `127.0.0.1`.
///
/// `None` when the text is not such an address. The caller strips one trailing dot first.
pub(super) fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u32; 4];
    let mut count = 0;
    for text in host.split('.') {
        *parts.get_mut(count)? = parse_ipv4_number(text)?;
        count += 1;
    }
    let (&last, leading) = parts.get(..count)?.split_last()?;
    let mut address: u32 = 0;
    for (i, &part) in leading.iter().enumerate() {
        let byte = u8::try_from(part).ok()?;
        address |= u32::from(byte) << (24 - 8 * i);
    }
    // The last part fills the bytes the leading parts left: 4 of them for `2130706433`, 1 for
    // `127.0.0.1`; anything wider overflows into the leading parts and is refused.
    let last_bits = 8 * (4 - leading.len());
    if last_bits < 32 && last >> last_bits != 0 {
        return None;
    }
    Some(Ipv4Addr::from_bits(address | last))
}

/// One part of an IPv4 address: decimal, octal with a leading `0`, or hexadecimal after `0x`
/// (where `0x` alone is 0). `None` when malformed or wider than 32 bits.
fn parse_ipv4_number(text: &str) -> Option<u32> {
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        (hex, 16)
    } else if text.len() > 1 && text.starts_with('0') {
        (text.get(1..)?, 8)
    } else if text.is_empty() {
        return None;
    } else {
        (text, 10)
    };
    let mut value: u32 = 0;
    for b in digits.bytes() {
        let digit = char::from(b).to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(digit)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_of(text: &str) -> Option<Ipv4Addr> {
        parse_ipv4(text)
    }

    #[test]
    fn parses_every_notation_of_loopback() {
        let loopback = Some(Ipv4Addr::LOCALHOST);
        for text in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0X7F000001",
            "017700000001",
            "127.1",
            "127.0.1",
            "0x7f.1",
            "0177.0.0.1",
            "0x7f.0.0.0x1",
            "0177.0x0.1",
            "0x0000007f.1",
        ] {
            assert_eq!(v4_of(text), loopback, "{text}");
        }
        // A leading zero means octal, so this is 0o127 = 87: a different address, not loopback.
        assert_eq!(v4_of("00000127.0.0.1"), Some(Ipv4Addr::new(87, 0, 0, 1)));
    }

    #[test]
    fn refuses_malformed_ipv4() {
        for text in [
            "",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1.2.65536",
            "1.16777216",
            "4294967296",
            "08",
            "0x1g",
            "1..2",
            ".1",
            "1.2.3.",
            "-1",
            "+1",
            "1.2.3.4x",
            "99999999999999999999",
        ] {
            assert_eq!(v4_of(text), None, "{text:?}");
        }
        assert_eq!(v4_of("4294967295"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(v4_of("1.2.65535"), Some(Ipv4Addr::new(1, 2, 255, 255)));
        assert_eq!(v4_of("0x.0x.0x.0x"), Some(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn ends_in_number_follows_whatwg() {
        for text in ["1", "a.1", "a.0x", "a.0XfF", "a.09", "x.99999999999999999999"] {
            assert!(ends_in_number(text), "{text}");
        }
        for text in ["a", "1.a", "a.0xg", "a.1x", "a.", "a.-1", "example.com"] {
            assert!(!ends_in_number(text), "{text}");
        }
    }

    fn range(text: &str) -> Option<&'static str> {
        special_range(text.parse().unwrap())
    }

    #[test]
    fn names_ipv4_ranges() {
        assert_eq!(range("127.0.0.1"), Some("loopback (127.0.0.0/8)"));
        assert_eq!(range("169.254.169.254"), Some("cloud metadata service (169.254.169.254)"));
        assert_eq!(range("169.254.0.1"), Some("link-local (169.254.0.0/16)"));
        assert_eq!(range("100.100.100.200"), Some("Alibaba Cloud metadata service (100.100.100.200)"));
        assert_eq!(range("100.100.100.201"), Some("shared address space, carrier-grade NAT (100.64.0.0/10)"));
        assert_eq!(range("168.63.129.16"), Some("Azure host endpoint, WireServer and metadata (168.63.129.16)"));
        assert_eq!(range("255.255.255.255"), Some("limited broadcast (255.255.255.255)"));
        assert_eq!(range("255.255.255.254"), Some("reserved (240.0.0.0/4)"));
        assert_eq!(range("0.0.0.0"), Some("this network / unspecified (0.0.0.0/8)"));
        for public in
            ["1.1.1.1", "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.0", "198.20.0.0", "223.255.255.255"]
        {
            assert_eq!(range(public), None, "{public}");
        }
    }

    #[test]
    fn names_ipv6_ranges() {
        assert_eq!(range("::"), Some("unspecified (::)"));
        assert_eq!(range("::1"), Some("loopback (::1)"));
        assert_eq!(range("fd00:ec2::254"), Some("AWS metadata service (fd00:ec2::254)"));
        assert_eq!(range("fd12::1"), Some("unique local (fc00::/7)"));
        assert_eq!(range("fe80::1"), Some("link-local (fe80::/10)"));
        assert_eq!(range("fec0::1"), Some("site-local, deprecated (fec0::/10)"));
        assert_eq!(range("ff02::1"), Some("multicast (ff00::/8)"));
        assert_eq!(range("2001:db8::1"), Some("documentation (2001:db8::/32)"));
        assert_eq!(range("100::1"), Some("discard-only (100::/64)"));
        assert_eq!(range("2001:0:4136:e378::1"), Some("Teredo (2001::/32)"));
        assert_eq!(range("2001:1::1"), Some("IETF protocol assignments (2001::/23)"));
        assert_eq!(range("64:ff9b:1::1"), Some("local-use IPv4/IPv6 translation (64:ff9b:1::/48)"));
        assert_eq!(range("4000::1"), Some("reserved, outside global unicast (2000::/3)"));
        assert_eq!(range("2606:4700:4700::1111"), None);
        assert_eq!(range("2001:200::1"), None, "2001:200::/23 is ordinary unicast, just past 2001::/23");
    }

    #[test]
    fn judges_embedded_ipv4_by_the_ipv4_address() {
        for (text, expected) in [
            ("::ffff:127.0.0.1", Some("loopback (127.0.0.0/8)")),
            ("::ffff:7f00:1", Some("loopback (127.0.0.0/8)")),
            ("::ffff:169.254.169.254", Some("cloud metadata service (169.254.169.254)")),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::10.0.0.1", Some("private-use (10.0.0.0/8)")),
            ("64:ff9b::8.8.8.8", None),
            ("2002:c0a8:0101::1", Some("private-use (192.168.0.0/16)")),
            ("2002:0808:0808::1", None),
            ("::127.0.0.1", Some("loopback (127.0.0.0/8)")),
            ("::8.8.8.8", Some("IPv4-compatible, deprecated (::/96)")),
            ("::ffff:0:8.8.8.8", Some("reserved, outside global unicast (2000::/3)")),
        ] {
            assert_eq!(range(text), expected, "{text}");
        }
    }
}
