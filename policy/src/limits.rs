//! Resource limits with human units (`30s`, `512MiB`).
//!
//! A policy sets the most a sandbox or a command may consume as [`ResourceLimits`]; a caller may ask
//! for less, never for more: [`ResourceLimits::check_within`] is how a per-command `--timeout 1h` is
//! refused when the policy says `30s`.
//!
//! Sizes and durations are written the way people write them, and parsed strictly, because a typo in
//! a limit must be an error rather than a silently different limit:
//!
//! - [`ByteSize`]: digits, then an optional unit: `B`, binary `KiB` `MiB` `GiB` `TiB` `PiB` `EiB`
//!   (powers of 1024), or SI `kB`/`KB` `MB` `GB` `TB` `PB` `EB` (powers of 1000). Units are
//!   case-sensitive, and a bare `K`, `k` or `M` is refused: whether it means 1000 or 1024 depends on who
//!   wrote it. No sign, no fraction (`1.5GiB` is written `1536MiB`), no spaces.
//! - [`HumanDuration`]: one or more `<digits><unit>` parts, largest unit first, each unit at most once,
//!   no spaces: `500ms`, `30s`, `5m`, `1h30m`. Units: `d` (86 400 s), `h`, `m` or `min`, `s`, `ms`,
//!   `us`, `ns`. A bare number is refused, even `0` (write `0s`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// A size could not be parsed. Code `INVALID_SIZE`.
    #[error("invalid size {input:?}: expected e.g. 512MiB, 64KiB, 1GB or a number of bytes")]
    Size {
        /// The refused text.
        input: String,
    },
    /// A size does not fit in 64 bits. Code `INVALID_SIZE`.
    #[error("invalid size {input:?}: the largest size is 18446744073709551615 bytes (16EiB - 1)")]
    SizeOverflow {
        /// The refused text.
        input: String,
    },
    /// A duration could not be parsed. Code `INVALID_DURATION`.
    #[error(
        "invalid duration {input:?}: expected e.g. 500ms, 30s, 5m, 1h30m: digits and a unit \
         (d, h, m, s, ms, us, ns), largest unit first, each unit once"
    )]
    Duration {
        /// The refused text.
        input: String,
    },
    /// A duration is longer than a [`Duration`] can hold. Code `INVALID_DURATION`.
    #[error("invalid duration {input:?}: the longest duration is 18446744073709551615s")]
    DurationOverflow {
        /// The refused text.
        input: String,
    },
    /// A resource limit has a value that cannot be enforced. Code `INVALID_LIMIT`.
    #[error("invalid {field} limit {value}: {allowed}")]
    Limit {
        /// The field of [`ResourceLimits`], e.g. `pids`.
        field: &'static str,
        /// The refused value, in human units.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A requested limit is larger than the policy allows. Code `LIMIT_EXCEEDS_POLICY`.
    #[error("requested {field} {requested} exceeds the policy's maximum of {maximum}")]
    ExceedsPolicy {
        /// The field of [`ResourceLimits`], e.g. `timeout`.
        field: &'static str,
        /// The requested value, in human units.
        requested: String,
        /// The policy's maximum, in human units.
        maximum: String,
    },
    /// A rate limit quota is malformed or out of range. Code `INVALID_QUOTA`.
    #[error(
        "invalid rate quota {quota:?}: {reason}; expected e.g. 20/s, 100/min, 1000/h or 5/10s, \
         optionally followed by ` burst N`"
    )]
    Quota {
        /// The refused quota, as written or as rendered from its fields.
        quota: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Lockout settings are out of range. Code `INVALID_LOCKOUT`.
    #[error("invalid lockout {field} {value}: {allowed}")]
    Lockout {
        /// The field of [`LockoutConfig`](crate::LockoutConfig), e.g. `max_failures`.
        field: &'static str,
        /// The refused value, in human units.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
}

impl LimitsError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Size { .. } | Self::SizeOverflow { .. } => "INVALID_SIZE",
            Self::Duration { .. } | Self::DurationOverflow { .. } => "INVALID_DURATION",
            Self::Limit { .. } => "INVALID_LIMIT",
            Self::ExceedsPolicy { .. } => "LIMIT_EXCEEDS_POLICY",
            Self::Quota { .. } => "INVALID_QUOTA",
            Self::Lockout { .. } => "INVALID_LOCKOUT",
        }
    }
}

/// The refused text as kept in an error: errors end up in logs and HTTP responses, so a megabyte of
/// attacker input is cut to a recognisable prefix.
pub(crate) fn excerpt(input: &str) -> String {
    const MAX_CHARS: usize = 64;
    match input.char_indices().nth(MAX_CHARS) {
        None => input.to_owned(),
        Some((cut, _)) => format!("{}...", &input[..cut]),
    }
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// A number of bytes, written in TOML and on the command line as `512MiB`, `1GB`, `4096`.
///
/// See the [module documentation](self) for the exact grammar. [`Display`](fmt::Display) writes the
/// largest binary unit that divides the size exactly, so printing then parsing gives the same size.
///
/// ```
/// use sandguard_policy::ByteSize;
///
/// let size: ByteSize = "512MiB".parse()?;
/// assert_eq!(size, ByteSize(512 * 1024 * 1024));
/// assert_eq!("1GB".parse::<ByteSize>()?, ByteSize(1_000_000_000));
/// assert_eq!(ByteSize(1536 * 1024).to_string(), "1536KiB");
/// assert_eq!("1.5GiB".parse::<ByteSize>().unwrap_err().code(), "INVALID_SIZE");
/// # Ok::<(), sandguard_policy::limits::LimitsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Binary units, largest first; [`Display`](fmt::Display) uses these.
    const BINARY_UNITS: [(&'static str, u64); 6] =
        [("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    /// SI units, accepted when parsing only.
    const SI_UNITS: [(&'static str, u64); 7] = [
        ("EB", 1_000_000_000_000_000_000),
        ("PB", 1_000_000_000_000_000),
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
        ("kB", 1_000),
    ];

    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    fn multiplier(unit: &str) -> Option<u64> {
        if unit.is_empty() || unit == "B" {
            return Some(1);
        }
        Self::BINARY_UNITS.iter().chain(&Self::SI_UNITS).find(|(name, _)| *name == unit).map(|&(_, m)| m)
    }
}

impl FromStr for ByteSize {
    type Err = LimitsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (digits, unit) = split_digits(s);
        let invalid = || LimitsError::Size { input: excerpt(s) };
        if digits.is_empty() {
            return Err(invalid());
        }
        let multiplier = Self::multiplier(unit).ok_or_else(invalid)?;
        let overflow = || LimitsError::SizeOverflow { input: excerpt(s) };
        // Only digits remain, so the one way `parse` can fail is overflow.
        let count: u64 = digits.parse().map_err(|_| overflow())?;
        count.checked_mul(multiplier).map(Self).ok_or_else(overflow)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exact = Self::BINARY_UNITS.iter().find(|&&(_, m)| self.0 != 0 && self.0 % m == 0);
        match exact {
            Some(&(unit, m)) => write!(f, "{}{unit}", self.0 / m),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        Self(bytes)
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> Self {
        size.0
    }
}

/// A duration, written `30s`, `500ms`, `5m`, `1h`, `1h30m`.
///
/// See the [module documentation](self) for the exact grammar. [`Display`](fmt::Display) writes every
/// non-zero unit from days down to nanoseconds (`1h30m`, `1s500ms`, `0s`), so printing then parsing
/// gives the same duration.
///
/// ```
/// use std::time::Duration;
/// use sandguard_policy::HumanDuration;
///
/// let d: HumanDuration = "1h30m".parse()?;
/// assert_eq!(d.0, Duration::from_secs(5400));
/// assert_eq!(HumanDuration(Duration::from_millis(90_500)).to_string(), "1m30s500ms");
/// assert_eq!("30".parse::<HumanDuration>().unwrap_err().code(), "INVALID_DURATION");
/// # Ok::<(), sandguard_policy::limits::LimitsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Units with their length in nanoseconds, largest first. `min` shares its rank with `m`, so
    /// `1m2min` is refused like `1m2m`.
    const UNITS: [(&'static str, u128, u8); 8] = [
        ("d", 86_400_000_000_000, 0),
        ("h", 3_600_000_000_000, 1),
        ("m", 60_000_000_000, 2),
        ("min", 60_000_000_000, 2),
        ("s", 1_000_000_000, 3),
        ("ms", 1_000_000, 4),
        ("us", 1_000, 5),
        ("ns", 1, 6),
    ];

    /// The duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = LimitsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || LimitsError::Duration { input: excerpt(s) };
        let overflow = || LimitsError::DurationOverflow { input: excerpt(s) };
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total: u128 = 0;
        let mut next_rank = 0u8;
        let mut rest = s;
        while !rest.is_empty() {
            let (digits, tail) = split_digits(rest);
            let unit_len = tail.bytes().position(|b| !b.is_ascii_alphabetic()).unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            if digits.is_empty() || unit.is_empty() {
                return Err(invalid());
            }
            let &(_, unit_nanos, rank) = Self::UNITS.iter().find(|(name, _, _)| *name == unit).ok_or_else(invalid)?;
            if rank < next_rank {
                return Err(invalid());
            }
            next_rank = rank.saturating_add(1);
            // Only digits remain, so the one way `parse` can fail is overflow.
            let count: u128 = digits.parse().map_err(|_| overflow())?;
            total = count.checked_mul(unit_nanos).and_then(|part| total.checked_add(part)).ok_or_else(overflow)?;
            rest = tail;
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
        // The remainder of a division by 10^9 always fits.
        let subsec = u32::try_from(total % 1_000_000_000).map_err(|_| overflow())?;
        Ok(Self(Duration::new(secs, subsec)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_nanos();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, unit_nanos, _) in Self::UNITS.iter().filter(|(name, _, _)| *name != "min") {
            let count = rest / unit_nanos;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                rest %= unit_nanos;
            }
        }
        Ok(())
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    /// Accepts a string in the [`ByteSize`] grammar or a non-negative integer number of bytes.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"512MiB\", \"1GB\" or a number of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(LimitsError::Size { input: v.to_string() }))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Serde support through a type's text form (`FromStr` and `Display`), as in policy files.
macro_rules! serde_as_text {
    ($type:ty, $expecting:literal) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$type, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}
pub(crate) use serde_as_text;

// A bare number is refused: its unit would be a guess.
serde_as_text!(HumanDuration, "a duration such as \"30s\", \"500ms\" or \"1h30m\"");

/// Limits on what one sandbox or one command may consume.
///
/// The default is a conservative sandbox: 30s per command, 512MiB of memory, 256 processes, one core,
/// 64MiB per file, 1GiB of disk, 1MiB of output and 1024 open files.
///
/// ```
/// use std::time::Duration;
/// use sandguard_policy::ResourceLimits;
///
/// let policy = ResourceLimits::default();
/// let asked = ResourceLimits { timeout: Duration::from_secs(3600), ..policy };
/// let err = asked.check_within(&policy).unwrap_err();
/// assert_eq!(err.code(), "LIMIT_EXCEEDS_POLICY");
/// assert_eq!(err.to_string(), "requested timeout 1h exceeds the policy's maximum of 30s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceLimits {
    /// Wall-clock time one command may run.
    pub timeout: Duration,
    /// Memory of the sandbox's cgroup, in bytes.
    pub memory: u64,
    /// Processes and threads in the sandbox.
    pub pids: u32,
    /// CPU bandwidth in cores (`1.5` = one and a half cores).
    pub cpus: f64,
    /// Largest file a process may write, in bytes (RLIMIT_FSIZE).
    pub file_size: u64,
    /// Size of the writable filesystems, in bytes.
    pub disk: u64,
    /// Bytes of stdout plus stderr kept per command; the rest is dropped and flagged truncated.
    pub output: u64,
    /// Open files per process (RLIMIT_NOFILE).
    pub open_files: u32,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory: 512 << 20,
            pids: 256,
            cpus: 1.0,
            file_size: 64 << 20,
            disk: 1 << 30,
            output: 1 << 20,
            open_files: 1024,
        }
    }
}

/// One field of [`ResourceLimits`], seen uniformly so that validation and comparison treat every
/// field the same way and name it the same way in errors.
enum Field {
    Time(Duration),
    Bytes(u64),
    Count(u64),
    Cores(f64),
}

impl Field {
    fn human(&self) -> String {
        match *self {
            Self::Time(d) => HumanDuration(d).to_string(),
            Self::Bytes(b) => ByteSize(b).to_string(),
            Self::Count(n) => n.to_string(),
            Self::Cores(c) => c.to_string(),
        }
    }

    fn is_zero(&self) -> bool {
        match *self {
            Self::Time(d) => d.is_zero(),
            Self::Bytes(n) | Self::Count(n) => n == 0,
            Self::Cores(c) => c == 0.0,
        }
    }

    /// `self <= max`; both sides are already validated, so no NaN reaches the comparison.
    fn within(&self, max: &Self) -> bool {
        match (self, max) {
            (Self::Time(a), Self::Time(b)) => a <= b,
            (Self::Bytes(a), Self::Bytes(b)) | (Self::Count(a), Self::Count(b)) => a <= b,
            (Self::Cores(a), Self::Cores(b)) => a <= b,
            _ => false,
        }
    }
}

impl ResourceLimits {
    fn fields(&self) -> [(&'static str, Field); 8] {
        [
            ("timeout", Field::Time(self.timeout)),
            ("memory", Field::Bytes(self.memory)),
            ("pids", Field::Count(self.pids.into())),
            ("cpus", Field::Cores(self.cpus)),
            ("file_size", Field::Bytes(self.file_size)),
            ("disk", Field::Bytes(self.disk)),
            ("output", Field::Bytes(self.output)),
            ("open_files", Field::Count(self.open_files.into())),
        ]
    }

    /// Checks that every limit can be enforced.
    ///
    /// `cpus` must be a finite number greater than zero. `timeout`, `memory`, `pids`, `disk` and
    /// `open_files` must be non-zero: the kernel reads zero as "unlimited" in some of them (a tmpfs
    /// `size=0`) and as "nothing can run" in others. `file_size` and `output` may be zero, meaning no
    /// file may be written and no output is kept.
    ///
    /// ```
    /// use sandguard_policy::ResourceLimits;
    ///
    /// assert!(ResourceLimits::default().validate().is_ok());
    /// let err = ResourceLimits { cpus: f64::NAN, ..Default::default() }.validate().unwrap_err();
    /// assert_eq!(err.code(), "INVALID_LIMIT");
    /// ```
    pub fn validate(&self) -> Result<(), LimitsError> {
        if !(self.cpus.is_finite() && self.cpus > 0.0) {
            return Err(LimitsError::Limit {
                field: "cpus",
                value: self.cpus.to_string(),
                allowed: "must be a finite number of cores greater than 0, e.g. 0.5 or 2",
            });
        }
        let may_be_zero = ["file_size", "output"];
        for (field, value) in self.fields() {
            if value.is_zero() && !may_be_zero.contains(&field) {
                return Err(LimitsError::Limit { field, value: value.human(), allowed: "must be greater than zero" });
            }
        }
        Ok(())
    }

    /// Checks that these (requested) limits are valid and that each is at most the policy's `max`.
    ///
    /// The error names the first offending field, in declaration order, with both values in human
    /// units. `max` is validated too, so a broken policy refuses everything rather than nothing.
    pub fn check_within(&self, max: &Self) -> Result<(), LimitsError> {
        self.validate()?;
        max.validate()?;
        for ((field, requested), (_, maximum)) in self.fields().into_iter().zip(max.fields()) {
            if !requested.within(&maximum) {
                return Err(LimitsError::ExceedsPolicy {
                    field,
                    requested: requested.human(),
                    maximum: maximum.human(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn size(s: &str) -> Result<u64, &'static str> {
        s.parse::<ByteSize>().map(|b| b.0).map_err(|e| e.code())
    }

    fn dur(s: &str) -> Result<Duration, &'static str> {
        s.parse::<HumanDuration>().map(|d| d.0).map_err(|e| e.code())
    }

    #[test]
    fn sizes_parse_in_every_unit() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("512B"), Ok(512));
        assert_eq!(size("64KiB"), Ok(64 * 1024));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("1TiB"), Ok(1 << 40));
        assert_eq!(size("15EiB"), Ok(15 << 60));
        assert_eq!(size("1KB"), Ok(1000));
        assert_eq!(size("1kB"), Ok(1000));
        assert_eq!(size("1MB"), Ok(1_000_000));
        assert_eq!(size("1GB"), Ok(1_000_000_000));
        assert_eq!(size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn sizes_refuse_sloppy_text() {
        for bad in [
            "", "B", "MiB", "-1", "+1", "1.5GiB", "1 MiB", " 1MiB", "1MiB ", "1k", "1K", "1M", "1mib", "1MIB", "1Kib",
            "1KiBB", "0x10", "1_000", "1e3", "１MiB", "1MiB\0",
        ] {
            assert_eq!(size(bad), Err("INVALID_SIZE"), "{bad:?}");
        }
    }

    #[test]
    fn sizes_refuse_overflow_with_their_own_message() {
        for big in ["18446744073709551616", "16EiB", "18446744073709551616B", "99999999999999999999999TiB"] {
            let err = big.parse::<ByteSize>().unwrap_err();
            assert!(matches!(err, LimitsError::SizeOverflow { .. }), "{big:?}: {err:?}");
            assert_eq!(err.code(), "INVALID_SIZE");
        }
    }

    #[test]
    fn size_display_uses_the_largest_exact_binary_unit() {
        assert_eq!(ByteSize(0).to_string(), "0B");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(1024).to_string(), "1KiB");
        assert_eq!(ByteSize(1536 << 10).to_string(), "1536KiB");
        assert_eq!(ByteSize(3 << 30).to_string(), "3GiB");
        assert_eq!(ByteSize(1 << 60).to_string(), "1EiB");
        assert_eq!(ByteSize(u64::MAX).to_string(), "18446744073709551615B");
    }

    #[test]
    fn durations_parse_single_and_compound() {
        assert_eq!(dur("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(dur("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(dur("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(dur("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(dur("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(dur("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(dur("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(dur("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(dur("1s1ms1us1ns"), Ok(Duration::new(1, 1_001_001)));
        assert_eq!(dur("0s"), Ok(Duration::ZERO));
        assert_eq!(dur("18446744073709551615s999ms999us999ns"), Ok(Duration::MAX));
    }

    #[test]
    fn durations_refuse_sloppy_text() {
        for bad in [
            "", "0", "30", "s", "-1s", "+1s", "1.5s", "1 s", "1h 30m", "30m1h", "1s1s", "1m2min", "1S", "1H", "1sec",
            "1w", "1y", "1µs", "h1", "1h30", "1hm", "P1D",
        ] {
            assert_eq!(dur(bad), Err("INVALID_DURATION"), "{bad:?}");
        }
    }

    #[test]
    fn durations_refuse_overflow_with_their_own_message() {
        for big in [
            "18446744073709551616s",
            "18446744073709551615s1000ms",
            "999999999999999999999999999999999999999999d",
            "213503982334602d",
        ] {
            let err = big.parse::<HumanDuration>().unwrap_err();
            assert!(matches!(err, LimitsError::DurationOverflow { .. }), "{big:?}: {err:?}");
        }
    }

    #[test]
    fn duration_display_writes_every_unit() {
        let show = |d: Duration| HumanDuration(d).to_string();
        assert_eq!(show(Duration::ZERO), "0s");
        assert_eq!(show(Duration::from_secs(30)), "30s");
        assert_eq!(show(Duration::from_secs(5400)), "1h30m");
        assert_eq!(show(Duration::from_secs(90_000)), "1d1h");
        assert_eq!(show(Duration::from_nanos(1_500)), "1us500ns");
    }

    #[test]
    fn errors_keep_only_an_excerpt_of_huge_input() {
        let huge = "9".repeat(10_000) + "x";
        let LimitsError::Size { input } = huge.parse::<ByteSize>().unwrap_err() else {
            panic!("expected a syntax error");
        };
        assert_eq!(input.len(), 64 + 3);
        assert!(input.ends_with("..."));
        // Cut on a character boundary, never inside one.
        assert_eq!(excerpt(&"é".repeat(100)).chars().count(), 64 + 3);
    }

    #[test]
    fn default_limits_are_the_documented_ones_and_valid() {
        let d = ResourceLimits::default();
        assert_eq!(HumanDuration(d.timeout).to_string(), "30s");
        assert_eq!(ByteSize(d.memory).to_string(), "512MiB");
        assert_eq!(ByteSize(d.file_size).to_string(), "64MiB");
        assert_eq!(ByteSize(d.disk).to_string(), "1GiB");
        assert_eq!(ByteSize(d.output).to_string(), "1MiB");
        assert_eq!((d.pids, d.cpus, d.open_files), (256, 1.0, 1024));
        assert_eq!(d.validate(), Ok(()));
    }

    #[test]
    fn validate_refuses_unenforceable_values() {
        let base = ResourceLimits::default();
        let cases = [
            ("timeout", ResourceLimits { timeout: Duration::ZERO, ..base }),
            ("memory", ResourceLimits { memory: 0, ..base }),
            ("pids", ResourceLimits { pids: 0, ..base }),
            ("cpus", ResourceLimits { cpus: 0.0, ..base }),
            ("cpus", ResourceLimits { cpus: -1.0, ..base }),
            ("cpus", ResourceLimits { cpus: f64::NAN, ..base }),
            ("cpus", ResourceLimits { cpus: f64::INFINITY, ..base }),
            ("disk", ResourceLimits { disk: 0, ..base }),
            ("open_files", ResourceLimits { open_files: 0, ..base }),
        ];
        for (name, limits) in cases {
            let err = limits.validate().unwrap_err();
            assert_eq!(err.code(), "INVALID_LIMIT");
            assert!(matches!(err, LimitsError::Limit { field, .. } if field == name), "{name}: {err}");
        }
        assert_eq!(ResourceLimits { file_size: 0, output: 0, ..base }.validate(), Ok(()));
    }

    #[test]
    fn check_within_names_the_field_and_both_values() {
        let policy = ResourceLimits::default();
        assert_eq!(policy.check_within(&policy), Ok(()));
        let smaller = ResourceLimits { timeout: Duration::from_secs(1), memory: 1 << 20, cpus: 0.5, ..policy };
        assert_eq!(smaller.check_within(&policy), Ok(()));

        let err = ResourceLimits { memory: 1 << 30, ..policy }.check_within(&policy).unwrap_err();
        assert_eq!(
            err,
            LimitsError::ExceedsPolicy { field: "memory", requested: "1GiB".into(), maximum: "512MiB".into() }
        );
        let err = ResourceLimits { cpus: 1.5, ..policy }.check_within(&policy).unwrap_err();
        assert_eq!(err.to_string(), "requested cpus 1.5 exceeds the policy's maximum of 1");
        let err = ResourceLimits { open_files: 1025, ..policy }.check_within(&policy).unwrap_err();
        assert_eq!(err.to_string(), "requested open_files 1025 exceeds the policy's maximum of 1024");
    }

    #[test]
    fn check_within_refuses_invalid_requests_and_invalid_policies() {
        let policy = ResourceLimits::default();
        let nan = ResourceLimits { cpus: f64::NAN, ..policy };
        assert_eq!(nan.check_within(&policy).unwrap_err().code(), "INVALID_LIMIT");
        assert_eq!(policy.check_within(&nan).unwrap_err().code(), "INVALID_LIMIT");
    }

    #[test]
    fn serde_reads_sizes_and_durations() {
        #[derive(serde::Deserialize)]
        struct Doc {
            memory: ByteSize,
            disk: ByteSize,
            timeout: HumanDuration,
        }
        let doc: Doc = toml::from_str("memory = \"512MiB\"\ndisk = 4096\ntimeout = \"1m30s\"").unwrap();
        assert_eq!((doc.memory.0, doc.disk.0, doc.timeout.0), (512 << 20, 4096, Duration::from_secs(90)));
        assert!(toml::from_str::<Doc>("memory = -1\ndisk = 1\ntimeout = \"1s\"").is_err());
        assert!(toml::from_str::<Doc>("memory = 1\ndisk = 1\ntimeout = 30").is_err());
        assert!(toml::from_str::<Doc>("memory = \"1M\"\ndisk = 1\ntimeout = \"1s\"").is_err());
    }

    /// A value and the unit its text is written in, for a parse oracle that does not share code
    /// with the parser.
    fn written_size() -> impl Strategy<Value = (String, Option<u64>)> {
        let units = prop::sample::select(vec![
            ("", 1u64),
            ("B", 1),
            ("KiB", 1024),
            ("MiB", 1 << 20),
            ("GiB", 1 << 30),
            ("TiB", 1 << 40),
            ("PiB", 1 << 50),
            ("EiB", 1 << 60),
            ("kB", 1000),
            ("KB", 1000),
            ("MB", 1_000_000),
            ("GB", 1_000_000_000),
            ("TB", 1_000_000_000_000),
            ("PB", 1_000_000_000_000_000),
            ("EB", 1_000_000_000_000_000_000),
        ]);
        (any::<u64>().prop_map(|n| n >> (n % 64)), units)
            .prop_map(|(n, (unit, m))| (format!("{n}{unit}"), n.checked_mul(m)))
    }

    proptest! {
        #[test]
        fn size_display_then_parse_is_identity(n: u64) {
            prop_assert_eq!(ByteSize(n).to_string().parse::<ByteSize>(), Ok(ByteSize(n)));
        }

        #[test]
        fn size_parse_matches_arithmetic((text, expected) in written_size()) {
            prop_assert_eq!(text.parse::<ByteSize>().ok().map(|b| b.0), expected);
        }

        #[test]
        fn size_parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<ByteSize>();
        }

        #[test]
        fn duration_display_then_parse_is_identity(secs: u64, nanos in 0u32..1_000_000_000) {
            let d = HumanDuration(Duration::new(secs, nanos));
            prop_assert_eq!(d.to_string().parse::<HumanDuration>(), Ok(d));
        }

        #[test]
        fn duration_parse_matches_arithmetic(h in 0u64..10_000, m in 0u64..10_000, s in 0u64..10_000) {
            let text = format!("{h}h{m}m{s}s");
            prop_assert_eq!(dur(&text), Ok(Duration::from_secs(h * 3600 + m * 60 + s)));
        }

        #[test]
        fn duration_parse_never_panics(s in "[0-9a-z]{0,24}") {
            let _ = s.parse::<HumanDuration>();
        }

        #[test]
        fn check_within_agrees_with_fieldwise_comparison(
            t in 1u64..100, m in 1u64..100, p in 1u32..100, c in 1u32..100, o in 0u64..100,
        ) {
            let policy = ResourceLimits {
                timeout: Duration::from_secs(50), memory: 50, pids: 50, cpus: 50.0,
                file_size: 50, disk: 50, output: 50, open_files: 50,
            };
            let asked = ResourceLimits {
                timeout: Duration::from_secs(t), memory: m, pids: p, cpus: f64::from(c),
                output: o, ..policy
            };
            let fits = t <= 50 && m <= 50 && p <= 50 && c <= 50 && o <= 50;
            prop_assert_eq!(asked.check_within(&policy).is_ok(), fits);
        }
    }
}
