//! Secret redaction: known secret values and common credential shapes are replaced in output.
//!
//! OWNER: helper C.

use std::borrow::Cow;

/// Why a secret could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The secret is too short to redact without destroying ordinary text. Code `SECRET_TOO_SHORT`.
    #[error("secret {name:?} is {len} bytes; secrets shorter than {min} bytes cannot be redacted safely")]
    TooShort {
        /// The secret's name.
        name: String,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

impl RedactError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// Replaces secrets in text. Built once; `redact` is cheap when there is nothing to replace.
#[derive(Debug, Clone)]
pub struct SecretRedactor {
    _todo: (),
}

impl SecretRedactor {
    /// Replaces every registered secret value and every credential-shaped token in `text`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let _ = text;
        todo!()
    }
}
