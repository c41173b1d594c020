//! `sandguard run`: one command in a fresh sandbox, its output streamed, its exit status passed on.
//!
//! Exit status: the command's own; 124 when the timeout fired; 128+N when signal N ended it; 125
//! when sandguard itself failed or refused (one line on stderr says why).

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;

use crate::audit::{AuditLog, FileSink, FileSinkOptions, MemorySink};
use crate::exec::Stream;
use crate::policy::{ByteSize, CommandSpec, ExecRequest, HumanDuration, Policy, SandboxId};
use crate::{Enforcer, Sandbox};

use super::RunArgs;

/// sandguard failed or refused.
const EXIT_SANDGUARD: u8 = 125;
/// The timeout fired (as `timeout(1)`).
const EXIT_TIMEOUT: u8 = 124;

pub(crate) fn run(args: &RunArgs) -> u8 {
    match try_run(args) {
        Ok(status) => status,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "sandguard: {message}");
            EXIT_SANDGUARD
        }
    }
}

fn try_run(args: &RunArgs) -> Result<u8, String> {
    let policy = match &args.policy {
        Some(file) => Policy::load(file).map_err(|errors| format!("invalid policy:\n{errors}"))?,
        None => Policy::default(),
    };
    let mut limits = *policy.limits();
    if let Some(timeout) = &args.timeout {
        limits.timeout = timeout.parse::<HumanDuration>().map_err(|e| format!("--timeout: {e}"))?.0;
    }
    if let Some(memory) = &args.memory {
        limits.memory = memory.parse::<ByteSize>().map_err(|e| format!("--memory: {e}"))?.0;
    }
    if let Some(pids) = args.pids {
        limits.pids = pids;
    }
    if let Some(disk) = &args.disk {
        limits.disk = disk.parse::<ByteSize>().map_err(|e| format!("--disk: {e}"))?.0;
    }
    let mut env = Vec::with_capacity(args.env.len());
    for pair in &args.env {
        let (name, value) = pair.split_once('=').ok_or_else(|| format!("--env {pair:?}: expected NAME=VALUE"))?;
        env.push((name.to_owned(), value.to_owned()));
    }
    let audit = match &args.audit_log {
        Some(path) => {
            AuditLog::new(FileSink::open(path, FileSinkOptions::new()).map_err(|e| format!("audit log: {e}"))?)
        }
        None => AuditLog::new(Arc::new(MemorySink::new())),
    };
    let enforcer = Arc::new(Enforcer::new(policy, audit));

    let argv: Vec<OsString> = args.command.clone();
    let request = ExecRequest {
        command: CommandSpec::Argv(&argv),
        cwd: Some(args.workdir.as_os_str()),
        env: &env,
        limits: Some(&limits),
    };
    // A command the policy refuses must not cost a sandbox: `run_once` decides first (recording
    // the refusal) and builds the sandbox only for an allowed command.
    let id = SandboxId::generate("run").map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut sink = |stream: Stream, chunk: &[u8]| {
        // A closed stdout (e.g. `| head`) must not stop the command's accounting; ignore it.
        let _ = match stream {
            Stream::Stdout => stdout.lock().write_all(chunk).and_then(|()| stdout.lock().flush()),
            Stream::Stderr => stderr.lock().write_all(chunk),
        };
    };
    let result = Sandbox::run_once(Arc::clone(&enforcer), &actor(), id, &request, &[], &mut sink);
    enforcer.audit().flush().map_err(|e| format!("audit log: {e}"))?;
    let output = result.map_err(|e| e.to_string())?.output;

    if output.timed_out {
        return Ok(EXIT_TIMEOUT);
    }
    if let Some(code) = output.exit_code {
        return Ok(u8::try_from(code).unwrap_or(EXIT_SANDGUARD));
    }
    if let Some(signal) = output.signal {
        return Ok(u8::try_from(128 + signal).unwrap_or(EXIT_SANDGUARD));
    }
    Err("the command ended without an exit status".to_owned())
}

/// Who the audit log names as the actor: the invoking user.
fn actor() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| format!("uid-{}", uid()))
}

fn uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:").and_then(|ids| ids.split_whitespace().next()?.parse().ok()))
        })
        .unwrap_or(u32::MAX)
}
