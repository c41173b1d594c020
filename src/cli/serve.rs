//! `sandguard serve`: the sandbox HTTP API (see [`crate::service`]).
//!
//! Exit status: 0 after a clean shutdown (SIGINT or SIGTERM: every sandbox destroyed, the audit
//! log flushed); 2 when it cannot start (a keys file that group or others can read, an
//! unreadable or invalid file, an address it cannot listen on), with one line on stderr; 1 when
//! the shutdown failed to destroy a sandbox or flush the log.

use std::io::Write;
use std::sync::Arc;

use crate::Enforcer;
use crate::audit::{AuditLog, ChainKey, FileSink, FileSinkOptions, NewEvent, Outcome};
use crate::middleware::auth::BearerTokens;
use crate::policy::Policy;
use crate::service::SandboxService;

use super::{EXIT_DENIED, EXIT_OK, ServeArgs, fail};

pub(crate) fn run(args: &ServeArgs) -> u8 {
    let (service, tokens) = match prepare(args) {
        Ok(prepared) => prepared,
        Err(message) => return fail(message),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format_args!("cannot start the runtime: {error}")),
    };
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        // The bound address (port 0 picks one) on stdout, for scripts and tests.
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on http://{address}").and_then(|()| stdout.flush());
        axum::serve(listener, service.router(tokens))
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|error| format!("serving failed: {error}"))
    });
    // Whatever ended the serving, the sandboxes go and the log is flushed.
    let shutdown = service.shutdown();
    drop(runtime);
    match (served, shutdown) {
        (Err(message), _) => fail(message),
        (Ok(()), Err(error)) => {
            let _ = writeln!(std::io::stderr(), "sandguard: shutdown: {error}");
            EXIT_DENIED
        }
        (Ok(()), Ok(())) => EXIT_OK,
    }
}

fn prepare(args: &ServeArgs) -> Result<(Arc<SandboxService>, BearerTokens), String> {
    let tokens = BearerTokens::from_file(&args.keys).map_err(|error| error.to_string())?;
    let policy = match &args.policy {
        Some(file) => Policy::load(file).map_err(|errors| format!("invalid policy:\n{errors}"))?,
        None => Policy::default(),
    };
    let mut options = FileSinkOptions::new();
    if let Some(key_file) = &args.audit_key {
        let key = crate::read_key_file(key_file).map_err(|error| error.to_string())?;
        options = options.key(ChainKey::new(&key).map_err(|error| format!("audit key: {error}"))?);
    }
    let sink = FileSink::open(&args.audit_log, options)
        .map_err(|error| format!("audit log {}: {error}", args.audit_log.display()))?;
    let enforcer = Arc::new(Enforcer::new(policy, AuditLog::new(sink)));
    remove_abandoned_cgroups(&enforcer)?;
    Ok((Arc::new(SandboxService::new(enforcer)), tokens))
}

/// A service killed outright (SIGKILL, a crash) could not remove its sandboxes' cgroups; they go
/// now, and the audit log says how many. Without cgroups (a host where the policy lets sandboxes
/// run weaker) there is nothing to remove.
fn remove_abandoned_cgroups(enforcer: &Enforcer) -> Result<(), String> {
    match crate::exec::Sandbox::remove_abandoned_cgroups(None) {
        Ok(0) => Ok(()),
        Ok(removed) => enforcer
            .audit()
            .record(
                NewEvent::new("sandguard", "cgroup.cleanup", Outcome::Allowed).detail("abandoned_directories", removed),
            )
            .map(drop)
            .map_err(|error| format!("audit log: {error}")),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "sandguard: abandoned sandbox cgroups not removed: {error}");
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        // Without signal handlers the service could not stop cleanly; stop now instead.
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
