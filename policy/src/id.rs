//! Sandbox IDs: DNS labels, safe to place unescaped in hostnames, URLs, paths and log lines.
//!
//! A [`SandboxId`] that exists is valid: its only constructors run the rules below, so code that
//! receives one never checks it again. The rules are those of a DNS label (RFC 1123), tightened:
//!
//! - 1 to 63 bytes of `[a-z0-9-]`. Uppercase is refused rather than folded, so that one sandbox
//!   never has two spellings that compare unequal in a map but equal in a hostname; the error
//!   suggests the lowercase form.
//! - No `-` first or last, and no `--` at positions 3 and 4, which IDNA reserves (`xn--`).
//! - Not a reserved name: [`BUILTIN_RESERVED`] plus a policy's own ([`IdRules`]).
//!
//! ```
//! use sandguard_policy::SandboxId;
//!
//! let id = SandboxId::parse("build-42")?;
//! assert_eq!(id.as_str(), "build-42");
//!
//! let refused = SandboxId::parse("x;rm -rf /").unwrap_err();
//! assert_eq!(refused.code(), "INVALID_SANDBOX_ID_CHARS");
//! # Ok::<(), sandguard_policy::id::IdError>(())
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

/// Names no sandbox may take, whatever the policy says. Sorted, so lookups are a binary search.
pub const BUILTIN_RESERVED: &[&str] =
    &["admin", "api", "default", "internal", "localhost", "metadata", "root", "system", "www"];

/// Why a sandbox ID was refused. Every variant has a stable [`code`](IdError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty, or longer than 63 bytes. Code `INVALID_SANDBOX_ID_LENGTH`.
    #[error("sandbox ID must be 1 to 63 bytes long, got {len}")]
    Length {
        /// Length in bytes of the refused input.
        len: usize,
    },
    /// A character outside `[a-z0-9-]` that is not an uppercase ASCII letter.
    /// Code `INVALID_SANDBOX_ID_CHARS`.
    #[error(
        "sandbox ID contains {ch:?} (U+{code_point:04X}) at byte {offset}; \
         only lowercase ASCII letters, digits and '-' are allowed",
        code_point = u32::from(*.ch)
    )]
    Chars {
        /// The first refused character (shown escaped in the message).
        ch: char,
        /// Its byte offset in the input.
        offset: usize,
    },
    /// Uppercase ASCII letters, and no other refused character. Code `INVALID_SANDBOX_ID_CASE`.
    #[error("sandbox ID must be lowercase, found {ch:?} at byte {offset}{}", Suggestion(.suggestion))]
    Case {
        /// The first uppercase letter.
        ch: char,
        /// Its byte offset in the input.
        offset: usize,
        /// The input in lowercase, when that would be accepted as it is.
        suggestion: Option<String>,
    },
    /// A `-` where a DNS label may not have one. Code `INVALID_SANDBOX_ID_HYPHENS`.
    #[error("sandbox ID must not {rule}; '-' is allowed only inside the ID")]
    Hyphens {
        /// Which placement was refused.
        rule: HyphenRule,
    },
    /// A reserved name. Code `RESERVED_SANDBOX_ID`.
    #[error("sandbox ID {name:?} is reserved; choose another name")]
    Reserved {
        /// The refused name.
        name: String,
    },
    /// A prefix for [`SandboxId::generate`] too long to leave room for the random part.
    /// Code `INVALID_SANDBOX_ID_PREFIX`.
    #[error("sandbox ID prefix is {len} bytes long; at most {max} bytes fit beside the random part")]
    Prefix {
        /// Length in bytes of the refused prefix.
        len: usize,
        /// The longest prefix allowed, [`SandboxId::MAX_PREFIX_LEN`].
        max: usize,
    },
    /// The operating system could not supply randomness. Code `SANDBOX_ID_RANDOMNESS_UNAVAILABLE`.
    #[error("cannot generate a sandbox ID: OS randomness is unavailable ({reason})")]
    Randomness {
        /// The operating system's explanation.
        reason: String,
    },
}

impl IdError {
    /// The stable code of this error.
    ///
    /// ```
    /// use sandguard_policy::SandboxId;
    ///
    /// assert_eq!(SandboxId::parse("Web").unwrap_err().code(), "INVALID_SANDBOX_ID_CASE");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::Length { .. } => "INVALID_SANDBOX_ID_LENGTH",
            Self::Chars { .. } => "INVALID_SANDBOX_ID_CHARS",
            Self::Case { .. } => "INVALID_SANDBOX_ID_CASE",
            Self::Hyphens { .. } => "INVALID_SANDBOX_ID_HYPHENS",
            Self::Reserved { .. } => "RESERVED_SANDBOX_ID",
            Self::Prefix { .. } => "INVALID_SANDBOX_ID_PREFIX",
            Self::Randomness { .. } => "SANDBOX_ID_RANDOMNESS_UNAVAILABLE",
        }
    }
}

/// Where a refused `-` was, for [`IdError::Hyphens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HyphenRule {
    /// The ID starts with `-`.
    Leading,
    /// The ID ends with `-`.
    Trailing,
    /// The ID has `--` at positions 3 and 4, reserved for IDNA labels such as `xn--`.
    IdnaReserved,
}

impl fmt::Display for HyphenRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Leading => "start with '-'",
            Self::Trailing => "end with '-'",
            Self::IdnaReserved => "have '--' at positions 3 and 4 (reserved for IDNA, as in 'xn--')",
        })
    }
}

/// Renders the optional lowercase hint of [`IdError::Case`].
struct Suggestion<'a>(&'a Option<String>);

impl fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(lower) => write!(f, "; use {lower:?}"),
            None => Ok(()),
        }
    }
}

/// A valid sandbox ID. One that exists is valid: the only constructors validate.
///
/// ```
/// use sandguard_policy::SandboxId;
///
/// let id: SandboxId = "team-7".parse()?;
/// assert_eq!(id.to_string(), "team-7");
///
/// let err = SandboxId::parse("Team-7").unwrap_err();
/// assert_eq!(err.code(), "INVALID_SANDBOX_ID_CASE");
/// assert!(err.to_string().contains("\"team-7\""));
/// # Ok::<(), sandguard_policy::id::IdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(String);

impl SandboxId {
    /// The longest ID, in bytes: the limit of a DNS label.
    pub const MAX_LEN: usize = 63;

    /// Length of the random part of [`generate`](Self::generate): 128 bits in base32.
    const RANDOM_LEN: usize = 26;

    /// The longest prefix [`generate`](Self::generate) accepts: room for `-` and the random part.
    pub const MAX_PREFIX_LEN: usize = Self::MAX_LEN - 1 - Self::RANDOM_LEN;

    /// Validates `input` against the built-in rules ([`BUILTIN_RESERVED`] only).
    ///
    /// ```
    /// use sandguard_policy::SandboxId;
    ///
    /// assert!(SandboxId::parse("a--b").is_ok());
    /// assert_eq!(SandboxId::parse("xn--abc").unwrap_err().code(), "INVALID_SANDBOX_ID_HYPHENS");
    /// assert_eq!(SandboxId::parse("admin").unwrap_err().code(), "RESERVED_SANDBOX_ID");
    /// ```
    pub fn parse(input: &str) -> Result<Self, IdError> {
        IdRules::default().check(input)
    }

    /// A fresh, unpredictable ID: `prefix-` followed by at least 128 bits of OS randomness.
    ///
    /// The random part is 26 characters of lowercase base32 (`[a-z2-7]`); with an empty prefix
    /// the ID is the random part alone, which always starts with a letter. The whole ID goes
    /// through the normal rules, so a prefix that could not start an ID is an error; so is one
    /// longer than [`MAX_PREFIX_LEN`](Self::MAX_PREFIX_LEN) bytes.
    ///
    /// ```
    /// use sandguard_policy::SandboxId;
    ///
    /// let id = SandboxId::generate("job")?;
    /// assert!(id.as_str().starts_with("job-"));
    /// assert_eq!(id.as_str().len(), "job-".len() + 26);
    /// assert_eq!(SandboxId::generate("Job").unwrap_err().code(), "INVALID_SANDBOX_ID_CASE");
    /// # Ok::<(), sandguard_policy::id::IdError>(())
    /// ```
    pub fn generate(prefix: &str) -> Result<Self, IdError> {
        IdRules::default().generate(prefix)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID as an owned string, without copying.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SandboxId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SandboxId {
    type Error = IdError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl TryFrom<String> for SandboxId {
    type Error = IdError;

    /// Validates `value` and keeps its buffer: no copy.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        IdRules::default().validate(&value)?;
        Ok(Self(value))
    }
}

impl From<SandboxId> for String {
    fn from(id: SandboxId) -> Self {
        id.0
    }
}

impl AsRef<str> for SandboxId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Sound because `Eq`, `Ord` and `Hash` are derived from the inner `String`, which agree with `str`'s.
impl Borrow<str> for SandboxId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for SandboxId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SandboxId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The ID rules of one policy: the built-in reserved names plus the policy's own, compiled once.
///
/// ```
/// use sandguard_policy::IdRules;
///
/// let rules = IdRules::new(["Billing", "status"]);
/// assert_eq!(rules.check("billing").unwrap_err().code(), "RESERVED_SANDBOX_ID");
/// assert_eq!(rules.check("admin").unwrap_err().code(), "RESERVED_SANDBOX_ID");
/// assert!(rules.check("billing-2").is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdRules {
    /// Lowercase, sorted and deduplicated, so a lookup is a binary search.
    extra_reserved: Vec<String>,
}

impl IdRules {
    /// Rules with `extra_reserved` names refused on top of [`BUILTIN_RESERVED`].
    ///
    /// Names are compared in lowercase. Any string is accepted; one that could never be a valid
    /// ID simply never matches.
    pub fn new<I, S>(extra_reserved: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut extra_reserved: Vec<String> =
            extra_reserved.into_iter().map(|s| s.as_ref().to_ascii_lowercase()).collect();
        extra_reserved.sort_unstable();
        extra_reserved.dedup();
        Self { extra_reserved }
    }

    /// Validates `input`.
    ///
    /// Problems are reported in this order: length, characters (uppercase alone is
    /// `INVALID_SANDBOX_ID_CASE`, anything else `INVALID_SANDBOX_ID_CHARS`), hyphens, reserved names.
    /// Allocates only the returned ID.
    ///
    /// ```
    /// use sandguard_policy::IdRules;
    ///
    /// let rules = IdRules::default();
    /// assert_eq!(rules.check("api-2")?.as_str(), "api-2");
    /// assert_eq!(rules.check("").unwrap_err().code(), "INVALID_SANDBOX_ID_LENGTH");
    /// assert_eq!(rules.check("a\0b").unwrap_err().code(), "INVALID_SANDBOX_ID_CHARS");
    /// assert_eq!(rules.check("-a").unwrap_err().code(), "INVALID_SANDBOX_ID_HYPHENS");
    /// # Ok::<(), sandguard_policy::id::IdError>(())
    /// ```
    pub fn check(&self, input: &str) -> Result<SandboxId, IdError> {
        self.validate(input)?;
        Ok(SandboxId(input.to_owned()))
    }

    /// Like [`SandboxId::generate`], also refusing this policy's reserved names.
    pub fn generate(&self, prefix: &str) -> Result<SandboxId, IdError> {
        if prefix.len() > SandboxId::MAX_PREFIX_LEN {
            return Err(IdError::Prefix { len: prefix.len(), max: SandboxId::MAX_PREFIX_LEN });
        }
        // Checked alone first, so no randomness is spent on a bad prefix and a case hint never
        // shows an ID that was never issued.
        match scan_chars(prefix) {
            CharScan::Label => {}
            CharScan::Uppercase { ch, offset } => {
                return Err(IdError::Case { ch, offset, suggestion: None });
            }
            CharScan::Invalid { ch, offset } => return Err(IdError::Chars { ch, offset }),
        }

        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| IdError::Randomness { reason: e.to_string() })?;
        let random = u128::from_be_bytes(random);

        let mut id = String::with_capacity(prefix.len() + 1 + SandboxId::RANDOM_LEN);
        if !prefix.is_empty() {
            id.push_str(prefix);
            id.push('-');
        }
        // 26 digits of 5 bits hold 130 bits; the first digit carries the top 3 bits only, so it
        // is always one of `a`..=`h`: an ID without prefix starts with a letter.
        for digit in (0..SandboxId::RANDOM_LEN).rev() {
            let value = ((random >> (5 * digit)) & 0x1f) as u8;
            id.push(base32_char(value));
        }
        self.validate(&id)?;
        Ok(SandboxId(id))
    }

    fn validate(&self, input: &str) -> Result<(), IdError> {
        if input.is_empty() || input.len() > SandboxId::MAX_LEN {
            return Err(IdError::Length { len: input.len() });
        }
        match scan_chars(input) {
            CharScan::Label => self.validate_label(input),
            CharScan::Uppercase { ch, offset } => {
                let lower = input.to_ascii_lowercase();
                let suggestion = self.validate_label(&lower).is_ok().then_some(lower);
                Err(IdError::Case { ch, offset, suggestion })
            }
            CharScan::Invalid { ch, offset } => Err(IdError::Chars { ch, offset }),
        }
    }

    /// The rules after length and characters: `label` is 1 to 63 bytes of `[a-z0-9-]`.
    fn validate_label(&self, label: &str) -> Result<(), IdError> {
        let bytes = label.as_bytes();
        let rule = if bytes.first() == Some(&b'-') {
            Some(HyphenRule::Leading)
        } else if bytes.last() == Some(&b'-') {
            Some(HyphenRule::Trailing)
        } else if bytes.get(2..4) == Some(b"--") {
            Some(HyphenRule::IdnaReserved)
        } else {
            None
        };
        if let Some(rule) = rule {
            return Err(IdError::Hyphens { rule });
        }
        if self.is_reserved(label) {
            return Err(IdError::Reserved { name: label.to_owned() });
        }
        Ok(())
    }

    fn is_reserved(&self, label: &str) -> bool {
        BUILTIN_RESERVED.binary_search(&label).is_ok()
            || self.extra_reserved.binary_search_by(|name| name.as_str().cmp(label)).is_ok()
    }
}

/// The verdict of [`scan_chars`].
enum CharScan {
    /// Every character is in `[a-z0-9-]`.
    Label,
    /// Some are uppercase ASCII letters, the rest in `[a-z0-9-]`; the first uppercase one.
    Uppercase { ch: char, offset: usize },
    /// The first character that is neither.
    Invalid { ch: char, offset: usize },
}

fn scan_chars(input: &str) -> CharScan {
    // Fast path for the common, valid case: one branch-free pass over bytes.
    if input.bytes().all(|b| b.is_ascii_lowercase() | b.is_ascii_digit() | (b == b'-')) {
        return CharScan::Label;
    }
    let mut first_upper = None;
    for (offset, ch) in input.char_indices() {
        match ch {
            'a'..='z' | '0'..='9' | '-' => {}
            'A'..='Z' => {
                first_upper.get_or_insert((ch, offset));
            }
            _ => return CharScan::Invalid { ch, offset },
        }
    }
    match first_upper {
        Some((ch, offset)) => CharScan::Uppercase { ch, offset },
        None => CharScan::Label,
    }
}

/// RFC 4648 base32 in lowercase: `a`..=`z` then `2`..=`7`, for `value` below 32.
fn base32_char(value: u8) -> char {
    char::from(if value < 26 { b'a' + value } else { b'2' + (value - 26) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn code(input: &str) -> &'static str {
        match SandboxId::parse(input) {
            Ok(_) => "OK",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn accepts_plain_labels() {
        for id in ["a", "0", "a1", "a-b", "a--b", "ab-c", "abc--d", "9lives", "sandbox-123"] {
            assert_eq!(SandboxId::parse(id).map(SandboxId::into_string), Ok(id.to_owned()));
        }
    }

    #[test]
    fn length_boundaries() {
        assert_eq!(code(&"a".repeat(63)), "OK");
        assert_eq!(SandboxId::parse(&"a".repeat(64)), Err(IdError::Length { len: 64 }));
        assert_eq!(SandboxId::parse(""), Err(IdError::Length { len: 0 }));
        // Bytes, not characters: 32 two-byte characters are 64 bytes.
        assert_eq!(SandboxId::parse(&"é".repeat(32)), Err(IdError::Length { len: 64 }));
    }

    #[test]
    fn chars_names_first_bad_char_and_offset() {
        assert_eq!(SandboxId::parse("x;rm -rf /"), Err(IdError::Chars { ch: ';', offset: 1 }));
        assert_eq!(SandboxId::parse("caf\u{e9}"), Err(IdError::Chars { ch: 'é', offset: 3 }));
        assert_eq!(SandboxId::parse("a\0b"), Err(IdError::Chars { ch: '\0', offset: 1 }));
        assert_eq!(SandboxId::parse("a_b"), Err(IdError::Chars { ch: '_', offset: 1 }));
        assert_eq!(SandboxId::parse("a.b"), Err(IdError::Chars { ch: '.', offset: 1 }));
        assert_eq!(SandboxId::parse("a b"), Err(IdError::Chars { ch: ' ', offset: 1 }));
        // Fullwidth letters are not uppercase ASCII, so no case hint.
        assert_eq!(SandboxId::parse("ＡＢ"), Err(IdError::Chars { ch: 'Ａ', offset: 0 }));
        // Any non-uppercase problem wins over uppercase, even a later one.
        assert_eq!(SandboxId::parse("Ab;"), Err(IdError::Chars { ch: ';', offset: 2 }));
    }

    #[test]
    fn chars_message_escapes_control_and_confusable_chars() {
        let message = SandboxId::parse("a\0b").unwrap_err().to_string();
        assert!(message.contains(r"'\0' (U+0000) at byte 1"), "{message}");
        let message = SandboxId::parse("a\nb").unwrap_err().to_string();
        assert!(message.contains(r"'\n' (U+000A)"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        let message = SandboxId::parse("a\u{202e}b").unwrap_err().to_string();
        assert!(!message.contains('\u{202e}'), "bidi override must be escaped: {message}");
        // Cyrillic `а` looks like `a`; the code point tells them apart.
        let message = SandboxId::parse("\u{430}dmin").unwrap_err().to_string();
        assert!(message.contains("U+0430"), "{message}");
    }

    #[test]
    fn uppercase_gets_a_hint_only_when_the_lowercase_form_is_valid() {
        let err = SandboxId::parse("MyBox").unwrap_err();
        assert_eq!(err, IdError::Case { ch: 'M', offset: 0, suggestion: Some("mybox".to_owned()) });
        assert_eq!(err.code(), "INVALID_SANDBOX_ID_CASE");
        assert!(err.to_string().contains("use \"mybox\""), "{err}");

        for no_hint in ["ADMIN", "-AB", "AB-", "XN--ABC"] {
            match SandboxId::parse(no_hint) {
                Err(IdError::Case { suggestion: None, .. }) => {}
                other => panic!("{no_hint}: {other:?}"),
            }
        }
        let err = IdRules::new(["mybox"]).check("MyBox").unwrap_err();
        assert_eq!(err, IdError::Case { ch: 'M', offset: 0, suggestion: None });
        assert!(!err.to_string().contains("use"), "{err}");
    }

    #[test]
    fn hyphens_say_which_rule() {
        let rule = |input| match SandboxId::parse(input) {
            Err(IdError::Hyphens { rule }) => Some(rule),
            _ => None,
        };
        assert_eq!(rule("-a"), Some(HyphenRule::Leading));
        assert_eq!(rule("-"), Some(HyphenRule::Leading));
        assert_eq!(rule("a-"), Some(HyphenRule::Trailing));
        assert_eq!(rule("ab--c"), Some(HyphenRule::IdnaReserved));
        assert_eq!(rule("xn--abc"), Some(HyphenRule::IdnaReserved));
        assert_eq!(rule("a--b"), None);
        assert_eq!(rule("abc--d"), None);
        let message = SandboxId::parse("xn--abc").unwrap_err().to_string();
        assert!(message.contains("positions 3 and 4"), "{message}");
    }

    #[test]
    fn reserved_builtin_and_extra() {
        for name in BUILTIN_RESERVED {
            assert_eq!(code(name), "RESERVED_SANDBOX_ID", "{name}");
        }
        assert_eq!(code("admins"), "OK");

        let rules = IdRules::new(["Billing", "billing", "not a label", ""]);
        assert_eq!(rules.check("billing"), Err(IdError::Reserved { name: "billing".to_owned() }));
        assert!(rules.check("www").is_err());
        assert!(rules.check("billing-1").is_ok());
        assert!(SandboxId::parse("billing").is_ok());
        assert_eq!(rules, IdRules::new(["billing", "", "not a label"]));
    }

    #[test]
    fn builtin_reserved_is_sorted_for_binary_search() {
        assert!(BUILTIN_RESERVED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_code_is_distinct() {
        let errors = [
            IdError::Length { len: 0 },
            IdError::Chars { ch: ';', offset: 0 },
            IdError::Case { ch: 'A', offset: 0, suggestion: None },
            IdError::Hyphens { rule: HyphenRule::Leading },
            IdError::Reserved { name: "www".into() },
            IdError::Prefix { len: 40, max: 36 },
            IdError::Randomness { reason: "test".into() },
        ];
        let codes: HashSet<_> = errors.iter().map(IdError::code).collect();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn conversions_agree_with_parse() {
        let id = SandboxId::parse("web-1").unwrap();
        assert_eq!("web-1".parse::<SandboxId>(), Ok(id.clone()));
        assert_eq!(SandboxId::try_from("web-1"), Ok(id.clone()));
        assert_eq!(SandboxId::try_from("web-1".to_owned()), Ok(id.clone()));
        assert_eq!(SandboxId::try_from("Web-1".to_owned()).unwrap_err().code(), "INVALID_SANDBOX_ID_CASE");
        assert_eq!(id, "web-1");
        let set: HashSet<SandboxId> = [id.clone()].into();
        assert!(set.contains("web-1"));
        assert_eq!(String::from(id), "web-1");
    }

    #[test]
    fn generate_with_and_without_prefix() {
        let id = SandboxId::generate("job").unwrap();
        let random = id.as_str().strip_prefix("job-").unwrap();
        assert_eq!(random.len(), 26);
        assert!(random.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')));

        let bare = SandboxId::generate("").unwrap();
        assert_eq!(bare.as_str().len(), 26);
        assert!(matches!(bare.as_str().as_bytes()[0], b'a'..=b'h'));
    }

    #[test]
    fn generate_refuses_bad_prefixes() {
        let longest = "p".repeat(SandboxId::MAX_PREFIX_LEN);
        assert_eq!(SandboxId::generate(&longest).unwrap().as_str().len(), 63);
        assert_eq!(SandboxId::generate(&format!("{longest}p")), Err(IdError::Prefix { len: 37, max: 36 }));
        assert_eq!(SandboxId::generate(&"é".repeat(100)).unwrap_err().code(), "INVALID_SANDBOX_ID_PREFIX");
        assert_eq!(SandboxId::generate("Job"), Err(IdError::Case { ch: 'J', offset: 0, suggestion: None }));
        assert_eq!(SandboxId::generate("a;b"), Err(IdError::Chars { ch: ';', offset: 1 }));
        assert_eq!(code_of(SandboxId::generate("-job")), "INVALID_SANDBOX_ID_HYPHENS");
        assert_eq!(code_of(SandboxId::generate("ab-")), "INVALID_SANDBOX_ID_HYPHENS");
    }

    fn code_of(result: Result<SandboxId, IdError>) -> &'static str {
        result.map_or_else(|e| e.code(), |_| "OK")
    }

    #[test]
    fn generated_ids_are_distinct() {
        let ids: HashSet<_> = (0..1000).map(|_| SandboxId::generate("t").unwrap()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn base32_alphabet_is_rfc4648_lowercase() {
        let alphabet: String = (0..32).map(base32_char).collect();
        assert_eq!(alphabet, "abcdefghijklmnopqrstuvwxyz234567");
    }

    /// The rules as the design states them, written independently of the implementation.
    fn reference_code(input: &str, extra: &[String]) -> &'static str {
        let label = regex::Regex::new("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$").unwrap();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let reserved = BUILTIN_RESERVED.contains(&input) || extra.iter().any(|r| r.to_lowercase() == input);
        if label.is_match(input) && input.get(2..4) != Some("--") && !reserved {
            return "OK";
        }
        if input.is_empty() || input.len() > 63 {
            "INVALID_SANDBOX_ID_LENGTH"
        } else if input.chars().any(|c| !allowed(c) && !c.is_ascii_uppercase()) {
            "INVALID_SANDBOX_ID_CHARS"
        } else if input.chars().any(|c| c.is_ascii_uppercase()) {
            "INVALID_SANDBOX_ID_CASE"
        } else if input.starts_with('-') || input.ends_with('-') || input.get(2..4) == Some("--") {
            "INVALID_SANDBOX_ID_HYPHENS"
        } else {
            "RESERVED_SANDBOX_ID"
        }
    }

    fn reserved_name() -> impl Strategy<Value = String> {
        prop::sample::select(BUILTIN_RESERVED).prop_map(str::to_owned)
    }

    fn candidate() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z0-9-]{0,66}",
            "[a-z0-9]{1,3}-{1,3}[a-z0-9]{0,3}",
            "[a-zA-Z0-9-]{1,66}",
            "[a-zA-Z0-9 ;_.\\x00\\n-]{1,10}",
            reserved_name(),
        ]
    }

    proptest! {
        #[test]
        fn check_matches_reference(
            input in candidate(),
            extra in prop::collection::vec("[a-zA-Z0-9-]{1,4}", 0..4),
        ) {
            let rules = IdRules::new(&extra);
            let got = rules.check(&input);
            prop_assert_eq!(got.as_ref().map_or_else(IdError::code, |_| "OK"), reference_code(&input, &extra));
            if let Ok(id) = &got {
                prop_assert_eq!(id.as_str(), input.as_str());
            }
            if let Err(IdError::Case { suggestion: Some(lower), .. }) = &got {
                prop_assert_eq!(lower, &input.to_ascii_lowercase());
                prop_assert!(rules.check(lower).is_ok());
            }
            if let Err(IdError::Chars { ch, offset }) = &got {
                prop_assert_eq!(input[*offset..].chars().next(), Some(*ch));
            }
        }

        #[test]
        fn generate_output_validates_and_keeps_prefix(
            prefix in "([a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?)?".prop_filter("IDNA `--`", |p| p.get(2..4) != Some("--")),
        ) {
            let id = SandboxId::generate(&prefix).unwrap();
            prop_assert!(SandboxId::parse(id.as_str()).is_ok());
            if prefix.is_empty() {
                prop_assert_eq!(id.as_str().len(), 26);
            } else {
                let expected = format!("{prefix}-");
                prop_assert!(id.as_str().starts_with(&expected));
            }
        }
    }
}
