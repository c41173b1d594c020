//! `sandguard check id|path|port|url`: ask one guard about many values.

use std::ffi::OsString;
use std::io::{BufRead, Write};

use crate::policy::{EgressPolicy, IdRules, PathGuard, Policy, PortPolicy, PortRange};
use serde::Serialize;

use super::{CheckArgs, CheckKind, EXIT_DENIED, EXIT_OK, EXIT_USAGE, fail};

/// One value to check: its text as shown back to the user, and its exact bytes.
struct Input {
    text: String,
    raw: OsString,
}

/// The answer for one input; serialised as the `--json` contract.
#[derive(Serialize)]
struct Verdict<'a> {
    input: &'a str,
    allowed: bool,
    normalized: Option<String>,
    code: Option<&'static str>,
    message: Option<String>,
}

/// The guard asked, built once from the flags and the policy.
enum Guard {
    Id(IdRules),
    Path(PathGuard),
    Port(PortPolicy),
    Url(EgressPolicy),
}

impl Guard {
    fn decide<'a>(&self, input: &'a Input) -> Verdict<'a> {
        let outcome: Result<String, (&'static str, String)> = match self {
            Self::Id(rules) => rules.check(&input.text).map(|id| id.to_string()).map_err(|e| (e.code(), e.to_string())),
            Self::Path(guard) => guard
                .check(&input.raw)
                .map(|path| path.to_string_lossy().into_owned())
                .map_err(|e| (e.code(), e.to_string())),
            Self::Port(ports) => {
                ports.check_str(&input.text).map(|port| port.to_string()).map_err(|e| (e.code(), e.to_string()))
            }
            Self::Url(egress) => {
                egress.check_url(&input.text).map(|target| target.to_string()).map_err(|e| (e.code(), e.to_string()))
            }
        };
        match outcome {
            Ok(normalized) => {
                Verdict { input: &input.text, allowed: true, normalized: Some(normalized), code: None, message: None }
            }
            Err((code, message)) => Verdict {
                input: &input.text,
                allowed: false,
                normalized: None,
                code: Some(code),
                message: Some(message),
            },
        }
    }
}

pub(crate) fn run(args: &CheckArgs) -> u8 {
    let guard = match build_guard(args) {
        Ok(guard) => guard,
        Err(status) => return status,
    };
    let mut inputs: Vec<Input> =
        args.values.iter().map(|raw| Input { text: raw.to_string_lossy().into_owned(), raw: raw.clone() }).collect();
    if args.stdin {
        match read_stdin_inputs() {
            Ok(mut more) => inputs.append(&mut more),
            Err(message) => return fail(message),
        }
    }
    if inputs.is_empty() {
        return fail("nothing to check: give values or --stdin");
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut all_allowed = true;
    for input in &inputs {
        let verdict = guard.decide(input);
        all_allowed &= verdict.allowed;
        let written = if args.json { write_json(&mut out, &verdict) } else { write_human(&mut out, &verdict) };
        if written.is_err() {
            return EXIT_USAGE;
        }
    }
    if out.flush().is_err() {
        return EXIT_USAGE;
    }
    if all_allowed { EXIT_OK } else { EXIT_DENIED }
}

fn write_json(out: &mut impl Write, verdict: &Verdict<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, verdict)?;
    out.write_all(b"\n")
}

fn write_human(out: &mut impl Write, verdict: &Verdict<'_>) -> std::io::Result<()> {
    // Debug formatting escapes control characters, so a hostile input cannot rewrite the terminal.
    match (&verdict.normalized, verdict.code, &verdict.message) {
        (Some(normalized), _, _) => writeln!(out, "allowed {:?} -> {normalized:?}", verdict.input),
        (None, Some(code), Some(message)) => writeln!(out, "denied  {:?}: {code}: {message}", verdict.input),
        _ => writeln!(out, "denied  {:?}", verdict.input),
    }
}

/// Reads one JSON string per non-blank line.
fn read_stdin_inputs() -> Result<Vec<Input>, String> {
    let stdin = std::io::stdin();
    let mut inputs = Vec::new();
    for (index, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let text: String = serde_json::from_str(&line)
            .map_err(|e| format!("stdin line {}: expected one JSON string per line ({e})", index + 1))?;
        inputs.push(Input { raw: OsString::from(&text), text });
    }
    Ok(inputs)
}

fn build_guard(args: &CheckArgs) -> Result<Guard, u8> {
    if !args.roots.is_empty() && args.kind != CheckKind::Path {
        return Err(fail("--root applies to `check path` only"));
    }
    if !args.allow.is_empty() && !matches!(args.kind, CheckKind::Port | CheckKind::Url) {
        return Err(fail("--allow applies to `check port` and `check url` only"));
    }
    let policy = match &args.policy {
        Some(file) => Policy::load(file).map_err(|errors| {
            let _ = writeln!(std::io::stderr(), "{errors}");
            fail(format_args!("invalid policy {}", file.display()))
        })?,
        None => Policy::default(),
    };
    Ok(match args.kind {
        CheckKind::Id => Guard::Id(policy.ids().clone()),
        CheckKind::Path if args.roots.is_empty() => Guard::Path(policy.paths().clone()),
        CheckKind::Path => Guard::Path(PathGuard::new(args.roots.iter().map(OsString::as_os_str)).map_err(fail)?),
        CheckKind::Port if args.allow.is_empty() => Guard::Port(policy.ports().clone()),
        CheckKind::Port => {
            let ranges =
                args.allow.iter().map(|spec| spec.parse::<PortRange>()).collect::<Result<Vec<_>, _>>().map_err(fail)?;
            Guard::Port(PortPolicy::new(ranges, policy.ports().reserved().to_vec()))
        }
        CheckKind::Url if args.allow.is_empty() && args.policy.is_some() => Guard::Url(policy.egress().clone()),
        CheckKind::Url => {
            Guard::Url(EgressPolicy::new(["http", "https"], args.allow.iter(), None::<Vec<PortRange>>).map_err(fail)?)
        }
    })
}
