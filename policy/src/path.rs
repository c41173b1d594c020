//! Path validation: lexical canonicalisation and component-wise root matching.
//!
//! OWNER: helper B.

use std::ffi::OsStr;
use std::path::PathBuf;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is not absolute. Code `PATH_NOT_ABSOLUTE`.
    #[error("path {path:?} is not absolute")]
    NotAbsolute {
        /// The refused path, lossily as text.
        path: String,
    },
}

impl PathError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// Allows paths that canonicalise lexically to a place inside one of its roots.
#[derive(Debug, Clone)]
pub struct PathGuard {
    roots: Vec<PathBuf>,
}

impl Default for PathGuard {
    /// Roots `/workspace`, `/tmp`, `/home`.
    fn default() -> Self {
        todo!()
    }
}

impl PathGuard {
    /// A guard over `roots`, each absolute; roots are canonicalised lexically.
    pub fn new<I, P>(roots: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<OsStr>,
    {
        let _ = roots.into_iter();
        todo!()
    }
    /// The canonical roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }
    /// Returns the canonical form of `path` when it lies inside a root.
    pub fn check(&self, path: &OsStr) -> Result<PathBuf, PathError> {
        let _ = path;
        todo!()
    }
}

/// Lexical canonicalisation of an absolute path: `.`, `..` and repeated `/` resolved, never above `/`.
pub fn normalize(path: &OsStr) -> Result<PathBuf, PathError> {
    let _ = path;
    todo!()
}
