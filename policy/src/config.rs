//! The TOML policy: parsed with spans, validated with every error reported, compiled once.
//!
//! The walk is done by hand over `toml`'s spanned document rather than through `serde` so that
//! *every* problem is reported at once with its line and column — syntax errors, unknown keys
//! (a misspelt key must never silently disable a guard), values of the wrong type, and values a
//! guard refuses — the way `cargo-deny` reports its configuration.
//!
//! Every key is documented in `examples/policy.toml`.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::egress::EgressPolicy;
use crate::id::IdRules;
use crate::limits::{ByteSize, HumanDuration, ResourceLimits};
use crate::lockout::LockoutConfig;
use crate::path::PathGuard;
use crate::policy::{ExecRules, Policy};
use crate::port::{PortPolicy, PortRange};
use crate::rate::Quota;

/// One problem in a policy file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or the name given to [`Policy::from_toml`]).
    pub origin: String,
    /// 1-based line; 0 when the problem concerns the whole file (e.g. it cannot be read).
    pub line: usize,
    /// 1-based column, counted in characters; 0 with `line` 0.
    pub column: usize,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.origin, self.line, self.column, self.message)
        }
    }
}

/// Every problem found in a policy file, in the order they appear in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn io(origin: &str, error: &std::io::Error) -> Self {
        Self(vec![ConfigError {
            origin: origin.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read the policy: {error}"),
        }])
    }

    /// The problems.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// The keys each section accepts; the walk reports anything else as unknown.
const SECTIONS: &[(&str, &[&str])] = &[
    ("sandbox_id", &["reserved"]),
    ("paths", &["roots"]),
    ("ports", &["allow", "reserved"]),
    ("egress", &["schemes", "allow_hosts", "ports"]),
    ("exec", &["shell", "max_command_bytes", "max_env_vars", "deny_env"]),
    ("limits", &["timeout", "memory", "pids", "cpus", "file_size", "disk", "output", "open_files"]),
    ("rate_limit", &["enabled", "quota", "burst"]),
    ("lockout", &["enabled", "max_failures", "window", "lock_for"]),
    ("redact", &["patterns", "secret_env"]),
];

/// The only policy format version so far.
const VERSION: i64 = 1;

pub(crate) fn compile(text: &str, origin: &str) -> Result<Policy, ConfigErrors> {
    let mut ctx = Ctx::new(text, origin);
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The recovered document is a guess; walking it would report phantom keys.
        for error in &syntax_errors {
            let span = error.span().unwrap_or(0..0);
            ctx.error(span, error.message().trim().to_owned());
        }
        return ctx.finish().map(|()| Policy::default());
    }

    let root = document.get_ref();
    let mut policy = Policy::builder();
    let defaults = policy.clone().build();

    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        if name == "version" {
            if let Some(version) = ctx.integer(value, "version")
                && version != VERSION
            {
                ctx.error(value.span(), format!("unsupported policy version {version}; this sandguard reads version {VERSION}"));
            }
            continue;
        }
        let Some((_, keys)) = SECTIONS.iter().find(|(section, _)| *section == name) else {
            let mut expected: Vec<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
            expected.push("version");
            ctx.unknown(key, "at the top level", &expected);
            continue;
        };
        let Some(table) = value.get_ref().as_table() else {
            ctx.error(value.span(), format!("`{name}` must be a table ([{name}]), found {}", value.get_ref().type_str()));
            continue;
        };
        for (key, _) in table.iter() {
            if !keys.contains(&key.get_ref().as_ref()) {
                ctx.unknown(key, &format!("in [{name}]"), keys);
            }
        }
        policy = match name {
            "sandbox_id" => section_sandbox_id(&mut ctx, table, policy),
            "paths" => section_paths(&mut ctx, table, policy),
            "ports" => section_ports(&mut ctx, table, policy),
            "egress" => section_egress(&mut ctx, table, policy),
            "exec" => section_exec(&mut ctx, table, policy),
            "limits" => section_limits(&mut ctx, table, policy, defaults.limits()),
            "rate_limit" => section_rate_limit(&mut ctx, table, policy, defaults.rate_limit()),
            "lockout" => section_lockout(&mut ctx, table, policy, defaults.lockout()),
            "redact" => section_redact(&mut ctx, table, policy),
            _ => policy,
        };
    }
    ctx.finish().map(|()| policy.build())
}

fn section_sandbox_id(ctx: &mut Ctx<'_>, table: &DeTable<'_>, policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    match table.get("reserved") {
        Some(value) => {
            let names = ctx.strings(value, "sandbox_id.reserved");
            policy.ids(IdRules::new(names.iter().map(|(_, name)| name.as_str())))
        }
        None => policy,
    }
}

fn section_paths(ctx: &mut Ctx<'_>, table: &DeTable<'_>, policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    let Some(value) = table.get("roots") else { return policy };
    let roots = ctx.strings(value, "paths.roots");
    let mut ok = true;
    for (span, root) in &roots {
        if let Err(error) = PathGuard::new([root]) {
            ctx.error(span.clone(), error.to_string());
            ok = false;
        }
    }
    if roots.is_empty() && value.get_ref().is_array() {
        ctx.error(value.span(), "`paths.roots` must list at least one root; an empty list would refuse every path".to_owned());
        return policy;
    }
    if !ok {
        return policy;
    }
    match PathGuard::new(roots.iter().map(|(_, root)| root)) {
        Ok(guard) => policy.paths(guard),
        Err(error) => {
            ctx.error(value.span(), error.to_string());
            policy
        }
    }
}

fn section_ports(ctx: &mut Ctx<'_>, table: &DeTable<'_>, policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    let defaults = PortPolicy::default();
    let allow = match table.get("allow") {
        Some(value) => ctx.port_ranges(value, "ports.allow"),
        None => Some(defaults.allowed_ranges().to_vec()),
    };
    let reserved = match table.get("reserved") {
        Some(value) => ctx.port_ranges(value, "ports.reserved").map(|ranges| {
            ranges.iter().flat_map(|range| range.start()..=range.end()).collect::<Vec<u16>>()
        }),
        None => Some(defaults.reserved().to_vec()),
    };
    match (allow, reserved) {
        (Some(allow), Some(reserved)) => policy.ports(PortPolicy::new(allow, reserved)),
        _ => policy,
    }
}

fn section_egress(ctx: &mut Ctx<'_>, table: &DeTable<'_>, policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    let schemes = match table.get("schemes") {
        Some(value) => ctx.strings(value, "egress.schemes"),
        None => vec![(0..0, "http".to_owned()), (0..0, "https".to_owned())],
    };
    let hosts = table.get("allow_hosts").map(|value| ctx.strings(value, "egress.allow_hosts")).unwrap_or_default();
    let mut ok = true;
    let ports = match table.get("ports") {
        Some(value) => {
            let ranges = ctx.port_ranges(value, "egress.ports");
            ok &= ranges.is_some();
            ranges
        }
        None => None,
    };
    // Validate entries one by one first, so each bad entry is reported at its own position.
    for (span, scheme) in schemes.iter().filter(|(span, _)| !span.is_empty()) {
        if let Err(error) = EgressPolicy::new([scheme], std::iter::empty::<&str>(), ports.clone()) {
            ctx.error(span.clone(), error.to_string());
            ok = false;
        }
    }
    for (span, host) in &hosts {
        if let Err(error) = EgressPolicy::new(std::iter::empty::<&str>(), [host], ports.clone()) {
            ctx.error(span.clone(), error.to_string());
            ok = false;
        }
    }
    if !ok {
        return policy;
    }
    match EgressPolicy::new(schemes.iter().map(|(_, s)| s), hosts.iter().map(|(_, h)| h), ports) {
        Ok(egress) => policy.egress(egress),
        Err(error) => {
            let span = table.get("allow_hosts").map(Spanned::span).unwrap_or(0..0);
            ctx.error(span, error.to_string());
            policy
        }
    }
}

fn section_exec(ctx: &mut Ctx<'_>, table: &DeTable<'_>, policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    let defaults = ExecRules::default();
    let shell = table.get("shell").and_then(|v| ctx.boolean(v, "exec.shell")).unwrap_or(defaults.shell());
    let max_command_bytes = table
        .get("max_command_bytes")
        .and_then(|v| ctx.size(v, "exec.max_command_bytes"))
        .map_or(Some(defaults.max_command_bytes()), |size| usize::try_from(size.0).ok())
        .unwrap_or(usize::MAX);
    let max_env_vars = table
        .get("max_env_vars")
        .and_then(|v| ctx.unsigned(v, "exec.max_env_vars", u64::from(u32::MAX)))
        .map_or(defaults.max_env_vars(), |n| usize::try_from(n).unwrap_or(usize::MAX));
    let deny_env = table.get("deny_env").map(|v| ctx.strings(v, "exec.deny_env")).unwrap_or_default();
    for (span, name) in &deny_env {
        let valid = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            ctx.error(span.clone(), format!("{name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"));
        }
    }
    policy.exec(ExecRules::new(shell, max_command_bytes, max_env_vars, deny_env.iter().map(|(_, name)| name)))
}

fn section_limits(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    policy: crate::PolicyBuilder,
    defaults: &ResourceLimits,
) -> crate::PolicyBuilder {
    let mut limits = *defaults;
    if let Some(v) = table.get("timeout").and_then(|v| ctx.duration(v, "limits.timeout")) {
        limits.timeout = v;
    }
    if let Some(v) = table.get("memory").and_then(|v| ctx.size(v, "limits.memory")) {
        limits.memory = v.0;
    }
    if let Some(v) = table.get("pids").and_then(|v| ctx.unsigned(v, "limits.pids", u64::from(u32::MAX))) {
        limits.pids = u32::try_from(v).unwrap_or(u32::MAX);
    }
    if let Some(v) = table.get("cpus").and_then(|v| ctx.number(v, "limits.cpus")) {
        limits.cpus = v;
    }
    if let Some(v) = table.get("file_size").and_then(|v| ctx.size(v, "limits.file_size")) {
        limits.file_size = v.0;
    }
    if let Some(v) = table.get("disk").and_then(|v| ctx.size(v, "limits.disk")) {
        limits.disk = v.0;
    }
    if let Some(v) = table.get("output").and_then(|v| ctx.size(v, "limits.output")) {
        limits.output = v.0;
    }
    if let Some(v) = table.get("open_files").and_then(|v| ctx.unsigned(v, "limits.open_files", u64::from(u32::MAX))) {
        limits.open_files = u32::try_from(v).unwrap_or(u32::MAX);
    }
    match limits.validate() {
        Ok(()) => policy.limits(limits),
        Err(error) => {
            let span = table_span(table);
            ctx.error(span, format!("[limits]: {error}"));
            policy
        }
    }
}

fn section_rate_limit(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    policy: crate::PolicyBuilder,
    defaults: Option<Quota>,
) -> crate::PolicyBuilder {
    let enabled = table.get("enabled").and_then(|v| ctx.boolean(v, "rate_limit.enabled")).unwrap_or(true);
    let quota = match table.get("quota") {
        Some(value) => ctx.parsed::<Quota>(value, "rate_limit.quota", "a rate such as \"20/s\", \"600/min\" or \"1000/h\""),
        None => defaults,
    };
    let burst = table.get("burst").and_then(|v| ctx.unsigned(v, "rate_limit.burst", u64::from(u32::MAX)));
    let Some(mut quota) = quota else { return policy };
    if let Some(burst) = burst {
        quota.burst = u32::try_from(burst).unwrap_or(u32::MAX);
    }
    if let Err(error) = Quota::new(quota.per_period, quota.period, quota.burst) {
        ctx.error(table_span(table), format!("[rate_limit]: {error}"));
        return policy;
    }
    policy.rate_limit(enabled.then_some(quota))
}

fn section_lockout(
    ctx: &mut Ctx<'_>,
    table: &DeTable<'_>,
    policy: crate::PolicyBuilder,
    defaults: Option<LockoutConfig>,
) -> crate::PolicyBuilder {
    let base = defaults.unwrap_or_default();
    let enabled = table.get("enabled").and_then(|v| ctx.boolean(v, "lockout.enabled")).unwrap_or(true);
    let max_failures = table
        .get("max_failures")
        .and_then(|v| ctx.unsigned(v, "lockout.max_failures", u64::from(u32::MAX)))
        .map_or(base.max_failures, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let window = table.get("window").and_then(|v| ctx.duration(v, "lockout.window")).unwrap_or(base.window);
    let lock_for = table.get("lock_for").and_then(|v| ctx.duration(v, "lockout.lock_for")).unwrap_or(base.lock_for);
    match LockoutConfig::new(max_failures, window, lock_for) {
        Ok(config) => policy.lockout(enabled.then_some(config)),
        Err(error) => {
            ctx.error(table_span(table), format!("[lockout]: {error}"));
            policy
        }
    }
}

fn section_redact(ctx: &mut Ctx<'_>, table: &DeTable<'_>, mut policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    if let Some(on) = table.get("patterns").and_then(|v| ctx.boolean(v, "redact.patterns")) {
        policy = policy.redact_patterns(on);
    }
    if let Some(value) = table.get("secret_env") {
        let names = ctx.strings(value, "redact.secret_env");
        policy = policy.secret_env(names.into_iter().map(|(_, name)| name));
    }
    policy
}

/// The span of a whole table: from its first key to its last value.
fn table_span(table: &DeTable<'_>) -> Range<usize> {
    let start = table.iter().map(|(k, _)| k.span().start).min().unwrap_or(0);
    let end = table.iter().map(|(_, v)| v.span().end).max().unwrap_or(start);
    start..end
}

/// Collects errors while the walk goes on, and turns byte offsets into lines and columns.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    errors: Vec<(usize, ConfigError)>,
}

impl<'a> Ctx<'a> {
    fn new(text: &'a str, origin: &'a str) -> Self {
        Self { text, origin, errors: Vec::new() }
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        let offset = span.start.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        self.errors.push((offset, ConfigError { origin: self.origin.to_owned(), line, column, message }));
    }

    fn unknown(&mut self, key: &Spanned<std::borrow::Cow<'_, str>>, place: &str, expected: &[&str]) {
        let name = key.get_ref().as_ref();
        let hint = closest(name, expected).map(|best| format!(" (did you mean `{best}`?)")).unwrap_or_default();
        self.error(
            key.span(),
            format!("unknown key `{name}` {place}{hint}; expected one of: {}", expected.join(", ")),
        );
    }

    fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|(offset, _)| *offset);
        self.errors.dedup();
        Err(ConfigErrors(self.errors.into_iter().map(|(_, e)| e).collect()))
    }

    fn type_error(&mut self, value: &Spanned<DeValue<'_>>, key: &str, expected: &str) {
        self.error(value.span(), format!("`{key}` must be {expected}, found {}", value.get_ref().type_str()));
    }

    fn boolean(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<bool> {
        let found = value.get_ref().as_bool();
        if found.is_none() {
            self.type_error(value, key, "a boolean (true or false)");
        }
        found
    }

    fn integer(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<i64> {
        let parsed = value.get_ref().as_integer().and_then(|n| i64::from_str_radix(n.as_str(), n.radix()).ok());
        if parsed.is_none() {
            self.type_error(value, key, "an integer");
        }
        parsed
    }

    fn unsigned(&mut self, value: &Spanned<DeValue<'_>>, key: &str, max: u64) -> Option<u64> {
        let n = self.integer(value, key)?;
        match u64::try_from(n) {
            Ok(n) if n <= max => Some(n),
            _ => {
                self.error(value.span(), format!("`{key}` must be between 0 and {max}, found {n}"));
                None
            }
        }
    }

    fn number(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<f64> {
        let parsed = match value.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).ok().map(|n| n as f64),
            _ => None,
        };
        if parsed.is_none() {
            self.type_error(value, key, "a number");
        }
        parsed
    }

    fn string<'v>(&mut self, value: &'v Spanned<DeValue<'_>>, key: &str) -> Option<&'v str> {
        let found = value.get_ref().as_str();
        if found.is_none() {
            self.type_error(value, key, "a string");
        }
        found
    }

    fn parsed<T>(&mut self, value: &Spanned<DeValue<'_>>, key: &str, expected: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(text) = value.get_ref().as_str() else {
            self.type_error(value, key, expected);
            return None;
        };
        match text.parse::<T>() {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.error(value.span(), format!("`{key}`: {error}"));
                None
            }
        }
    }

    fn size(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<ByteSize> {
        if let DeValue::Integer(_) = value.get_ref() {
            let n = self.unsigned(value, key, u64::MAX)?;
            return Some(ByteSize(n));
        }
        self.parsed::<ByteSize>(value, key, "a size such as \"512MiB\" or a number of bytes")
    }

    fn duration(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<Duration> {
        if let DeValue::Integer(_) = value.get_ref() {
            self.error(
                value.span(),
                format!("`{key}` must be a duration string with a unit, such as \"30s\" or \"500ms\""),
            );
            return None;
        }
        self.parsed::<HumanDuration>(value, key, "a duration such as \"30s\"").map(|d| d.0)
    }

    /// The strings of an array, each with its span; non-strings are reported and skipped.
    fn strings(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Vec<(Range<usize>, String)> {
        let Some(items) = value.get_ref().as_array() else {
            self.type_error(value, key, "an array of strings");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            if let Some(text) = self.string(item, key) {
                out.push((item.span(), text.to_owned()));
            }
        }
        out
    }

    /// Port ranges from an array of integers (`8080`) and strings (`"9000-9010"`); `None` when
    /// any entry is bad (each bad entry reported).
    fn port_ranges(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<Vec<PortRange>> {
        let Some(items) = value.get_ref().as_array() else {
            self.type_error(value, key, "an array of ports (8080) and port ranges (\"9000-9010\")");
            return None;
        };
        let mut ranges = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            let range = match item.get_ref() {
                DeValue::Integer(_) => self
                    .unsigned(item, key, u64::from(u16::MAX))
                    .and_then(|port| u16::try_from(port).ok())
                    .map(|port| PortRange::new(port, port)),
                DeValue::String(text) => Some(text.parse::<PortRange>()),
                _ => {
                    self.type_error(item, key, "a port (8080) or a port range (\"9000-9010\")");
                    None
                }
            };
            match range {
                Some(Ok(range)) => ranges.push(range),
                Some(Err(error)) => {
                    self.error(item.span(), format!("`{key}`: {error}"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(ranges)
    }
}

/// The expected key closest to `name` by edit distance, when it is close enough to be a typo.
fn closest<'e>(name: &str, expected: &[&'e str]) -> Option<&'e str> {
    expected
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len().max(name.len()) / 3 + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
