//! `sandbox_id`: `SandboxId` accepts exactly the reference DNS-label definition, and every accepted
//! ID passes through IDNA unchanged.
//!
//! The reference is written from the definitions, not from `policy/src/id.rs`: an RFC 1123 host
//! label (letters, digits and hyphens, 1 to 63 octets, a letter or digit at each end), in
//! lowercase only, minus the labels RFC 5891 section 4.2.3.1 reserves (hyphens in the third and
//! fourth positions), minus the reserved names.

use sandguard_policy::id::{BUILTIN_RESERVED, IdError};
use sandguard_policy::{IdRules, SandboxId};

use crate::{Violation, violation};

/// Reserved names a policy adds in the target, mixed case on purpose (matching is in lowercase).
pub const EXTRA_RESERVED: [&str; 3] = ["billing", "Status", "q-1"];

/// The reference definition: whether `text` is an acceptable sandbox ID under `extra_reserved`.
pub fn reference_accepts(text: &str, extra_reserved: &[&str]) -> bool {
    let octets = text.as_bytes();
    let ldh = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    let letter_or_digit = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rfc1123_label = (1..=63).contains(&octets.len())
        && octets.iter().all(|&b| ldh(b))
        && letter_or_digit(octets.first())
        && letter_or_digit(octets.last());
    let idna_reserved = octets.len() >= 4 && octets[2] == b'-' && octets[3] == b'-';
    let reserved = BUILTIN_RESERVED.iter().chain(extra_reserved).any(|name| name.eq_ignore_ascii_case(text));
    rfc1123_label && !idna_reserved && !reserved
}

/// Compares one verdict of the code under test with the reference, and checks the IDNA round trip
/// and the error's own claims.
pub fn check_verdict(
    text: &str,
    extra_reserved: &[&str],
    verdict: &Result<SandboxId, IdError>,
) -> Result<(), Violation> {
    let expected = reference_accepts(text, extra_reserved);
    match verdict {
        Ok(id) if !expected => violation!("{text:?} accepted as {:?}, but it is not a valid DNS label ID", id.as_str()),
        Ok(id) => {
            if id.as_str() != text {
                violation!("{text:?} accepted but changed to {:?}", id.as_str());
            }
            idna_round_trip(text)?;
        }
        Err(error) if expected => violation!("{text:?} is a valid DNS label ID but was refused: {error}"),
        Err(IdError::Case { suggestion: Some(lower), .. }) => {
            if *lower != text.to_ascii_lowercase() || !reference_accepts(lower, extra_reserved) {
                violation!("{text:?}: the case hint suggests {lower:?}, which is not its valid lowercase form");
            }
        }
        Err(IdError::Chars { ch, offset }) => {
            if text.get(*offset..).and_then(|rest| rest.chars().next()) != Some(*ch) {
                violation!("{text:?}: the error names {ch:?} at byte {offset}, which is not there");
            }
        }
        Err(_) => {}
    }
    Ok(())
}

/// An accepted ID is already in the form IDNA (UTS 46, strict: STD3 rules, hyphen checks and DNS
/// lengths) produces, and decodes to itself.
pub fn idna_round_trip(text: &str) -> Result<(), Violation> {
    match idna::domain_to_ascii_strict(text) {
        Ok(ascii) if ascii == text => {}
        Ok(ascii) => violation!("{text:?} was accepted but IDNA maps it to {ascii:?}"),
        Err(error) => violation!("{text:?} was accepted but IDNA refuses it: {error:?}"),
    }
    let (unicode, result) = idna::domain_to_unicode(text);
    if result.is_err() || unicode != text {
        violation!("{text:?} was accepted but IDNA decodes it to {unicode:?} ({result:?})");
    }
    Ok(())
}

/// The target's oracle: both the built-in rules and a policy's rules, on any UTF-8 input.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    let Ok(text) = std::str::from_utf8(data) else { return Ok(()) };
    check_verdict(text, &[], &SandboxId::parse(text))?;
    check_verdict(text, &EXTRA_RESERVED, &IdRules::new(EXTRA_RESERVED).check(text))?;
    // The owned conversion keeps the buffer instead of copying it; it must decide the same.
    let owned = SandboxId::try_from(text.to_owned());
    if owned.is_ok() != SandboxId::parse(text).is_ok() {
        violation!("{text:?}: TryFrom<String> and parse disagree");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matches_the_definition() {
        for ok in ["a", "0", "a-b", "a--b", "abc--d", &"a".repeat(63)] {
            assert!(reference_accepts(ok, &[]), "{ok}");
        }
        for bad in ["", "-a", "a-", "ab--c", "xn--a", "A", "a_b", "é", "admin", &"a".repeat(64)] {
            assert!(!reference_accepts(bad, &[]), "{bad}");
        }
        assert!(!reference_accepts("status", &EXTRA_RESERVED));
    }

    #[test]
    fn the_oracle_fails_on_wrong_verdicts() {
        // A guard that accepted "ab--c" or refused "ok", or changed what it accepted, is caught.
        assert!(check_verdict("ab--c", &[], &Ok(SandboxId::parse("abc").unwrap())).is_err());
        assert!(check_verdict("ok", &[], &Err(IdError::Length { len: 2 })).is_err());
        assert!(check_verdict("ok", &[], &Ok(SandboxId::parse("ko").unwrap())).is_err());
        let wrong_hint = IdError::Case { ch: 'A', offset: 0, suggestion: Some("b".into()) };
        assert!(check_verdict("A", &[], &Err(wrong_hint)).is_err());
        assert!(check(b"web-1").is_ok());
    }

    #[test]
    fn idna_refuses_what_must_not_be_accepted() {
        assert!(idna_round_trip("xn--a").is_err());
        assert!(idna_round_trip("A").is_err());
        assert!(idna_round_trip("-a").is_err());
        assert!(idna_round_trip("a--b").is_ok());
    }
}
