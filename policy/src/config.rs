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
    ("sandbox", &["allow_weaker", "network"]),
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
                ctx.error(
                    value.span(),
                    format!("unsupported policy version {version}; this sandguard reads version {VERSION}"),
                );
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
            ctx.error(
                value.span(),
                format!("`{name}` must be a table ([{name}]), found {}", value.get_ref().type_str()),
            );
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
            "sandbox" => section_sandbox(&mut ctx, table, policy),
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
    if value.get_ref().as_array().is_some_and(|items| items.is_empty()) {
        ctx.error(
            value.span(),
            "`paths.roots` must list at least one root; an empty list would refuse every path".to_owned(),
        );
        return policy;
    }
    if !ok || roots.is_empty() {
        // Every bad entry (or a value that is not an array) is already reported.
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
    // Listed ports are reserved on top of the defaults (the control plane's), never instead of
    // them: a policy reserving one more port must not free 3000.
    let reserved = match table.get("reserved") {
        Some(value) => ctx.port_ranges(value, "ports.reserved").map(|ranges| {
            let listed = ranges.iter().flat_map(|range| range.start()..=range.end());
            defaults.reserved().iter().copied().chain(listed).collect::<Vec<u16>>()
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
    // Validate entries one by one first, so each bad entry is reported at its own position. When
    // `ports` is given but bad (already reported), schemes are checked as if it were given, so a
    // scheme without a default port is not blamed for ports the file does list.
    let ports_for_schemes = ports.clone().or_else(|| table.get("ports").map(|_| Vec::new()));
    for (span, scheme) in schemes.iter().filter(|(span, _)| !span.is_empty()) {
        if let Err(error) = EgressPolicy::new([scheme], std::iter::empty::<&str>(), ports_for_schemes.clone()) {
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
        Some(value) => {
            ctx.parsed::<Quota>(value, "rate_limit.quota", "a rate such as \"20/s\", \"600/min\" or \"1000/h\"")
        }
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

fn section_sandbox(ctx: &mut Ctx<'_>, table: &DeTable<'_>, mut policy: crate::PolicyBuilder) -> crate::PolicyBuilder {
    if let Some(on) = table.get("allow_weaker").and_then(|v| ctx.boolean(v, "sandbox.allow_weaker")) {
        policy = policy.allow_weaker(on);
    }
    if let Some(value) = table.get("network")
        && let Some(mode) = ctx.string(value, "sandbox.network")
    {
        match mode {
            "none" => policy = policy.network(crate::NetworkPolicy::None),
            "proxy" => {
                // The proxy applies the [egress] section; it is compiled there.
                ctx.error(
                    value.span(),
                    "`sandbox.network = \"proxy\"` is not available yet: the egress proxy is not built; use \"none\""
                        .to_owned(),
                );
            }
            other => {
                ctx.error(value.span(), format!("`sandbox.network` must be \"none\" or \"proxy\", found {other:?}"))
            }
        }
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
        self.error(key.span(), format!("unknown key `{name}` {place}{hint}; expected one of: {}", expected.join(", ")));
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

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use proptest::prelude::*;

    use super::*;
    use crate::{Action, CommandSpec, ExecRequest};

    const EXAMPLE: &str = include_str!("../../examples/policy.toml");

    fn compile_ok(text: &str) -> Policy {
        Policy::from_toml(text, "test.toml").unwrap_or_else(|errors| panic!("{text:?} must compile:\n{errors}"))
    }

    /// Every error of a policy that must not compile, as `(line, column, message)`.
    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        match Policy::from_toml(text, "test.toml") {
            Ok(_) => panic!("{text:?} must be refused"),
            Err(errors) => errors.0.into_iter().map(|e| (e.line, e.column, e.message)).collect(),
        }
    }

    /// The one error of a policy that must not compile.
    fn only_error(text: &str) -> (usize, usize, String) {
        let mut errors = errors(text);
        assert_eq!(errors.len(), 1, "{text:?} must give exactly one error: {errors:#?}");
        errors.remove(0)
    }

    /// Asserts that `text` fails with one error at `line:column` whose message contains `needle`.
    #[track_caller]
    fn assert_one_error(text: &str, line: usize, column: usize, needle: &str) {
        let (found_line, found_column, message) = only_error(text);
        assert_eq!((found_line, found_column), (line, column), "{text:?}: {message}");
        assert!(message.contains(needle), "{text:?}: {message:?} should contain {needle:?}");
    }

    /// `text` with its only occurrence of `from` replaced, so an edit of the example that no longer
    /// applies fails loudly instead of testing nothing.
    #[track_caller]
    fn edit(text: &str, from: &str, to: &str) -> String {
        assert_eq!(text.matches(from).count(), 1, "{from:?} must occur exactly once");
        text.replacen(from, to, 1)
    }

    fn env_denial(policy: &Policy, name: &str) -> Option<&'static str> {
        let env = [(name.to_owned(), "1".to_owned())];
        let request = ExecRequest { command: CommandSpec::Shell("true"), cwd: None, env: &env, limits: None };
        policy.authorize(&Action::Exec(request)).err().map(|denial| denial.code())
    }

    #[test]
    fn the_example_policy_compiles_with_its_own_values() {
        let policy = compile_ok(EXAMPLE);

        for name in ["billing", "status", "admin"] {
            assert_eq!(policy.ids().check(name).unwrap_err().code(), "RESERVED_SANDBOX_ID", "{name}");
        }
        assert!(Policy::default().ids().check("billing").is_ok(), "`billing` is reserved by the file, not by default");

        for name in ["PYTHONSTARTUP", "NODE_OPTIONS", "LD_PRELOAD"] {
            assert_eq!(env_denial(&policy, name), Some("ENV_NOT_ALLOWED"), "{name}");
        }
        assert_eq!(env_denial(&Policy::default(), "NODE_OPTIONS"), None, "NODE_OPTIONS is denied by the file");

        assert_eq!(policy.egress().schemes(), ["http", "https"]);
        assert_eq!(policy.egress().ports(), None);
        assert_eq!(policy.egress().check_url("https://example.com/").unwrap_err().code(), "EGRESS_HOST_NOT_ALLOWED");
        assert_eq!(policy.ports().reserved(), [3000]);
        assert_eq!(policy.paths().roots(), ["/workspace", "/tmp", "/home"].map(std::path::PathBuf::from));
        assert_eq!(policy.exec().max_command_bytes(), 64 * 1024);
        assert_eq!(policy.limits(), &ResourceLimits::default());
        assert_eq!(policy.rate_limit(), Some(Quota::new(20, Duration::from_secs(1), 40).unwrap()));
        assert_eq!(policy.lockout(), Some(LockoutConfig::default()));
        assert_eq!(policy.secret_env(), ["OPENAI_API_KEY", "DATABASE_URL"]);
    }

    #[test]
    fn listed_reserved_ports_add_to_the_control_plane_port() {
        let policy = compile_ok("version = 1\n[ports]\nreserved = [8080, \"9000-9001\"]\n");
        assert_eq!(policy.ports().reserved(), [3000, 8080, 9000, 9001]);
        assert_eq!(policy.ports().check(3000).unwrap_err().code(), "RESERVED_PORT");
        let empty = compile_ok("version = 1\n[ports]\nreserved = []\n");
        assert_eq!(empty.ports().reserved(), [3000], "an empty list does not free the control plane");
    }

    /// The example documents the defaults, so each of its keys is changed here to prove it is read.
    #[test]
    fn every_section_of_the_example_is_read() {
        let mut text = EXAMPLE.to_owned();
        for (from, to) in [
            (r#"roots = ["/workspace", "/tmp", "/home"]"#, r#"roots = ["/data"]"#),
            ("reserved = [3000]", r#"reserved = [8080, "9000-9001"]"#),
            (r#"schemes = ["http", "https"]"#, r#"schemes = ["https"]"#),
            ("allow_hosts = []", r#"allow_hosts = ["*.example.com"]"#),
            ("shell = true", "shell = false"),
            (r#"max_command_bytes = "64KiB""#, "max_command_bytes = 100"),
            ("max_env_vars = 128", "max_env_vars = 3"),
            (r#"timeout = "30s""#, r#"timeout = "1m30s""#),
            ("cpus = 1.0", "cpus = 2"),
            (r#"quota = "20/s""#, r#"quota = "3/min""#),
            ("burst = 40", "burst = 1"),
            ("max_failures = 5", "max_failures = 2"),
            (r#"lock_for = "15m""#, r#"lock_for = "1h""#),
            ("patterns = true", "patterns = false"),
        ] {
            text = edit(&text, from, to);
        }
        let policy = compile_ok(&text);

        assert_eq!(policy.paths().roots(), [std::path::PathBuf::from("/data")]);
        assert_eq!(policy.ports().reserved(), [3000, 8080, 9000, 9001]);
        assert_eq!(policy.egress().schemes(), ["https"]);
        assert!(policy.egress().allows("https://api.example.com/"));
        assert!(!policy.exec().shell());
        assert_eq!(policy.exec().max_command_bytes(), 100);
        assert_eq!(policy.exec().max_env_vars(), 3);
        assert_eq!(policy.limits().timeout, Duration::from_secs(90));
        assert_eq!(policy.limits().cpus, 2.0);
        assert_eq!(policy.rate_limit(), Some(Quota::new(3, Duration::from_secs(60), 1).unwrap()));
        let lockout = policy.lockout().expect("lockout stays enabled");
        assert_eq!((lockout.max_failures, lockout.lock_for), (2, Duration::from_secs(3600)));
        assert!(!policy.redact_patterns());
    }

    #[test]
    fn disabled_rate_limit_and_lockout_are_off() {
        let policy = compile_ok("[rate_limit]\nenabled = false\n[lockout]\nenabled = false\n");
        assert_eq!(policy.rate_limit(), None);
        assert_eq!(policy.lockout(), None);
    }

    #[test]
    fn documents_without_settings_decide_like_the_defaults() {
        let all_sections_empty: String = SECTIONS.iter().map(|(name, _)| format!("[{name}]\n")).collect();
        let defaults = Policy::default();
        let argv = [OsString::from("ls")];
        let loader = [("LD_PRELOAD".to_owned(), "/tmp/x.so".to_owned())];
        let exec = |command, env| Action::Exec(ExecRequest { command, cwd: None, env, limits: None });
        let actions = [
            Action::ReadFile { path: "/workspace/a/../b".as_ref() },
            Action::ReadFile { path: "/etc/passwd".as_ref() },
            Action::WriteFile { path: "/tmp/out".as_ref(), len: 64 << 20 },
            Action::WriteFile { path: "/tmp/out".as_ref(), len: (64 << 20) + 1 },
            Action::ExposePort { port: 3000 },
            Action::ExposePort { port: 80 },
            Action::ExposePort { port: 8080 },
            Action::Connect { url: "https://example.com/" },
            Action::Connect { url: "http://169.254.169.254/" },
            exec(CommandSpec::Shell("echo hi"), &[]),
            exec(CommandSpec::Argv(&argv), &loader),
        ];

        for text in ["", "# nothing but a comment\n", "version = 1\n", &all_sections_empty] {
            let policy = compile_ok(text);
            assert_eq!(policy.ids(), defaults.ids(), "{text:?}");
            assert_eq!(policy.paths(), defaults.paths(), "{text:?}");
            assert_eq!(policy.ports(), defaults.ports(), "{text:?}");
            assert_eq!(policy.egress().schemes(), defaults.egress().schemes(), "{text:?}");
            assert_eq!(policy.egress().ports(), defaults.egress().ports(), "{text:?}");
            assert_eq!(policy.exec(), defaults.exec(), "{text:?}");
            assert_eq!(policy.limits(), defaults.limits(), "{text:?}");
            assert_eq!(policy.rate_limit(), defaults.rate_limit(), "{text:?}");
            assert_eq!(policy.lockout(), defaults.lockout(), "{text:?}");
            assert_eq!(policy.redact_patterns(), defaults.redact_patterns(), "{text:?}");
            assert_eq!(policy.secret_env(), defaults.secret_env(), "{text:?}");
            for action in &actions {
                assert_eq!(policy.authorize(action), defaults.authorize(action), "{text:?}: {action:?}");
            }
        }
    }

    #[test]
    fn an_unknown_top_level_key_is_reported_with_the_accepted_ones() {
        let (line, column, message) = only_error("version = 1\ncolour = \"blue\"\n");
        assert_eq!((line, column), (2, 1));
        assert!(message.starts_with("unknown key `colour` at the top level; expected one of: "), "{message}");
        assert!(message.contains("exec") && message.contains("version"), "{message}");

        assert_one_error("[exce]\nshell = true\n", 1, 2, "unknown key `exce` at the top level (did you mean `exec`?)");
    }

    #[test]
    fn an_unknown_key_in_a_section_gets_a_did_you_mean_hint() {
        assert_one_error("[exec]\nshel = true\n", 2, 1, "unknown key `shel` in [exec] (did you mean `shell`?)");
        assert_one_error(
            "[limits]\n  memroy = \"1GiB\"\n",
            2,
            3,
            "unknown key `memroy` in [limits] (did you mean `memory`?)",
        );
        assert_one_error("[exec.sandbox]\n", 1, 7, "unknown key `sandbox` in [exec]");

        let (_, _, message) = only_error("[exec]\nbanana = true\n");
        assert!(!message.contains("did you mean"), "no hint for a key that resembles nothing: {message}");
        assert!(message.ends_with("expected one of: shell, max_command_bytes, max_env_vars, deny_env"), "{message}");
    }

    #[test]
    fn values_of_the_wrong_type_are_reported_at_the_value() {
        let cases = [
            ("[exec]\nshell = \"yes\"\n", 2, 9, "`exec.shell` must be a boolean (true or false), found string"),
            ("[exec]\nmax_env_vars = 1.5\n", 2, 16, "`exec.max_env_vars` must be an integer, found float"),
            ("[limits]\ncpus = \"1\"\n", 2, 8, "`limits.cpus` must be a number, found string"),
            (
                "[redact]\nsecret_env = \"TOKEN\"\n",
                2,
                14,
                "`redact.secret_env` must be an array of strings, found string",
            ),
            ("[sandbox_id]\nreserved = [\"ok\", 7]\n", 2, 19, "`sandbox_id.reserved` must be a string, found integer"),
            ("[ports]\nallow = [true]\n", 2, 10, "`ports.allow` must be a port (8080) or a port range"),
            ("exec = 5\n", 1, 8, "`exec` must be a table ([exec]), found integer"),
            ("[[exec]]\nshell = true\n", 1, 1, "`exec` must be a table ([exec]), found array"),
        ];
        for (text, line, column, needle) in cases {
            assert_one_error(text, line, column, needle);
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // `é` is two bytes; the integer is the 20th character of its line.
        assert_one_error("[redact]\nsecret_env = [\"é\", 5]\n", 2, 20, "must be a string, found integer");
    }

    #[test]
    fn values_a_guard_refuses_are_reported_at_the_value() {
        let cases = [
            ("[limits]\nmemory = \"512M\"\n", 2, 10, "`limits.memory`: invalid size \"512M\""),
            ("[exec]\nmax_command_bytes = -5\n", 2, 21, "`exec.max_command_bytes` must be between 0 and"),
            ("[limits]\ntimeout = \"30 s\"\n", 2, 11, "`limits.timeout`: invalid duration \"30 s\""),
            ("[lockout]\nwindow = \"5 minutes\"\n", 2, 10, "`lockout.window`: invalid duration"),
            (
                "[rate_limit]\nquota = \"20/fortnight\"\n",
                2,
                9,
                "`rate_limit.quota`: invalid rate quota \"20/fortnight\"",
            ),
            ("[ports]\nallow = [70000]\n", 2, 10, "`ports.allow` must be between 0 and 65535, found 70000"),
            ("[ports]\nallow = [0]\n", 2, 10, "`ports.allow`: invalid port range"),
            ("[ports]\nreserved = [\"9010-9000\"]\n", 2, 13, "`ports.reserved`: invalid port range \"9010-9000\""),
            ("[egress]\nports = [443, \"x\"]\n", 2, 15, "`egress.ports`: invalid port range \"x\""),
            ("[egress]\nallow_hosts = [\"ok.example\", \"exa mple.com\"]\n", 2, 30, "invalid egress rule"),
            ("[egress]\nschemes = [\"https\", \"wss\"]\n", 2, 21, "this scheme has no default port"),
            ("[paths]\nroots = [\"/workspace\", \"relative\"]\n", 2, 24, "invalid path root \"relative\""),
            (
                "[exec]\ndeny_env = [\"OK\", \"NOT-VALID\"]\n",
                2,
                19,
                "\"NOT-VALID\" is not an environment variable name",
            ),
            ("[limits]\npids = 0\n", 2, 1, "[limits]: invalid pids limit 0"),
            ("[lockout]\nmax_failures = 0\n", 2, 1, "[lockout]: invalid lockout max_failures 0"),
            ("[rate_limit]\nburst = 0\n", 2, 1, "[rate_limit]: invalid rate quota"),
        ];
        for (text, line, column, needle) in cases {
            assert_one_error(text, line, column, needle);
        }
    }

    #[test]
    fn durations_must_carry_a_unit() {
        assert_one_error("[limits]\ntimeout = 30\n", 2, 11, "`limits.timeout` must be a duration string with a unit");
        assert_one_error(
            "[lockout]\nlock_for = 900\n",
            2,
            12,
            "`lockout.lock_for` must be a duration string with a unit",
        );
        assert_eq!(compile_ok("[limits]\ntimeout = \"30s\"\n").limits().timeout, Duration::from_secs(30));
    }

    #[test]
    fn only_version_1_is_read() {
        compile_ok("version = 1\n");
        assert_one_error("version = 2\n", 1, 11, "unsupported policy version 2; this sandguard reads version 1");
        assert_one_error("version = \"1\"\n", 1, 11, "`version` must be an integer, found string");
    }

    #[test]
    fn empty_roots_are_refused() {
        assert_one_error("[paths]\nroots = []\n", 2, 9, "`paths.roots` must list at least one root");
    }

    /// A list holding only bad entries is not an empty list: only the bad entries are reported.
    #[test]
    fn a_bad_root_is_not_also_reported_as_an_empty_list() {
        assert_one_error("[paths]\nroots = [5]\n", 2, 10, "`paths.roots` must be a string, found integer");
    }

    /// A bad `ports` entry must not make a scheme look as if it lacked its ports.
    #[test]
    fn a_bad_egress_port_is_not_also_blamed_on_the_schemes() {
        assert_one_error("[egress]\nschemes = [\"wss\"]\nports = [70000]\n", 3, 10, "`egress.ports` must be between");
        let policy = compile_ok("[egress]\nschemes = [\"wss\"]\nports = [8443]\nallow_hosts = [\"example.com\"]\n");
        assert!(policy.egress().allows("wss://example.com:8443/"));
    }

    #[test]
    fn syntax_errors_are_reported_alone() {
        assert_one_error("[exec\nshell = true\n", 1, 6, "unclosed table");

        // The unknown key and the bad type before the syntax error would be reported in a file
        // that parses; here the recovered document is a guess, so only the syntax is reported.
        let errors = errors("colour = 1\n[exec]\nshell = \"yes\"\nmax_env_vars = = 3\n");
        assert!(!errors.is_empty());
        for (line, _, message) in &errors {
            assert_eq!(*line, 4, "only the syntax error's line is reported: {errors:#?}");
            assert!(!message.contains("colour") && !message.contains("exec.shell"), "{errors:#?}");
        }
    }

    #[test]
    fn every_error_of_a_file_is_reported_in_file_order() {
        let text = "\
colour = 1
[exec]
shell = 1
shel = true
[limits]
timeout = 30
memory = \"lots\"
[nope]
[paths]
roots = []
";
        let expected = [
            (1, 1, "unknown key `colour` at the top level"),
            (3, 9, "`exec.shell` must be a boolean"),
            (4, 1, "unknown key `shel` in [exec]"),
            (6, 11, "`limits.timeout` must be a duration string"),
            (7, 10, "`limits.memory`: invalid size"),
            (8, 2, "unknown key `nope` at the top level"),
            (10, 9, "`paths.roots` must list at least one root"),
        ];
        let errors = errors(text);
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for ((line, column, message), (want_line, want_column, needle)) in errors.iter().zip(expected) {
            assert_eq!((*line, *column), (want_line, want_column), "{message}");
            assert!(message.contains(needle), "{message:?} should contain {needle:?}");
        }
    }

    #[test]
    fn errors_display_like_a_compiler() {
        let errors = Policy::from_toml("version = 2\n[exec]\nshel = true\n", "policies/team.toml").unwrap_err();
        let shown = errors.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(lines[0].starts_with("policies/team.toml:1:11: unsupported policy version 2"), "{shown}");
        assert!(lines[1].starts_with("policies/team.toml:3:1: unknown key `shel`"), "{shown}");
    }

    /// Every name the schema knows: section names, their keys, and `version`.
    fn in_schema(name: &str) -> bool {
        name == "version" || SECTIONS.iter().any(|(section, keys)| *section == name || keys.contains(&name))
    }

    fn section_names() -> Vec<&'static str> {
        SECTIONS.iter().map(|(name, _)| *name).collect()
    }

    /// `text` with `line` inserted before its line number `at` (1-based).
    fn insert_line(text: &str, at: usize, line: &str) -> String {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.insert(at - 1, line);
        lines.join("\n") + "\n"
    }

    /// The 1-based line number of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|line| line == needle).unwrap_or_else(|| panic!("no line {needle:?}")) + 1
    }

    proptest! {
        /// A misspelt or invented key must never be ignored, wherever it is.
        #[test]
        fn an_unknown_key_anywhere_in_a_valid_policy_is_refused(
            key in "[A-Za-z_][A-Za-z0-9_-]{0,24}".prop_filter("an unknown key", |key| !in_schema(key)),
            section in prop::option::of(prop::sample::select(section_names())),
            indent in 0usize..4,
            value in prop::sample::select(vec!["true", "1", "\"x\"", "[]", "{}"]),
        ) {
            // Top-level keys must come before the first table header; a section's right after its own.
            let at = match section {
                None => line_of(EXAMPLE, "[sandbox_id]"),
                Some(name) => line_of(EXAMPLE, &format!("[{name}]")) + 1,
            };
            let text = insert_line(EXAMPLE, at, &format!("{}{key} = {value}", " ".repeat(indent)));

            let errors = Policy::from_toml(&text, "p.toml").expect_err("an unknown key must be refused").0;
            prop_assert_eq!(errors.len(), 1, "{:#?}", errors);
            prop_assert_eq!((errors[0].line, errors[0].column), (at, indent + 1));
            let place = section.map_or("at the top level".to_owned(), |name| format!("in [{name}]"));
            prop_assert!(
                errors[0].message.starts_with(&format!("unknown key `{key}` {place}")),
                "{:?}", errors[0].message
            );
        }
    }
}
