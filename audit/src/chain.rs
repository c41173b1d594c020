//! The hash-chained line format, shared by the writer ([`FileSink`](crate::FileSink)) and
//! the verifier so that the two cannot drift apart.
//!
//! A record is the event's JSON object with two fields appended before its closing brace:
//!
//! ```text
//! {"seq":…,…event fields…,"prev":"<64 hex>","hash":"<64 hex>"}\n
//! \______________________ body ____________________/
//! ```
//!
//! `hash = H(prev_digest || body)`, where `body` is the exact bytes of the line up to (not
//! including) `,"hash":"`, and `H` is SHA-256, or HMAC-SHA256 under a [`ChainKey`]. The
//! verifier finds both chain fields by position from the end of the line, so it hashes
//! the bytes that are on disk, never a re-serialisation that could normalise a change
//! away.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use crate::{AuditError, SecurityEvent};

/// A SHA-256 or HMAC-SHA256 output.
pub(crate) type Digest = [u8; 32];

/// The `prev` of the first record (seq 1): 32 zero bytes, 64 `0`s in hex.
///
/// A fixed genesis keeps every line a plain event (no header record for log shippers to
/// skip). Deleting the head of a log is still detected: the first remaining record has
/// a seq above 1 and a `prev` that is not the genesis.
pub(crate) const GENESIS: Digest = [0; 32];

/// The longest record a log line may hold, newline included: 1 MiB.
///
/// The writer refuses larger events ([`AuditError::RecordTooLarge`]) and the verifier
/// reports longer lines as malformed without reading them into memory whole, so a
/// corrupted file without newlines cannot exhaust memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const PREV_FIELD: &[u8] = br#","prev":""#;
const HASH_FIELD: &[u8] = br#","hash":""#;
const CLOSE: &[u8] = br#""}"#;
/// `,"hash":"<64 hex>"}`: what follows the hashed body.
const HASH_TRAILER_LEN: usize = HASH_FIELD.len() + 64 + CLOSE.len();
/// `,"prev":"<64 hex>"` followed by the hash trailer.
const TRAILER_LEN: usize = PREV_FIELD.len() + 64 + 1 + HASH_TRAILER_LEN;

/// A secret key that turns the chain's SHA-256 into HMAC-SHA256.
///
/// Without a key anyone who can write the file can also recompute every hash after
/// editing it; the chain then only catches accidents and careless tampering. With a key
/// kept away from the host's attacker (a secret manager, a file only the service can
/// read), a forger cannot produce a record that verifies. Use 32 random bytes.
///
/// The key is expanded into HMAC state at construction; the raw bytes are not kept, and
/// `Debug` never prints them.
///
/// ```
/// use sandguard_audit::ChainKey;
///
/// assert!(ChainKey::new(b"too short").is_err());
/// let key = ChainKey::new(&[7; 32])?;
/// assert_eq!(format!("{key:?}"), "ChainKey(..)");
/// # Ok::<(), sandguard_audit::AuditError>(())
/// ```
#[derive(Clone)]
pub struct ChainKey {
    mac: Hmac<Sha256>,
}

impl ChainKey {
    /// The shortest key accepted: 16 bytes (128 bits).
    pub const MIN_LEN: usize = 16;

    /// A key from raw secret bytes, which must be at least [`Self::MIN_LEN`] long.
    pub fn new(key: &[u8]) -> Result<Self, AuditError> {
        let too_short = AuditError::KeyTooShort { len: key.len(), min: Self::MIN_LEN };
        if key.len() < Self::MIN_LEN {
            return Err(too_short);
        }
        // HMAC accepts keys of any length; the error arm exists only in the trait's signature.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| too_short)?;
        Ok(Self { mac })
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

/// The hash function of one log: plain SHA-256, or HMAC-SHA256 under a key.
#[derive(Clone, Debug)]
pub(crate) enum Chain {
    Sha256,
    Hmac(ChainKey),
}

impl Chain {
    pub(crate) fn new(key: Option<&ChainKey>) -> Self {
        key.map_or(Self::Sha256, |key| Self::Hmac(key.clone()))
    }

    pub(crate) fn is_keyed(&self) -> bool {
        matches!(self, Self::Hmac(_))
    }

    /// `H(prev || body)`.
    pub(crate) fn digest(&self, prev: &Digest, body: &[u8]) -> Digest {
        match self {
            Self::Sha256 => Sha256::new().chain_update(prev).chain_update(body).finalize().into(),
            Self::Hmac(key) => {
                // Cloning the keyed state skips re-deriving the HMAC pads for every record.
                let mut mac = key.mac.clone();
                mac.update(prev);
                mac.update(body);
                mac.finalize().into_bytes().into()
            }
        }
    }

    /// Writes `event` as a chained record, newline included, into `out` (cleared first),
    /// and returns the record's hash.
    pub(crate) fn encode(&self, event: &SecurityEvent, prev: &Digest, out: &mut Vec<u8>) -> Result<Digest, AuditError> {
        out.clear();
        serde_json::to_writer(&mut *out, event).map_err(AuditError::Serialize)?;
        // A struct always serialises as `{…}`; reopen it to append the chain fields.
        if out.pop() != Some(b'}') {
            return Err(AuditError::Serialize(serde::ser::Error::custom(
                "a security event did not serialise as a JSON object",
            )));
        }
        out.extend_from_slice(PREV_FIELD);
        push_hex(out, prev);
        out.push(b'"');
        let hash = self.digest(prev, out);
        out.extend_from_slice(HASH_FIELD);
        push_hex(out, &hash);
        out.extend_from_slice(CLOSE);
        out.push(b'\n');
        if out.len() > MAX_RECORD_BYTES {
            return Err(AuditError::RecordTooLarge { len: out.len(), limit: MAX_RECORD_BYTES });
        }
        Ok(hash)
    }
}

/// A line that has the shape of a chained record; its hash is not yet checked.
#[derive(Debug, Clone)]
pub(crate) struct Record<'a> {
    pub(crate) seq: u64,
    pub(crate) prev: Digest,
    pub(crate) hash: Digest,
    /// The hashed bytes: the line up to `,"hash":"`.
    body: &'a [u8],
}

impl Record<'_> {
    /// Splits a line (without its newline) into the chain fields, found by position
    /// from the end, and checks that the whole line is a valid [`SecurityEvent`].
    pub(crate) fn parse(line: &[u8]) -> Result<Record<'_>, Malformed> {
        let (prev, hash) = chain_fields(line).ok_or(Malformed::ChainFields)?;
        let body =
            (line.len().checked_sub(HASH_TRAILER_LEN)).and_then(|len| line.get(..len)).ok_or(Malformed::ChainFields)?;
        // The chain fields are JSON keys the event type ignores; everything else must be
        // a well-formed event (known fields typed correctly, no duplicates, no trailer).
        let event: SecurityEvent = serde_json::from_slice(line).map_err(|e| Malformed::Json(e.to_string()))?;
        Ok(Record { seq: event.seq, prev, hash, body })
    }

    /// Whether `hash` is the digest of this record's own `prev` and body under `chain`.
    /// The comparison runs in constant time; the log is public but the habit is cheap.
    pub(crate) fn is_intact(&self, chain: &Chain) -> bool {
        let expected = chain.digest(&self.prev, self.body);
        expected.iter().zip(&self.hash).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The `prev` and `hash` of a line ending in
/// `,"prev":"<64 lowercase hex>","hash":"<64 lowercase hex>"}`.
fn chain_fields(line: &[u8]) -> Option<(Digest, Digest)> {
    let trailer = line.get(line.len().checked_sub(TRAILER_LEN)?..)?;
    let rest = trailer.strip_prefix(PREV_FIELD)?;
    let (prev, rest) = rest.split_at_checked(64)?;
    let rest = rest.strip_prefix(b"\"")?.strip_prefix(HASH_FIELD)?;
    let (hash, rest) = rest.split_at_checked(64)?;
    (rest == CLOSE).then_some(())?;
    Some((parse_hex(prev)?, parse_hex(hash)?))
}

/// Why a line is not a chained record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The file ends without a newline: a torn write, or a cut in the middle of a record.
    Incomplete,
    /// The line is longer than [`MAX_RECORD_BYTES`].
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The line does not end with `,"prev":"<64 lowercase hex>","hash":"<64 lowercase hex>"}`.
    ChainFields,
    /// The line is not a valid event; the message comes from the JSON parser.
    Json(String),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("the file ends inside a record (torn write or cut)"),
            Self::TooLong { limit } => write!(f, "the line is longer than {limit} bytes"),
            Self::ChainFields => {
                f.write_str(r#"the line does not end with ,"prev":"<64 lowercase hex>","hash":"<64 lowercase hex>"}"#)
            }
            Self::Json(message) => write!(f, "not a valid event: {message}"),
        }
    }
}

/// The newest record of a chain: what to store somewhere else (another host, a ticket, a
/// transparency log) so that cutting records off the end of the file becomes detectable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainHead {
    /// The record's seq.
    pub seq: u64,
    /// The record's hash, 64 lowercase hex digits, as in the file.
    pub hash: String,
}

impl ChainHead {
    pub(crate) fn new(seq: u64, hash: &Digest) -> Self {
        let mut text = Vec::with_capacity(64);
        push_hex(&mut text, hash);
        Self { seq, hash: text.into_iter().map(char::from).collect() }
    }
}

impl fmt::Display for ChainHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {} hash {}", self.seq, self.hash)
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &Digest) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xf)]);
    }
}

/// Strict: exactly 64 *lowercase* hex digits. Accepting `A` for `a` would let a byte of
/// the file change without the verifier noticing.
fn parse_hex(text: &[u8]) -> Option<Digest> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let mut out = [0; 32];
    if text.len() != 64 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [hi, lo] = *pair else { return None };
        *byte = (nibble(hi)? << 4) | nibble(lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Outcome};
    use time::macros::datetime;

    fn event(seq: u64) -> SecurityEvent {
        SecurityEvent::from_new(
            seq,
            datetime!(2025-01-31 12:00:00 UTC),
            NewEvent::new("alice", "exec", Outcome::Allowed),
        )
    }

    fn line(chain: &Chain) -> (Vec<u8>, Digest) {
        let mut out = Vec::new();
        let hash = chain.encode(&event(1), &GENESIS, &mut out).unwrap();
        (out, hash)
    }

    #[test]
    fn encoded_line_has_the_documented_shape() {
        let (out, hash) = line(&Chain::Sha256);
        let text = std::str::from_utf8(&out).unwrap();
        let prefix = r#"{"seq":1,"time":"2025-01-31T12:00:00.000000000Z","actor":"alice","action":"exec","outcome":"allowed","prev":"0000000000000000000000000000000000000000000000000000000000000000""#;
        assert!(text.starts_with(prefix), "{text}");
        // The hash covers exactly the bytes before `,"hash":"`, chained to the genesis.
        let expected: Digest = Sha256::new().chain_update(GENESIS).chain_update(prefix).finalize().into();
        assert_eq!(hash, expected);
        assert_eq!(text, format!("{prefix},\"hash\":\"{}\"}}\n", ChainHead::new(1, &hash).hash));
    }

    #[test]
    fn parse_accepts_what_encode_writes_and_checks_the_hash() {
        let key = ChainKey::new(&[1; 32]).unwrap();
        for chain in [Chain::Sha256, Chain::Hmac(key)] {
            let (out, hash) = line(&chain);
            let record = Record::parse(out.strip_suffix(b"\n").unwrap()).unwrap();
            assert_eq!((record.seq, record.prev, record.hash), (1, GENESIS, hash));
            assert!(record.is_intact(&chain));
        }
    }

    #[test]
    fn hmac_and_sha256_chains_differ_and_keys_matter() {
        let (plain, _) = line(&Chain::Sha256);
        let keyed = Chain::Hmac(ChainKey::new(&[1; 32]).unwrap());
        let other = Chain::Hmac(ChainKey::new(&[2; 32]).unwrap());
        let record = Record::parse(plain.strip_suffix(b"\n").unwrap()).unwrap();
        assert!(!record.is_intact(&keyed));
        let (signed, _) = line(&keyed);
        let record = Record::parse(signed.strip_suffix(b"\n").unwrap()).unwrap();
        assert!(!record.is_intact(&other));
        assert!(!record.is_intact(&Chain::Sha256));
    }

    #[test]
    fn uppercase_hex_is_not_hex() {
        let lower = "ab".repeat(32);
        assert_eq!(parse_hex(lower.as_bytes()), Some([0xab; 32]));
        assert_eq!(parse_hex(lower.to_uppercase().as_bytes()), None);
        assert_eq!(parse_hex(&lower.as_bytes()[1..]), None);
        assert_eq!(parse_hex(b"g".repeat(64).as_slice()), None);
    }

    #[test]
    fn short_and_misshapen_lines_are_malformed_not_panics() {
        let (out, _) = line(&Chain::Sha256);
        let good = out.strip_suffix(b"\n").unwrap();
        for len in 0..good.len() {
            assert!(Record::parse(&good[..len]).is_err(), "prefix of {len} bytes");
            assert!(Record::parse(&good[len..]).is_err() || len == 0);
        }
        let extra_brace = [good, b"}"].concat();
        assert_eq!(Record::parse(&extra_brace).unwrap_err(), Malformed::ChainFields);
    }

    #[test]
    fn duplicate_event_fields_are_malformed() {
        let (out, _) = line(&Chain::Sha256);
        let text = String::from_utf8(out).unwrap().replacen(r#"{"seq":1,"#, r#"{"seq":1,"seq":1,"#, 1);
        let err = Record::parse(text.trim_end().as_bytes()).unwrap_err();
        assert!(matches!(err, Malformed::Json(ref m) if m.contains("duplicate field")), "{err:?}");
    }

    #[test]
    fn oversized_records_are_refused() {
        let big = "x".repeat(MAX_RECORD_BYTES);
        let event = SecurityEvent::from_new(
            1,
            datetime!(2025-01-31 12:00:00 UTC),
            NewEvent::new("alice", "exec", Outcome::Allowed).detail("blob", big),
        );
        let err = Chain::Sha256.encode(&event, &GENESIS, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, AuditError::RecordTooLarge { limit: MAX_RECORD_BYTES, .. }));
    }
}
