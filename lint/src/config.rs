//! `sandguard.toml`: the `[lint]` section.
//!
//! ```toml
//! [lint]
//! rules = { "jwt" = "warn", "hardcoded-secret" = "deny" }  # or a [lint.rules] table
//! exclude = ["tests/fixtures/**", "*.min.js"]               # gitignore-style, from this file's folder
//! extra_rules = ["ci/our-rules.toml"]                       # from this file's folder
//! max_file_size = "2MiB"                                    # or a number of bytes
//! placeholders = ['^sk_live_0{24}$']                         # regexes: secrets matching are not findings
//! ```
//!
//! Unknown keys are errors (a misspelt key must never silently disable a check), and every error
//! carries its line and column. Rule names are checked against the rules when the linter is
//! built, since `extra_rules` may define them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{ConfigError, ConfigErrors, LintError};
use crate::rule::Level;

/// The file name looked for when no configuration is given.
pub const CONFIG_FILE: &str = "sandguard.toml";

/// A validated `[lint]` section.
#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    /// The folder relative paths and exclude globs are resolved from (the file's folder).
    pub base_dir: Option<PathBuf>,
    /// Rule (or category) levels, in file order.
    pub levels: Vec<ConfigLevel>,
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// Extra rules files, resolved against `base_dir`.
    pub extra_rules: Vec<PathBuf>,
    /// The file size limit, in bytes.
    pub max_file_size: Option<u64>,
    /// Placeholder regexes for every secret rule.
    pub placeholders: Vec<String>,
}

/// `"rule-id" = "level"`, with where it was written.
#[derive(Debug, Clone)]
pub struct ConfigLevel {
    /// The rule id or category.
    pub name: String,
    /// Its level.
    pub level: Level,
    /// Where the name is (the message is empty), to report an unknown name.
    pub(crate) at: ConfigError,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    lint: Option<RawLint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLint {
    #[serde(default)]
    rules: BTreeMap<Spanned<String>, Spanned<Level>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default)]
    extra_rules: Vec<Spanned<String>>,
    max_file_size: Option<Spanned<toml::Value>>,
    #[serde(default)]
    placeholders: Vec<Spanned<String>>,
}

impl LintConfig {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    ///
    /// [`LintError::Io`] when it cannot be read; [`LintError::Config`] with every problem found.
    pub fn load(path: &Path) -> Result<Self, LintError> {
        let text = std::fs::read_to_string(path).map_err(|e| LintError::io(path, e))?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        Self::parse(&path.display().to_string(), &text, &base)
    }

    /// Validates configuration text; `origin` names it in errors, `base_dir` resolves paths.
    ///
    /// ```
    /// use std::path::Path;
    /// use sandguard_lint::LintConfig;
    ///
    /// let config = LintConfig::parse("sandguard.toml", "[lint]\nmax_file_size = \"2MiB\"\n", Path::new("."))?;
    /// assert_eq!(config.max_file_size, Some(2 << 20));
    /// let error = LintConfig::parse("sandguard.toml", "[lint]\nexclud = []\n", Path::new(".")).unwrap_err();
    /// assert!(error.to_string().starts_with("sandguard.toml:2:1: unknown field `exclud`"));
    /// # Ok::<(), sandguard_lint::LintError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`LintError::Config`] with every problem found (a syntax error stops at the first).
    pub fn parse(origin: &str, text: &str, base_dir: &Path) -> Result<Self, LintError> {
        let config_error = |errors| LintError::Config(ConfigErrors(errors));
        let raw: RawFile =
            toml::from_str(text).map_err(|e| config_error(vec![ConfigError::from_toml(origin, text, &e)]))?;
        let mut errors = Vec::new();
        let mut error =
            |span: Range<usize>, message: String| errors.push(ConfigError::at(origin, text, Some(span), message));
        let mut config = Self { base_dir: Some(base_dir.to_owned()), ..Self::default() };
        let Some(lint) = raw.lint else { return Ok(config) };

        let mut levels: Vec<_> = lint.rules.into_iter().collect();
        levels.sort_by_key(|(name, _)| name.span().start);
        for (name, level) in levels {
            let at = ConfigError::at(origin, text, Some(name.span()), String::new());
            config.levels.push(ConfigLevel { name: name.into_inner(), level: level.into_inner(), at });
        }
        for glob in lint.exclude {
            if let Err(e) = crate::walk::Excludes::new(base_dir, std::slice::from_ref(glob.get_ref())) {
                error(glob.span(), e.to_string());
            }
            config.exclude.push(glob.into_inner());
        }
        for file in lint.extra_rules {
            let path = base_dir.join(file.get_ref());
            if !path.is_file() {
                error(file.span(), format!("extra rules file `{}` does not exist", path.display()));
            }
            config.extra_rules.push(path);
        }
        if let Some(size) = lint.max_file_size {
            match parse_size(size.get_ref()) {
                Ok(bytes) => config.max_file_size = Some(bytes),
                Err(why) => error(size.span(), why),
            }
        }
        for placeholder in lint.placeholders {
            if let Err(e) = crate::secret::compile_regex(placeholder.get_ref(), false) {
                error(placeholder.span(), format!("placeholder regex: {e}"));
            }
            config.placeholders.push(placeholder.into_inner());
        }
        errors.sort_by_key(|e| (e.line, e.column));
        if errors.is_empty() { Ok(config) } else { Err(config_error(errors)) }
    }
}

/// A size: a number of bytes, or a string like `"512KiB"`, `"1MiB"`, `"2MB"`, `"100000"`.
fn parse_size(value: &toml::Value) -> Result<u64, String> {
    const EXPECTED: &str = "expected a number of bytes or a string such as \"1MiB\", \"512KiB\", \"2MB\"";
    match value {
        toml::Value::Integer(n) if *n > 0 => Ok(*n as u64),
        toml::Value::String(text) => {
            let text = text.trim();
            let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let number: u64 = number.parse().map_err(|_| format!("max_file_size {text:?}: {EXPECTED}"))?;
            let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" => 1_000,
                "kib" => 1 << 10,
                "m" | "mb" => 1_000_000,
                "mib" => 1 << 20,
                "g" | "gb" => 1_000_000_000,
                "gib" => 1 << 30,
                _ => return Err(format!("max_file_size {text:?}: unknown unit; {EXPECTED}")),
            };
            match number.checked_mul(multiplier) {
                Some(bytes) if bytes > 0 => Ok(bytes),
                _ => Err(format!("max_file_size {text:?}: {EXPECTED}, above zero")),
            }
        }
        _ => Err(format!("max_file_size: {EXPECTED}, above zero")),
    }
}

/// The configuration `run` uses when none is given: `sandguard.toml` in the current directory,
/// else in the single folder being scanned.
pub(crate) fn discover(paths: &[PathBuf]) -> Option<PathBuf> {
    let here = PathBuf::from(CONFIG_FILE);
    if here.is_file() {
        return Some(here);
    }
    match paths {
        [dir] if dir.is_dir() => Some(dir.join(CONFIG_FILE)).filter(|p| p.is_file()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LintConfig, LintError> {
        LintConfig::parse("sandguard.toml", text, Path::new("/repo"))
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Err(LintError::Config(errors)) => errors.errors().iter().map(ToString::to_string).collect(),
            other => panic!("expected config errors, got {other:?}"),
        }
    }

    #[test]
    fn full_config() {
        let config = parse(
            "[lint]\nexclude = [\"target\"]\nmax_file_size = 4096\nplaceholders = ['^x$']\n\n\
             [lint.rules]\n\"jwt\" = \"warn\"\nhardcoded-secret = \"deny\"\n",
        )
        .unwrap();
        let levels: Vec<_> = config.levels.iter().map(|l| (l.name.as_str(), l.level, l.at.line)).collect();
        assert_eq!(levels, [("jwt", Level::Warn, 7), ("hardcoded-secret", Level::Deny, 8)]);
        assert_eq!(config.exclude, ["target"]);
        assert_eq!(config.max_file_size, Some(4096));
        assert_eq!(config.placeholders, ["^x$"]);
        assert_eq!(config.base_dir.as_deref(), Some(Path::new("/repo")));
        assert!(parse("").unwrap().levels.is_empty());
    }

    #[test]
    fn errors_have_positions() {
        assert_eq!(
            errors("[lint]\nrules = { jwt = \"dney\" }\n")[0],
            "sandguard.toml:2:17: unknown variant `dney`, expected one of `allow`, `warn`, `deny`"
        );
        assert_eq!(errors("[lnt]\n")[0], "sandguard.toml:1:2: unknown field `lnt`, expected `lint`");
        assert_eq!(errors("[lint\n").len(), 1);
        let all = errors("[lint]\nmax_file_size = \"1 parsec\"\nexclude = [\"ok\", \"!no\"]\nplaceholders = [\"(\"]\n");
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(all[0].starts_with("sandguard.toml:2:17: max_file_size \"1 parsec\": unknown unit"), "{all:?}");
        assert!(all[1].starts_with("sandguard.toml:3:18: exclude glob `!no`"), "{all:?}");
        assert!(all[2].starts_with("sandguard.toml:4:17: placeholder regex"), "{all:?}");
        assert!(errors("[lint]\nextra_rules = [\"nope.toml\"]\n")[0].contains("does not exist"));
    }

    #[test]
    fn sizes() {
        let size = |s: &str| parse_size(&toml::Value::String(s.into()));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("512 KiB"), Ok(512 << 10));
        assert_eq!(size("2MB"), Ok(2_000_000));
        assert_eq!(size("100"), Ok(100));
        assert!(size("0").is_err());
        assert!(size("MiB").is_err());
        assert!(size("99999999999999999999GiB").is_err());
        assert!(parse_size(&toml::Value::Integer(-1)).is_err());
        assert!(parse_size(&toml::Value::Boolean(true)).is_err());
    }
}
