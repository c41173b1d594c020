//! Port allowlists with strict parsing.
//!
//! A port is written one way only: ASCII decimal, 1 to 65535, no sign, space, leading zero or
//! other base. Lenient parsers disagree on `080` (octal to some), `0x50` or ` 80`, and a policy
//! check is only as good as the agreement between the parser that checks and the one that binds.
//!
//! A [`PortPolicy`] allows ranges of ports except some reserved ones (the control plane). It is
//! compiled once: ranges sorted and merged, so a decision is a binary search.
//!
//! ```
//! use sandguard_policy::PortPolicy;
//!
//! let policy = PortPolicy::default();
//! assert_eq!(policy.check_str("8080"), Ok(8080));
//! assert_eq!(policy.check_str("3000").unwrap_err().code(), "RESERVED_PORT");
//! assert_eq!(policy.check_str("80").unwrap_err().code(), "PORT_NOT_ALLOWED");
//! assert_eq!(policy.check_str("080").unwrap_err().code(), "INVALID_PORT");
//! ```

use std::fmt;
use std::str::FromStr;

/// Why a port was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// Not a plain decimal port number. Code `INVALID_PORT`.
    #[error(
        "invalid port {input:?}: expected a decimal number from 1 to 65535, \
         without sign, spaces or leading zeros"
    )]
    Syntax {
        /// The refused text, cut to its first 32 characters.
        input: String,
    },
    /// A decimal number that is 0 or above 65535. Code `PORT_OUT_OF_RANGE`.
    #[error("port {input} is out of range: ports are 1 to 65535")]
    OutOfRange {
        /// The refused number, cut to its first 32 digits.
        input: String,
    },
    /// A port the policy keeps for itself, such as the control plane's. Code `RESERVED_PORT`.
    #[error("port {port} is reserved by the policy and cannot be used")]
    Reserved {
        /// The refused port.
        port: u16,
    },
    /// A port outside every allowed range. Code `PORT_NOT_ALLOWED`.
    #[error("port {port} is not allowed; allowed ports: {}", RangeList(.allowed))]
    NotAllowed {
        /// The refused port.
        port: u16,
        /// The policy's allowed ranges, sorted and merged.
        allowed: Vec<PortRange>,
    },
    /// Not a valid `PORT` or `START-END` range. Code `INVALID_PORT_RANGE`.
    #[error("invalid port range {input:?}: {problem}")]
    Range {
        /// The refused text, cut to its first 32 characters.
        input: String,
        /// What is wrong with it.
        problem: RangeProblem,
    },
}

impl PortError {
    /// The stable code of this error.
    ///
    /// ```
    /// use sandguard_policy::port::parse_port;
    ///
    /// assert_eq!(parse_port("70000").unwrap_err().code(), "PORT_OUT_OF_RANGE");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "INVALID_PORT",
            Self::OutOfRange { .. } => "PORT_OUT_OF_RANGE",
            Self::Reserved { .. } => "RESERVED_PORT",
            Self::NotAllowed { .. } => "PORT_NOT_ALLOWED",
            Self::Range { .. } => "INVALID_PORT_RANGE",
        }
    }
}

/// What is wrong with a refused port range, for [`PortError::Range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RangeProblem {
    /// Not of the form `PORT` or `START-END` with plain decimal ports.
    Syntax,
    /// A bound is 0 or above 65535.
    OutOfRange,
    /// The start is above the end.
    Reversed,
}

impl fmt::Display for RangeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "expected PORT or START-END, with decimal ports without sign, spaces or leading zeros",
            Self::OutOfRange => "ports are 1 to 65535",
            Self::Reversed => "the start is above the end",
        })
    }
}

/// Refused text is echoed in messages; a bound keeps a hostile megabyte out of logs.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 32;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// An inclusive range of ports, written `8080` or `9000-9010`.
///
/// ```
/// use sandguard_policy::PortRange;
///
/// let range: PortRange = "9000-9010".parse()?;
/// assert_eq!((range.start(), range.end()), (9000, 9010));
/// assert!(range.contains(9005));
/// assert_eq!(range.to_string(), "9000-9010");
/// assert_eq!("8080".parse::<PortRange>()?.to_string(), "8080");
/// assert_eq!("9010-9000".parse::<PortRange>().unwrap_err().code(), "INVALID_PORT_RANGE");
/// # Ok::<(), sandguard_policy::port::PortError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// The range `start..=end`; `start` must be at least 1 and not above `end`.
    pub fn new(start: u16, end: u16) -> Result<Self, PortError> {
        let problem = if start == 0 {
            RangeProblem::OutOfRange
        } else if start > end {
            RangeProblem::Reversed
        } else {
            return Ok(Self { start, end });
        };
        Err(PortError::Range { input: format!("{start}-{end}"), problem })
    }

    /// The range holding `port` alone, which must be at least 1.
    pub fn single(port: u16) -> Result<Self, PortError> {
        Self::new(port, port)
    }

    /// First port of the range.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// Last port of the range.
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end { write!(f, "{}", self.start) } else { write!(f, "{}-{}", self.start, self.end) }
    }
}

impl FromStr for PortRange {
    type Err = PortError;

    /// Parses `PORT` or `START-END`, each bound as strictly as [`parse_port`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |problem| PortError::Range { input: excerpt(s), problem };
        let bound = |text| {
            parse_digits(text).map_err(|bad| {
                refuse(match bad {
                    BadPort::Syntax => RangeProblem::Syntax,
                    BadPort::OutOfRange => RangeProblem::OutOfRange,
                })
            })
        };
        let (start, end) = match s.split_once('-') {
            Some((start, end)) => (bound(start)?, bound(end)?),
            None => {
                let port = bound(s)?;
                (port, port)
            }
        };
        if start > end {
            return Err(refuse(RangeProblem::Reversed));
        }
        Ok(Self { start, end })
    }
}

/// Parses a port strictly: ASCII digits only, 1 to 65535, no sign, no spaces, no leading zero.
///
/// `0` and numbers above 65535, however long, are `PORT_OUT_OF_RANGE`; anything else that is not
/// a port is `INVALID_PORT`.
///
/// ```
/// use sandguard_policy::port::parse_port;
///
/// assert_eq!(parse_port("443"), Ok(443));
/// for bad in ["", "+80", " 80", "80 ", "080", "80.0", "0x50", "1e2", "８０"] {
///     assert_eq!(parse_port(bad).unwrap_err().code(), "INVALID_PORT", "{bad:?}");
/// }
/// assert_eq!(parse_port("0").unwrap_err().code(), "PORT_OUT_OF_RANGE");
/// assert_eq!(parse_port("65536").unwrap_err().code(), "PORT_OUT_OF_RANGE");
/// ```
pub fn parse_port(text: &str) -> Result<u16, PortError> {
    parse_digits(text).map_err(|bad| match bad {
        BadPort::Syntax => PortError::Syntax { input: excerpt(text) },
        BadPort::OutOfRange => PortError::OutOfRange { input: excerpt(text) },
    })
}

/// Why [`parse_digits`] refused, before any message is built.
enum BadPort {
    Syntax,
    OutOfRange,
}

fn parse_digits(text: &str) -> Result<u16, BadPort> {
    let digits = text.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(BadPort::Syntax);
    }
    match digits {
        [b'0'] => return Err(BadPort::OutOfRange),
        [b'0', ..] => return Err(BadPort::Syntax),
        // Without a leading zero, six digits or more are at least 100000: no need to add them up.
        _ if digits.len() > 5 => return Err(BadPort::OutOfRange),
        _ => {}
    }
    let value = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| BadPort::OutOfRange)
}

/// Which ports a sandbox may expose: allowed ranges, minus reserved ports.
///
/// ```
/// use sandguard_policy::{PortPolicy, PortRange};
///
/// let policy = PortPolicy::new(
///     vec![PortRange::new(8000, 8099)?, PortRange::new(8100, 8199)?, "9000".parse()?],
///     vec![8080],
/// );
/// assert_eq!(policy.allowed_ranges(), [PortRange::new(8000, 8199)?, PortRange::single(9000)?]);
/// assert_eq!(policy.check(8150), Ok(8150));
/// assert_eq!(policy.check(8080).unwrap_err().code(), "RESERVED_PORT");
///
/// let refused = policy.check(22).unwrap_err();
/// assert_eq!(refused.to_string(), "port 22 is not allowed; allowed ports: 8000-8199, 9000");
/// # Ok::<(), sandguard_policy::port::PortError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPolicy {
    /// Sorted, disjoint and never adjacent, so one binary search finds the only candidate.
    allow: Vec<PortRange>,
    /// Sorted and deduplicated.
    reserved: Vec<u16>,
}

impl Default for PortPolicy {
    /// 1024 to 65535, except 3000 (the control plane).
    fn default() -> Self {
        Self { allow: vec![PortRange { start: 1024, end: u16::MAX }], reserved: vec![3000] }
    }
}

impl PortPolicy {
    /// A policy allowing `allow` except `reserved`.
    ///
    /// Ranges may come in any order, overlap or touch; they are merged here.
    pub fn new(mut allow: Vec<PortRange>, mut reserved: Vec<u16>) -> Self {
        allow.sort_unstable();
        let mut merged: Vec<PortRange> = Vec::with_capacity(allow.len());
        for range in allow {
            match merged.last_mut() {
                // `u32` so that a range ending at 65535 has a successor to compare with.
                Some(last) if u32::from(range.start) <= u32::from(last.end) + 1 => {
                    last.end = last.end.max(range.end);
                }
                _ => merged.push(range),
            }
        }
        reserved.sort_unstable();
        reserved.dedup();
        Self { allow: merged, reserved }
    }

    /// The allowed ranges: sorted, disjoint and merged.
    pub fn allowed_ranges(&self) -> &[PortRange] {
        &self.allow
    }

    /// The reserved ports, sorted.
    pub fn reserved(&self) -> &[u16] {
        &self.reserved
    }

    /// Decides on a port number.
    ///
    /// Port 0 is `PORT_OUT_OF_RANGE`; a reserved port is `RESERVED_PORT` even outside the
    /// allowed ranges, so the reason given is the most specific one.
    pub fn check(&self, port: u16) -> Result<u16, PortError> {
        if port == 0 {
            return Err(PortError::OutOfRange { input: "0".to_owned() });
        }
        if self.reserved.binary_search(&port).is_ok() {
            return Err(PortError::Reserved { port });
        }
        // The first range not wholly below `port` is the only one that can hold it.
        let candidate = self.allow.partition_point(|range| range.end < port);
        match self.allow.get(candidate) {
            Some(range) if range.start <= port => Ok(port),
            _ => Err(PortError::NotAllowed { port, allowed: self.allow.clone() }),
        }
    }

    /// Parses `text` strictly with [`parse_port`], then decides.
    pub fn check_str(&self, text: &str) -> Result<u16, PortError> {
        self.check(parse_port(text)?)
    }
}

/// Lists ranges for a message, compactly: `1024-2999, 3001-65535`, eliding past a few.
struct RangeList<'a>(&'a [PortRange]);

impl fmt::Display for RangeList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, range) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{range}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, " and {} more ranges", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(result: Result<impl Sized, PortError>) -> &'static str {
        result.map_or_else(|e| e.code(), |_| "OK")
    }

    fn range(start: u16, end: u16) -> PortRange {
        PortRange::new(start, end).unwrap()
    }

    #[test]
    fn parse_port_accepts_plain_decimal() {
        assert_eq!(parse_port("1"), Ok(1));
        assert_eq!(parse_port("80"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
    }

    #[test]
    fn parse_port_refuses_every_other_spelling() {
        let syntax = [
            "",
            "+80",
            "-80",
            " 80",
            "80 ",
            "8 0",
            "\t80",
            "80\n",
            "80.0",
            "0x50",
            "0o120",
            "1e2",
            "８０",
            "٨٠",
            "080",
            "00",
            "0080",
            "00000000000000000080",
            "80a",
            "a",
            "8_0",
            "1,000",
        ];
        for input in syntax {
            assert_eq!(code(parse_port(input)), "INVALID_PORT", "{input:?}");
        }
        for input in ["0", "65536", "99999", "100000", "18446744073709551616", &"9".repeat(10_000)] {
            assert_eq!(code(parse_port(input)), "PORT_OUT_OF_RANGE", "{input:?}");
        }
    }

    #[test]
    fn messages_quote_input_and_stay_short() {
        let message = parse_port("8\n0").unwrap_err().to_string();
        assert!(message.starts_with(r#"invalid port "8\n0""#), "{message}");
        let message = parse_port(&"9".repeat(1_000_000)).unwrap_err().to_string();
        assert!(message.len() < 100, "{message}");
        let message = parse_port(&"é".repeat(1_000)).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn port_range_parses_strictly() {
        assert_eq!("8080".parse(), Ok(range(8080, 8080)));
        assert_eq!("9000-9010".parse(), Ok(range(9000, 9010)));
        assert_eq!("1-65535".parse(), Ok(range(1, 65535)));
        assert_eq!("7-7".parse(), Ok(range(7, 7)));
        let problem = |input: &str| match input.parse::<PortRange>() {
            Err(PortError::Range { problem, .. }) => Some(problem),
            _ => None,
        };
        for input in [
            "",
            "-",
            "9000-",
            "-9010",
            "9000--9010",
            "9000-9010-9020",
            " 9000-9010",
            "9000 - 9010",
            "090-100",
            "+1-2",
            "a-b",
        ] {
            assert_eq!(problem(input), Some(RangeProblem::Syntax), "{input:?}");
        }
        for input in ["0", "0-10", "1-65536", "70000"] {
            assert_eq!(problem(input), Some(RangeProblem::OutOfRange), "{input:?}");
        }
        assert_eq!(problem("9010-9000"), Some(RangeProblem::Reversed));
    }

    #[test]
    fn port_range_new_checks_bounds() {
        assert_eq!(code(PortRange::new(0, 10)), "INVALID_PORT_RANGE");
        assert_eq!(code(PortRange::new(10, 9)), "INVALID_PORT_RANGE");
        assert_eq!(code(PortRange::single(0)), "INVALID_PORT_RANGE");
        assert_eq!(range(1, 1).to_string(), "1");
        assert_eq!(range(1, 2).to_string(), "1-2");
    }

    #[test]
    fn default_policy() {
        let policy = PortPolicy::default();
        assert_eq!(policy.allowed_ranges(), [range(1024, 65535)]);
        assert_eq!(policy.reserved(), [3000]);
        assert_eq!(policy.check(1024), Ok(1024));
        assert_eq!(policy.check(65535), Ok(65535));
        assert_eq!(policy.check(3000), Err(PortError::Reserved { port: 3000 }));
        assert_eq!(policy.check(1023), Err(PortError::NotAllowed { port: 1023, allowed: vec![range(1024, 65535)] }));
        assert_eq!(code(policy.check(0)), "PORT_OUT_OF_RANGE");
        assert_eq!(code(policy.check_str("03000")), "INVALID_PORT");
        assert_eq!(policy, PortPolicy::new(vec![range(1024, 65535)], vec![3000, 3000]));
    }

    #[test]
    fn new_merges_overlapping_and_adjacent_ranges() {
        let policy = PortPolicy::new(
            vec![
                range(20, 30),
                range(1, 5),
                range(6, 10),
                range(25, 40),
                range(50, 50),
                range(65535, 65535),
                range(60000, 65534),
            ],
            vec![9, 3, 3],
        );
        assert_eq!(policy.allowed_ranges(), [range(1, 10), range(20, 40), range(50, 50), range(60000, 65535)]);
        assert_eq!(policy.reserved(), [3, 9]);
        let empty = PortPolicy::new(Vec::new(), Vec::new());
        let message = empty.check(80).unwrap_err().to_string();
        assert_eq!(message, "port 80 is not allowed; allowed ports: none");
    }

    #[test]
    fn not_allowed_message_lists_a_few_ranges() {
        let many: Vec<_> = (1..=20).map(|i| range(i * 10, i * 10)).collect();
        let message = PortPolicy::new(many, Vec::new()).check(5).unwrap_err().to_string();
        assert!(message.ends_with("allowed ports: 10, 20, 30, 40, 50, 60, 70, 80 and 12 more ranges"), "{message}");
    }

    /// The policy as stated: no sorting, no merging, no search.
    fn reference_check(ranges: &[PortRange], reserved: &[u16], port: u16) -> &'static str {
        if port == 0 {
            "PORT_OUT_OF_RANGE"
        } else if reserved.contains(&port) {
            "RESERVED_PORT"
        } else if ranges.iter().any(|r| r.start() <= port && port <= r.end()) {
            "OK"
        } else {
            "PORT_NOT_ALLOWED"
        }
    }

    fn ranges_near(max: u16) -> impl Strategy<Value = Vec<PortRange>> {
        prop::collection::vec((1..=max, 0..=max / 4), 0..8)
            .prop_map(|bounds| bounds.into_iter().map(|(start, len)| range(start, start.saturating_add(len))).collect())
    }

    /// Each case of `check_matches_linear_reference` tries all 65536 ports; fewer cases suffice.
    fn exhaustive_config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
        ProptestConfig { cases, ..ProptestConfig::default() }
    }

    proptest! {
        #![proptest_config(exhaustive_config())]

        #[test]
        fn check_matches_linear_reference(
            ranges in prop_oneof![ranges_near(64), ranges_near(u16::MAX)],
            reserved in prop::collection::vec(any::<u16>(), 0..4),
            near_reserved in prop::collection::vec(0..=64u16, 0..4),
        ) {
            let reserved: Vec<u16> = reserved.into_iter().chain(near_reserved).collect();
            let policy = PortPolicy::new(ranges.clone(), reserved.clone());
            let merged = policy.allowed_ranges();
            prop_assert!(merged.windows(2).all(|w| u32::from(w[0].end()) + 1 < u32::from(w[1].start())));
            for port in 0..=u16::MAX {
                prop_assert_eq!(code(policy.check(port)), reference_check(&ranges, &reserved, port), "port {}", port);
            }
        }

    }

    proptest! {
        #[test]
        fn parse_port_accepts_exactly_canonical_decimals(text in prop_oneof![
            any::<String>(),
            "[0-9]{1,7}",
            "[+-]?0*[0-9]{1,6}",
            "[ \t]?[0-9]{1,5}[ \t]?",
        ]) {
            let reference = match text.parse::<u16>() {
                Ok(port) if port != 0 && port.to_string() == text => Some(port),
                _ => None,
            };
            prop_assert_eq!(parse_port(&text).ok(), reference);
        }

        #[test]
        fn port_range_display_round_trips(start in 1..=u16::MAX, len in any::<u16>()) {
            let r = range(start, start.saturating_add(len));
            prop_assert_eq!(r.to_string().parse::<PortRange>(), Ok(r));
        }
    }
}
