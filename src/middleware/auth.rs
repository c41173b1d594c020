//! Authentication: an [`Authenticator`] turns a request's headers into an [`Actor`], or the
//! request is refused with 401 `UNAUTHENTICATED` (and `WWW-Authenticate: Bearer`).
//!
//! [`BearerTokens`] is the built-in authenticator: `Authorization: Bearer TOKEN` checked against
//! a keys file of `USER TOKEN` lines. Tokens are kept only as SHA-256 hashes, and every stored
//! hash is compared in constant time on every request, so neither the memory of the process nor
//! the time of an answer tells how close a guess was. Any closure
//! `Fn(&HeaderMap) -> Option<Actor>` is an authenticator too:
//!
//! ```
//! use sandguard::middleware::{Actor, auth::Authenticator};
//!
//! let from_header = |headers: &http::HeaderMap| {
//!     headers.get("x-user").and_then(|value| value.to_str().ok()).map(Actor::new)
//! };
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-user", "alice".parse().unwrap());
//! assert_eq!(from_header.authenticate(&headers).unwrap().name(), "alice");
//! ```

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::guard::{Guard, GuardLayer, GuardService};
use super::{Actor, error_response, refuse};
use crate::{Enforcer, Error};
use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Decides who sent a request, from its headers.
pub trait Authenticator: Send + Sync + 'static {
    /// The actor, or `None` when the request carries no valid credentials.
    fn authenticate(&self, headers: &HeaderMap) -> Option<Actor>;
}

impl<F> Authenticator for F
where
    F: Fn(&HeaderMap) -> Option<Actor> + Send + Sync + 'static,
{
    fn authenticate(&self, headers: &HeaderMap) -> Option<Actor> {
        self(headers)
    }
}

/// Bearer tokens from a keys file, held as SHA-256 hashes and compared in constant time.
///
/// ```
/// use sandguard::middleware::auth::{Authenticator, BearerTokens};
///
/// let tokens = BearerTokens::parse("# user token\nalice example-token-alice-1\n", "keys".as_ref())?;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer example-token-alice-1".parse().unwrap());
/// assert_eq!(tokens.authenticate(&headers).unwrap().name(), "alice");
/// headers.insert("authorization", "Bearer example-token-alice-2".parse().unwrap());
/// assert!(tokens.authenticate(&headers).is_none());
/// # Ok::<(), sandguard::Error>(())
/// ```
pub struct BearerTokens {
    entries: Vec<([u8; 32], Actor)>,
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes of tokens are still worth keeping out of logs.
        f.debug_struct("BearerTokens").field("tokens", &self.entries.len()).finish_non_exhaustive()
    }
}

impl BearerTokens {
    /// The shortest token accepted: 16 bytes.
    pub const MIN_TOKEN_LEN: usize = 16;
    /// The longest user name accepted.
    pub const MAX_USER_LEN: usize = 64;

    /// Reads a keys file, refusing one that group or others may read or write (it holds every
    /// user's credentials): `chmod 600` it.
    ///
    /// # Errors
    /// [`Error::KeysFile`] when the file cannot be read, is too open, or does not parse (see
    /// [`parse`](Self::parse)).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::KeysFile { path: path.to_path_buf(), reason };
        let mut file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        // The mode is taken from the opened file, so it is the mode of what is read.
        let mode = file.metadata().map_err(|e| fail(e.to_string()))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "it is accessible by group or others (mode {:04o}); it holds credentials: chmod 600 it",
                mode & 0o7777
            )));
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text, path)
    }

    /// Parses keys: one `USER TOKEN` per line, separated by spaces or tabs; blank lines and
    /// lines starting with `#` are skipped. A user may have several tokens (for rotation); a
    /// token may belong to one user only. Users are 1 to 64 characters of `[A-Za-z0-9._@-]`;
    /// tokens at least 16 bytes. `origin` names the source in errors.
    ///
    /// # Errors
    /// [`Error::KeysFile`] naming the first bad line (never quoting a token), or when there are
    /// no keys at all.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::KeysFile { path: origin.to_path_buf(), reason };
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [user, token] = fields[..] else {
                return Err(fail(format!("line {number}: expected `USER TOKEN`, found {} fields", fields.len())));
            };
            let valid_user = !user.is_empty()
                && user.len() <= Self::MAX_USER_LEN
                && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
            if !valid_user {
                return Err(fail(format!(
                    "line {number}: the user must be 1 to {} characters of [A-Za-z0-9._@-]",
                    Self::MAX_USER_LEN
                )));
            }
            if token.len() < Self::MIN_TOKEN_LEN {
                return Err(fail(format!(
                    "line {number}: the token of {user:?} is {} bytes; at least {} are required",
                    token.len(),
                    Self::MIN_TOKEN_LEN
                )));
            }
            let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if !seen.insert(hash) {
                return Err(fail(format!("line {number}: this token is already given to a user")));
            }
            entries.push((hash, Actor::new(user)));
        }
        if entries.is_empty() {
            return Err(fail("no keys: expected `USER TOKEN` lines".to_owned()));
        }
        Ok(Self { entries })
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is known (never, for a parsed keys file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Authenticator for BearerTokens {
    fn authenticate(&self, headers: &HeaderMap) -> Option<Actor> {
        let value = headers.get(header::AUTHORIZATION)?.as_bytes();
        let (scheme, token) = value.split_at_checked(7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let hash: [u8; 32] = Sha256::digest(token).into();
        // Every entry is compared, match or not, so the time does not depend on which (or
        // whether one) matched.
        let mut found = None;
        for (stored, actor) in &self.entries {
            if bool::from(stored.ct_eq(&hash)) {
                found = Some(actor);
            }
        }
        found.cloned()
    }
}

/// Authenticates each request with `A`; see the [module docs](self).
pub type AuthLayer<A> = GuardLayer<AuthGuard<A>>;

/// The service made by [`AuthLayer`].
pub type Auth<S, A> = GuardService<AuthGuard<A>, S>;

/// The decision of an [`AuthLayer`].
#[derive(Debug)]
pub struct AuthGuard<A> {
    authenticator: Arc<A>,
    enforcer: Arc<Enforcer>,
}

impl<A> Clone for AuthGuard<A> {
    fn clone(&self) -> Self {
        Self { authenticator: Arc::clone(&self.authenticator), enforcer: Arc::clone(&self.enforcer) }
    }
}

impl<A: Authenticator> AuthLayer<A> {
    /// A layer authenticating with `authenticator`, recording refusals through `enforcer`.
    pub fn new(authenticator: A, enforcer: Arc<Enforcer>) -> Self {
        Self::with(AuthGuard { authenticator: Arc::new(authenticator), enforcer })
    }
}

impl<A: Authenticator> Guard for AuthGuard<A> {
    fn check<B>(&self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        if let Some(actor) = self.authenticator.authenticate(request.headers()) {
            request.extensions_mut().insert(actor);
            return Ok(());
        }
        let (code, message) = if request.headers().contains_key(header::AUTHORIZATION) {
            ("UNAUTHENTICATED", "the credentials were not accepted")
        } else {
            ("UNAUTHENTICATED", "credentials are required: Authorization: Bearer TOKEN")
        };
        let mut refusal = error_response(StatusCode::UNAUTHORIZED, code, message);
        refusal.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(refuse(&self.enforcer, request, "request.authenticate", code, message, refusal))
    }
}

#[cfg(test)]
mod tests {
    use tower::Layer;

    use super::*;
    use crate::middleware::test_support::{Harness, get};

    const KEYS: &str =
        "alice aaaaaaaaaaaaaaaaaaaa\nbob bbbbbbbbbbbbbbbbbbbb\n\n# comment\nalice cccccccccccccccccccc\n";

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn tokens_map_to_their_users() {
        let tokens = BearerTokens::parse(KEYS, "k".as_ref()).unwrap();
        assert_eq!(tokens.len(), 3);
        let name = |value: &str| tokens.authenticate(&headers(value)).map(|a| a.name().to_owned());
        assert_eq!(name("Bearer aaaaaaaaaaaaaaaaaaaa").as_deref(), Some("alice"));
        assert_eq!(name("bearer cccccccccccccccccccc").as_deref(), Some("alice"));
        assert_eq!(name("Bearer bbbbbbbbbbbbbbbbbbbb").as_deref(), Some("bob"));
        assert_eq!(name("Bearer bbbbbbbbbbbbbbbbbbb"), None);
        assert_eq!(name("Basic bbbbbbbbbbbbbbbbbbbb"), None);
        assert_eq!(name("Bearer "), None);
        assert_eq!(name("Bearer"), None);
        assert!(tokens.authenticate(&HeaderMap::new()).is_none());
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_tokens() {
        let error = |text: &str| BearerTokens::parse(text, "k".as_ref()).unwrap_err().to_string();
        assert!(error("").contains("no keys"));
        assert!(error("alice\n").contains("line 1"));
        assert!(error("alice tok en\n").contains("3 fields"));
        assert!(error("al/ice aaaaaaaaaaaaaaaaaaaa\n").contains("[A-Za-z0-9._@-]"));
        let short = error("alice shortsecret1\n");
        assert!(short.contains("at least 16") && !short.contains("shortsecret1"), "{short}");
        let duplicate = error("alice aaaaaaaaaaaaaaaaaaaa\nbob aaaaaaaaaaaaaaaaaaaa\n");
        assert!(duplicate.contains("line 2") && !duplicate.contains("aaaa"), "{duplicate}");
    }

    #[test]
    fn an_open_keys_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, KEYS).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = BearerTokens::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("mode 0640") && error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(BearerTokens::from_file(&path).unwrap().len(), 3);
    }

    #[test]
    fn requests_without_valid_credentials_get_401_and_a_record() {
        let harness = Harness::new();
        let tokens = BearerTokens::parse(KEYS, "k".as_ref()).unwrap();
        let mut service = AuthLayer::new(tokens, harness.enforcer()).layer(harness.echo_actor());

        let response = harness.call(&mut service, get("/x").header("authorization", "Bearer nope").body(()).unwrap());
        assert_eq!(response.status, 401);
        assert_eq!(response.code.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(response.headers["www-authenticate"], "Bearer");
        let denied = harness.last_event();
        assert_eq!((denied.actor.as_str(), denied.action.as_str()), ("anonymous", "request.authenticate"));

        let ok = get("/x").header("authorization", "Bearer bbbbbbbbbbbbbbbbbbbb").body(()).unwrap();
        let response = harness.call(&mut service, ok);
        assert_eq!((response.status, response.body.as_str()), (200, "bob"));
    }
}
