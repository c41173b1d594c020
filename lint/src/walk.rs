//! Walking trees: `.gitignore`, `.ignore` and `.sandguardignore` files are honoured (also outside
//! a git repository), symbolic links are not followed, version-control folders are skipped,
//! configured globs are excluded, binary and oversized files are skipped and counted, and files
//! are checked on several threads. Output order does not depend on the threads: findings are
//! sorted by path, line, column and rule.
//!
//! Hidden files are scanned: `.env`, `.npmrc` and `.github/workflows/*.yml` are where secrets
//! are most often committed.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::{WalkBuilder, WalkState};

use crate::baseline::Baseline;
use crate::engine::{Linter, SourceFile};
use crate::error::LintError;
use crate::finding::Finding;
use crate::language::detect_language;
use crate::rule::Level;

/// Bytes inspected for a NUL to call a file binary (as git and ripgrep do).
const BINARY_SNIFF: usize = 8 << 10;

/// Folders never walked into: version-control metadata.
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".jj"];

/// What a scan found, and what it did not look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings at `warn` or `deny`, sorted by path, line, column and rule.
    pub findings: Vec<Finding>,
    /// Counts.
    pub summary: Summary,
    /// Files or folders that could not be read, one message each.
    pub errors: Vec<String>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files checked.
    pub files: usize,
    /// Findings at `deny`.
    pub errors: usize,
    /// Findings at `warn`.
    pub warnings: usize,
    /// Files skipped for their size.
    pub skipped_large: usize,
    /// Files skipped as binary.
    pub skipped_binary: usize,
    /// Findings hidden because the baseline has them.
    pub baselined: usize,
    /// Matches hidden by `sandguard:allow`.
    pub suppressed: usize,
    /// Files or folders that could not be read.
    pub unreadable: usize,
}

impl Summary {
    /// Files skipped, for either reason.
    pub const fn skipped(&self) -> usize {
        self.skipped_large + self.skipped_binary
    }
}

impl Report {
    /// Hides the findings `baseline` has (each baseline entry hides one finding).
    pub fn apply_baseline(&mut self, baseline: &Baseline) {
        let mut remaining = baseline.counts();
        let before = self.findings.len();
        self.findings.retain(|finding| match remaining.get_mut(&Baseline::key_of(finding)) {
            Some(count) if *count > 0 => {
                *count -= 1;
                false
            }
            _ => true,
        });
        self.summary.baselined += before - self.findings.len();
        self.recount();
    }

    /// Whether a finding is at `deny`.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }

    /// Folds one walked entry in.
    fn add(&mut self, visited: Visited) {
        match visited {
            Visited::Checked { found, .. } => {
                self.summary.files += 1;
                self.summary.suppressed += found.suppressed;
                self.findings.extend(found.findings.into_iter().filter(|f| f.level != Level::Allow));
            }
            Visited::Large => self.summary.skipped_large += 1,
            Visited::Binary => self.summary.skipped_binary += 1,
            Visited::Error(message) => {
                self.summary.unreadable += 1;
                self.errors.push(message);
            }
        }
    }

    pub(crate) fn recount(&mut self) {
        self.summary.errors = self.findings.iter().filter(|f| f.level == Level::Deny).count();
        self.summary.warnings = self.findings.iter().filter(|f| f.level == Level::Warn).count();
    }
}

/// Exclusion globs, gitignore-style, relative to a base folder.
#[derive(Debug)]
pub(crate) struct Excludes {
    base: PathBuf,
    cwd: PathBuf,
    any: GlobSet,
    dirs: GlobSet,
    empty: bool,
}

impl Excludes {
    pub(crate) fn new(base: &Path, globs: &[String]) -> Result<Self, LintError> {
        let cwd = std::env::current_dir().map_err(|e| LintError::io(".", e))?;
        let base = if base.is_absolute() { base.to_owned() } else { cwd.join(base) };
        let mut any = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        for glob in globs {
            let invalid = |why: String| LintError::Invalid(format!("exclude glob `{glob}`: {why}"));
            let (dir_only, anchored, pattern) = gitignore_style(glob).map_err(|e| invalid(e.to_owned()))?;
            let pattern = if anchored { pattern.to_owned() } else { format!("**/{pattern}") };
            let build = |p: &str| {
                GlobBuilder::new(p)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| invalid(e.to_string()))
            };
            any.add(build(&format!("{pattern}/**"))?);
            if dir_only {
                dirs.add(build(&pattern)?);
            } else {
                any.add(build(&pattern)?);
            }
        }
        let build = |set: GlobSetBuilder| set.build().map_err(|e| LintError::Invalid(format!("exclude globs: {e}")));
        Ok(Self { base, cwd, any: build(any)?, dirs: build(dirs)?, empty: globs.is_empty() })
    }

    pub(crate) fn is_excluded(&self, path: &Path, is_dir: bool) -> bool {
        if self.empty {
            return false;
        }
        let absolute = if path.is_absolute() { path.to_owned() } else { self.cwd.join(path) };
        let relative = absolute.strip_prefix(&self.base).unwrap_or(path);
        let relative = relative.strip_prefix(".").unwrap_or(relative);
        self.any.is_match(relative) || (is_dir && self.dirs.is_match(relative))
    }
}

/// Splits a gitignore-style glob into (directory only, anchored, pattern).
fn gitignore_style(glob: &str) -> Result<(bool, bool, &str), &'static str> {
    let glob = glob.trim();
    if glob.starts_with('!') {
        return Err("negated globs are not supported; exclude less instead");
    }
    let dir_only = glob.ends_with('/');
    let glob = glob.trim_end_matches('/');
    let anchored = glob.contains('/');
    let glob = glob.strip_prefix("./").unwrap_or(glob).trim_start_matches('/');
    if glob.is_empty() {
        return Err("the glob is empty");
    }
    Ok((dir_only, anchored, glob))
}

/// How far a running scan has got: handed to the observer of [`Linter::scan_with_progress`]
/// after every file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanProgress {
    /// Files looked at so far (checked, skipped or unreadable).
    pub files: usize,
    /// Bytes of the files checked so far.
    pub bytes: u64,
}

/// What happened to one walked entry.
enum Visited {
    Checked { found: crate::engine::FileFindings, bytes: u64 },
    Large,
    Binary,
    Error(String),
}

impl Linter {
    /// Walks `paths` (the current directory when empty) and checks every file.
    ///
    /// # Errors
    ///
    /// [`LintError::Io`] when a given path does not exist. Files that cannot be read during the
    /// walk do not stop it: they are listed in [`Report::errors`].
    pub fn scan<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Report, LintError> {
        self.scan_with_progress(paths, &mut |_| {})
    }

    /// [`Linter::scan`], calling `observer` on the calling thread after every file: how a
    /// progress line is drawn. The walk runs on worker threads meanwhile.
    ///
    /// ```
    /// use sandguard_lint::Linter;
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("a.py"), "print(1)\n")?;
    /// std::fs::write(dir.path().join("b.sh"), "echo hi\n")?;
    /// let mut seen = Vec::new();
    /// let report = Linter::builder().build()?.scan_with_progress(&[dir.path()], &mut |p| seen.push(p.files))?;
    /// assert_eq!(report.summary.files, 2);
    /// assert_eq!(seen, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Linter::scan`].
    pub fn scan_with_progress<P: AsRef<Path>>(
        &self,
        paths: &[P],
        observer: &mut dyn FnMut(ScanProgress),
    ) -> Result<Report, LintError> {
        let mut roots: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_owned()).collect();
        if roots.is_empty() {
            roots.push(PathBuf::from("."));
        }
        for root in &roots {
            std::fs::symlink_metadata(root).map_err(|e| LintError::io(root, e))?;
        }
        let mut builder = WalkBuilder::new(&roots[0]);
        for root in &roots[1..] {
            builder.add(root);
        }
        let excludes = self.excludes.clone();
        builder
            .hidden(false)
            .require_git(false)
            .follow_links(false)
            .add_custom_ignore_filename(".sandguardignore")
            .threads(self.threads)
            .filter_entry(move |entry| {
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                let vcs = entry.depth() > 0 && entry.file_name().to_str().is_some_and(|name| VCS_DIRS.contains(&name));
                !vcs && !excludes.is_excluded(entry.path(), is_dir)
            });

        let (sender, receiver) = mpsc::channel::<Visited>();
        let walker = builder.build_parallel();
        let mut report = Report::default();
        let mut progress = ScanProgress::default();
        std::thread::scope(|scope| {
            // The walk fills the channel on its own threads while this one folds the results in
            // as they arrive (and reports progress), instead of after the whole walk.
            scope.spawn(move || {
                walker.run(|| {
                    let sender = sender.clone();
                    Box::new(move |entry| {
                        let visited = match entry {
                            Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => {
                                self.visit(entry.path(), &entry)
                            }
                            Ok(_) => return WalkState::Continue,
                            Err(error) => Visited::Error(error.to_string()),
                        };
                        if sender.send(visited).is_err() {
                            return WalkState::Quit;
                        }
                        WalkState::Continue
                    })
                });
            });
            for visited in receiver {
                progress.files += 1;
                if let Visited::Checked { bytes, .. } = &visited {
                    progress.bytes += bytes;
                }
                report.add(visited);
                observer(progress);
            }
        });
        report.findings.sort_by(|a, b| (&a.path, a.line, a.column, &a.rule).cmp(&(&b.path, b.line, b.column, &b.rule)));
        report.errors.sort();
        report.recount();
        Ok(report)
    }

    fn visit(&self, path: &Path, entry: &ignore::DirEntry) -> Visited {
        let display = path.strip_prefix(".").unwrap_or(path);
        let size = match entry.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => return Visited::Error(format!("{}: {error}", display.display())),
        };
        if size > self.max_file_size {
            return Visited::Large;
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => return Visited::Error(format!("{}: {error}", display.display())),
        };
        // The size may have changed since the metadata was read.
        if bytes.len() as u64 > self.max_file_size {
            return Visited::Large;
        }
        if bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0) {
            return Visited::Binary;
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        };
        let language = detect_language(display, &text);
        let bytes = text.len() as u64;
        Visited::Checked { found: self.check(&SourceFile { path: display, language, text: &text }), bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excludes(globs: &[&str]) -> Excludes {
        let globs: Vec<String> = globs.iter().map(|g| (*g).to_owned()).collect();
        Excludes::new(Path::new("/repo"), &globs).unwrap()
    }

    #[test]
    fn gitignore_style_globs() {
        let e = excludes(&["target", "*.min.js", "tests/fixtures/**", "/vendor", "build/"]);
        assert!(e.is_excluded(Path::new("/repo/target"), true));
        assert!(e.is_excluded(Path::new("/repo/crates/x/target/debug/a.rs"), false));
        assert!(e.is_excluded(Path::new("/repo/web/app.min.js"), false));
        assert!(!e.is_excluded(Path::new("/repo/web/app.js"), false));
        assert!(e.is_excluded(Path::new("/repo/tests/fixtures/a/b.py"), false));
        assert!(!e.is_excluded(Path::new("/repo/src/tests/fixtures/a.py"), false));
        assert!(e.is_excluded(Path::new("/repo/vendor/x.rs"), false));
        assert!(!e.is_excluded(Path::new("/repo/src/vendor/x.rs"), false));
        assert!(e.is_excluded(Path::new("/repo/build"), true));
        assert!(!e.is_excluded(Path::new("/repo/build"), false));
        assert!(e.is_excluded(Path::new("/repo/build/out.js"), false));
    }

    #[test]
    fn bad_globs() {
        assert!(Excludes::new(Path::new("/"), &["!keep".to_owned()]).is_err());
        assert!(Excludes::new(Path::new("/"), &["/".to_owned()]).is_err());
        assert!(Excludes::new(Path::new("/"), &["a[".to_owned()]).is_err());
    }
}
