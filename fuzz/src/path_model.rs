//! `path_guard`: `PathGuard::check` against a reference model of lexical path resolution.
//!
//! The model works on a list of components, the way the kernel walks a path: `.` and empty
//! components stay where they are, `..` goes up one level and stays at `/` at the top. A path is
//! inside a root when the root's components are a prefix of the path's. The model checks the
//! refusals in the documented order: empty, longer than `PATH_MAX`, NUL, not absolute.
//!
//! Properties checked on top of agreement with the model: an accepted path is canonical (absolute,
//! no `.`/`..`/empty components, no trailing slash), lies inside a root component-wise, and is a
//! fixed point (checking it again returns it unchanged).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use sandguard_policy::PathGuard;
use sandguard_policy::path::{MAX_PATH_LEN, PathError};

use crate::{Violation, violation};

/// Root sets the target chooses from with the input's first byte; the last slot takes a root from
/// the input instead.
pub const ROOT_SETS: [&[&str]; 5] = [
    &["/workspace", "/tmp", "/home"],
    &["/"],
    &["/srv/data", "/srv/data/nested", "/srv/data-evil/.."],
    &["/a/../b/./c//", "/..", "/x"],
    &[],
];

/// What the model says about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelVerdict {
    /// Refused with this error code, before any root is consulted.
    Malformed(&'static str),
    /// Canonicalised to these components; `inside` tells whether a root holds them.
    Resolved { components: Vec<Vec<u8>>, inside: bool },
}

/// The components of an absolute path after resolving `.`, `..` and empty ones.
pub fn resolve(path: &[u8]) -> Vec<Vec<u8>> {
    let mut stack: Vec<Vec<u8>> = Vec::new();
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                stack.pop();
            }
            name => stack.push(name.to_vec()),
        }
    }
    stack
}

/// The model's verdict on `path` under `roots` (roots as given, resolved like paths).
pub fn model(path: &[u8], roots: &[Vec<u8>]) -> ModelVerdict {
    if path.is_empty() {
        return ModelVerdict::Malformed("PATH_EMPTY");
    }
    if path.len() > MAX_PATH_LEN {
        return ModelVerdict::Malformed("PATH_TOO_LONG");
    }
    if path.contains(&0) {
        return ModelVerdict::Malformed("PATH_CONTAINS_NUL");
    }
    if path[0] != b'/' {
        return ModelVerdict::Malformed("PATH_NOT_ABSOLUTE");
    }
    let components = resolve(path);
    let inside = roots.iter().any(|root| components.starts_with(&resolve(root)));
    ModelVerdict::Resolved { components, inside }
}

fn join(components: &[Vec<u8>]) -> Vec<u8> {
    if components.is_empty() {
        return b"/".to_vec();
    }
    components.iter().flat_map(|c| [&b"/"[..], c].concat()).collect()
}

/// Compares one verdict of the guard with the model.
pub fn check_verdict(
    guard: &PathGuard,
    path: &[u8],
    roots: &[Vec<u8>],
    verdict: &Result<PathBuf, PathError>,
) -> Result<(), Violation> {
    let shown = path.escape_ascii().to_string();
    match (model(path, roots), verdict) {
        (ModelVerdict::Malformed(code), Err(error)) if error.code() == code => Ok(()),
        (ModelVerdict::Malformed(code), other) => {
            violation!("{shown:?}: the model refuses it with {code}, the guard says {other:?}")
        }
        (ModelVerdict::Resolved { inside: false, .. }, Err(error)) if error.code() == "PATH_OUTSIDE_ROOTS" => Ok(()),
        (ModelVerdict::Resolved { components, inside: true }, Ok(out)) => {
            let out = out.as_os_str().as_bytes();
            let expected = join(&components);
            if out != expected {
                violation!(
                    "{shown:?}: canonical form {:?}, the model says {:?}",
                    out.escape_ascii().to_string(),
                    expected.escape_ascii().to_string()
                );
            }
            let canonical = out[0] == b'/'
                && (out == b"/" || out[1..].split(|&b| b == b'/').all(|c| !matches!(c, b"" | b"." | b"..")));
            if !canonical {
                violation!("{shown:?}: the accepted form {:?} is not canonical", out.escape_ascii().to_string());
            }
            match guard.check(OsStr::from_bytes(out)) {
                Ok(again) if again.as_os_str().as_bytes() == out => {}
                again => violation!("{shown:?}: checking the accepted form again gave {again:?}"),
            }
            if !guard.contains(std::path::Path::new(OsStr::from_bytes(out))) {
                violation!("{shown:?}: `contains` denies the canonical form the guard accepted");
            }
            Ok(())
        }
        (model, verdict) => violation!("{shown:?}: the model says {model:?}, the guard says {verdict:?}"),
    }
}

/// The target's oracle. The first byte picks a root set from [`ROOT_SETS`]; with the last choice
/// the rest of the input is `root NUL path` (a root from the input), otherwise the path itself.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    let Some((&choice, rest)) = data.split_first() else { return Ok(()) };
    let choice = usize::from(choice) % (ROOT_SETS.len() + 1);
    let (roots, path): (Vec<Vec<u8>>, &[u8]) = match ROOT_SETS.get(choice) {
        Some(set) => (set.iter().map(|r| r.as_bytes().to_vec()).collect(), rest),
        None => {
            let at = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            (vec![rest[..at].to_vec()], rest.get(at + 1..).unwrap_or_default())
        }
    };
    let guard = match PathGuard::new(roots.iter().map(|r| OsStr::from_bytes(r))) {
        Ok(guard) => guard,
        Err(error) => {
            // A root is refused exactly when the model refuses it as a path.
            return match roots.iter().find(|root| matches!(model(root, &[]), ModelVerdict::Malformed(_))) {
                Some(_) => Ok(()),
                None => violation!("roots {roots:?} refused though each is a valid absolute path: {error}"),
            };
        }
    };
    if let Some(bad) = roots.iter().find(|root| matches!(model(root, &[]), ModelVerdict::Malformed(_))) {
        violation!("root {:?} accepted though it is not a valid absolute path", bad.escape_ascii().to_string());
    }
    let verdict = guard.check(OsStr::from_bytes(path));
    check_verdict(&guard, path, &roots, &verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<Vec<u8>> {
        vec![b"/workspace".to_vec()]
    }

    #[test]
    fn the_model_resolves_like_the_kernel() {
        assert_eq!(join(&resolve(b"/a/./b//../c/")), b"/a/c");
        assert_eq!(join(&resolve(b"/../..")), b"/");
        assert_eq!(
            model(b"/workspace-evil", &roots()),
            ModelVerdict::Resolved { components: vec![b"workspace-evil".to_vec()], inside: false }
        );
    }

    #[test]
    fn the_oracle_fails_on_wrong_verdicts() {
        let guard = PathGuard::new(["/workspace"]).unwrap();
        // A guard that let a look-alike prefix through, or returned a non-canonical path, is caught.
        let escaped = Ok(PathBuf::from("/workspace-evil"));
        assert!(check_verdict(&guard, b"/workspace-evil", &roots(), &escaped).is_err());
        let dotted = Ok(PathBuf::from("/workspace/./a"));
        assert!(check_verdict(&guard, b"/workspace/./a", &roots(), &dotted).is_err());
        let wrong_place = Ok(PathBuf::from("/workspace"));
        assert!(check_verdict(&guard, b"/workspace/../workspace/a", &roots(), &wrong_place).is_err());
        assert!(check_verdict(&guard, b"/workspace/a", &roots(), &Err(PathError::Empty)).is_err());
        assert!(check(b"\x00/workspace/a/../b").is_ok());
    }
}
