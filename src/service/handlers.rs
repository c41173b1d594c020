//! The route handlers: request JSON in, one guarded facade call on the blocking pool, JSON out.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::OsString;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, FromRequestParts, Json, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{StatusCode, header};
use sandguard_exec::process::ProcessStatus;
use sandguard_exec::{Output, Stream};
use sandguard_policy::{Action, CommandSpec, ExecRequest, ResourceLimits, SandboxId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{ApiError, Hosted, MethodRouter, OPENAPI, SandboxService, delete, get, lock, post, put};
use crate::Sandbox;
use crate::middleware::Actor;
use crate::middleware::ownership::OwnershipStore;

type ServiceState = State<Arc<SandboxService>>;
type Reply = Result<Response, ApiError>;

/// The handler of one row of [`ROUTES`](super::ROUTES).
///
/// # Panics
/// For a row without a handler: a programming error the router test catches.
pub(super) fn route(method: &str, path: &str, file_size: u64) -> MethodRouter<Arc<SandboxService>> {
    // Uploads may be as large as the policy's file size; the policy itself refuses larger ones.
    let upload_limit = usize::try_from(file_size).unwrap_or(usize::MAX).saturating_add(1);
    match (method, path) {
        ("POST", "/v1/sandboxes") => post(create_sandbox),
        ("DELETE", "/v1/sandboxes/{id}") => delete(destroy_sandbox),
        ("POST", "/v1/sandboxes/{id}/exec") => post(exec),
        ("POST", "/v1/sandboxes/{id}/exec/stream") => post(exec_stream),
        ("POST", "/v1/sandboxes/{id}/sessions") => post(create_session),
        ("DELETE", "/v1/sandboxes/{id}/sessions/{sid}") => delete(delete_session),
        ("PUT", "/v1/sandboxes/{id}/files") => put(write_file).layer(DefaultBodyLimit::max(upload_limit)),
        ("GET", "/v1/sandboxes/{id}/files") => get(read_file),
        ("DELETE", "/v1/sandboxes/{id}/files") => delete(remove_file),
        ("GET", "/v1/sandboxes/{id}/files/list") => get(list_files),
        ("POST", "/v1/sandboxes/{id}/files/mkdir") => post(make_dir),
        ("POST", "/v1/sandboxes/{id}/processes") => post(start_process),
        ("GET", "/v1/sandboxes/{id}/processes/{pid}") => get(process_status),
        ("GET", "/v1/sandboxes/{id}/processes/{pid}/logs") => get(process_logs),
        ("DELETE", "/v1/sandboxes/{id}/processes/{pid}") => delete(kill_process),
        _ => panic!("no handler for {method} {path}"),
    }
}

pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "no such route; see /openapi.json")
}

/// The authenticated actor (the middleware always puts one; without it, refuse).
fn actor(extension: Option<Extension<Actor>>) -> Result<Actor, ApiError> {
    extension
        .map(|Extension(actor)| actor)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "no authenticated actor"))
}

/// The live sandbox the request's path names (validated, and its ownership checked, by the
/// middleware), with its ID; refused with 404 `SANDBOX_NOT_FOUND` when there is none.
struct LiveSandbox {
    id: SandboxId,
    hosted: Arc<Hosted>,
}

impl FromRequestParts<Arc<SandboxService>> for LiveSandbox {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &Arc<SandboxService>) -> Result<Self, ApiError> {
        let gone = || ApiError::new(StatusCode::NOT_FOUND, "SANDBOX_NOT_FOUND", "no such sandbox");
        let id = parts.extensions.get::<SandboxId>().cloned().ok_or_else(gone)?;
        let hosted = service.hosted(&id).ok_or_else(gone)?;
        Ok(Self { id, hosted })
    }
}

/// The `path` (and `recursive`) query of the file routes; refused with 400 `INVALID_QUERY`.
struct FileQuery(PathQuery);

impl<S: Send + Sync> FromRequestParts<S> for FileQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(query) = Query::<PathQuery>::from_request_parts(parts, state).await.map_err(bad_query)?;
        Ok(Self(query))
    }
}

/// Runs `work` on the live sandbox, on the blocking pool.
async fn on_sandbox<T, F>(hosted: Arc<Hosted>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Hosted, &Sandbox) -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let guard = hosted.sandbox.read().unwrap_or_else(PoisonError::into_inner);
        let sandbox = guard
            .as_ref()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "SANDBOX_NOT_FOUND", "the sandbox was destroyed"))?;
        work(&hosted, sandbox)
    })
    .await
    .map_err(|error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", format!("the operation failed: {error}"))
    })?
}

fn bad_json(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "BODY_TOO_LARGE" } else { "INVALID_BODY" };
    ApiError::new(status, code, rejection.body_text())
}

fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", rejection.body_text())
}

fn bad_path(rejection: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PATH_PARAMETER", rejection.body_text())
}

// ---- sandboxes ----

async fn create_sandbox(State(service): ServiceState, actor_ext: Option<Extension<Actor>>) -> Reply {
    let actor = actor(actor_ext)?;
    let enforcer = Arc::clone(&service.enforcer);
    let id = enforcer
        .policy()
        .ids()
        .generate("sb")
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()))?;
    // The slot is taken (empty) under the same lock as the quota check, so concurrent creations
    // cannot exceed the quota; nobody can reach it before the ID is returned.
    let hosted = Arc::new(Hosted {
        owner: actor.name().to_owned(),
        sandbox: RwLock::new(None),
        sessions: Mutex::new(Default::default()),
        processes: Mutex::new(Default::default()),
    });
    {
        let mut sandboxes = lock(&service.sandboxes);
        if sandboxes.len() >= service.limits.sandboxes {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_FULL",
                "the service runs as many sandboxes as it may",
            ));
        }
        let owned = sandboxes.values().filter(|hosted| hosted.owner == actor.name()).count();
        if owned >= service.limits.sandboxes_per_actor {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "QUOTA_EXCEEDED",
                format!("you have {owned} sandboxes, the most allowed; delete one first"),
            ));
        }
        sandboxes.insert(id.clone(), Arc::clone(&hosted));
    }
    let name = actor.name().to_owned();
    let sandbox_id = id.clone();
    let created = tokio::task::spawn_blocking(move || Sandbox::create(enforcer, &name, sandbox_id)).await;
    let sandbox = match created {
        Ok(Ok(sandbox)) => sandbox,
        failed => {
            lock(&service.sandboxes).remove(&id);
            return Err(match failed {
                Ok(Err(error)) => ApiError::from(error),
                _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "creating the sandbox failed"),
            });
        }
    };
    *hosted.sandbox.write().unwrap_or_else(PoisonError::into_inner) = Some(sandbox);
    // Generated from 128 random bits, the ID cannot already be claimed; if it ever were, the
    // new sandbox is destroyed rather than handed to a second owner.
    if !service.owners.claim(&id, actor.name()) {
        lock(&service.sandboxes).remove(&id);
        let _ = tokio::task::spawn_blocking(move || hosted.destroy()).await;
        return Err(ApiError::new(StatusCode::CONFLICT, "SANDBOX_EXISTS", "generated ID already in use; retry"));
    }
    Ok((StatusCode::CREATED, Json(json!({ "id": id.as_str() }))).into_response())
}

async fn destroy_sandbox(State(service): ServiceState, LiveSandbox { id, hosted }: LiveSandbox) -> Reply {
    // Forgotten first, so no new request reaches it while it is destroyed.
    lock(&service.sandboxes).remove(&id);
    service.owners.release(&id);
    tokio::task::spawn_blocking(move || hosted.destroy())
        .await
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", error.to_string()))??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- exec ----

/// A command: a shell command line (a string) or an argument vector (no shell).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CommandBody {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecBody {
    command: CommandBody,
    timeout_ms: Option<u64>,
    env: Option<BTreeMap<String, String>>,
    cwd: Option<String>,
    session: Option<String>,
}

/// An exec request owned, so it can move to the blocking pool.
struct OwnedExec {
    shell: Option<String>,
    argv: Vec<OsString>,
    env: Vec<(String, String)>,
    cwd: Option<OsString>,
    limits: Option<ResourceLimits>,
}

impl OwnedExec {
    fn new(
        service: &SandboxService,
        command: CommandBody,
        timeout_ms: Option<u64>,
        env: Option<BTreeMap<String, String>>,
        cwd: Option<String>,
    ) -> Result<Self, ApiError> {
        let (shell, argv) = match command {
            CommandBody::Shell(line) => (Some(line), Vec::new()),
            CommandBody::Argv(argv) => (None, argv.into_iter().map(OsString::from).collect()),
        };
        Ok(Self {
            shell,
            argv,
            env: env.unwrap_or_default().into_iter().collect(),
            cwd: Some(OsString::from(cwd.unwrap_or_else(|| "/workspace".to_owned()))),
            limits: limits(service, timeout_ms)?,
        })
    }

    fn request(&self) -> ExecRequest<'_> {
        let command = match &self.shell {
            Some(line) => CommandSpec::Shell(line),
            None => CommandSpec::Argv(&self.argv),
        };
        ExecRequest { command, cwd: self.cwd.as_deref(), env: &self.env, limits: self.limits.as_ref() }
    }
}

/// The policy's limits with the asked timeout; the policy refuses one above its own.
fn limits(service: &SandboxService, timeout_ms: Option<u64>) -> Result<Option<ResourceLimits>, ApiError> {
    let Some(ms) = timeout_ms else { return Ok(None) };
    if ms == 0 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "INVALID_TIMEOUT", "timeout_ms must be at least 1"));
    }
    let mut limits = *service.enforcer.policy().limits();
    limits.timeout = Duration::from_millis(ms);
    Ok(Some(limits))
}

fn output_json(output: &Output) -> Value {
    json!({
        "exit_code": output.exit_code,
        "signal": output.signal,
        "stdout": String::from_utf8_lossy(&output.stdout),
        "stderr": String::from_utf8_lossy(&output.stderr),
        "timed_out": output.timed_out,
        "truncated": output.truncated,
        "duration_ms": u64::try_from(output.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

async fn exec(
    State(service): ServiceState,
    LiveSandbox { hosted, .. }: LiveSandbox,
    body: Result<Json<ExecBody>, JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(bad_json)?;
    if let Some(session_id) = body.session {
        if body.env.is_some() || body.cwd.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SESSION_OPTIONS",
                "cwd and env belong to the session: set them when creating it, or with cd and export",
            ));
        }
        let script = match body.command {
            CommandBody::Shell(line) => line,
            CommandBody::Argv(argv) => sandguard_policy::shell::join(&argv)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?
                .into_string()
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_COMMAND", "not UTF-8"))?,
        };
        let limits = limits(&service, body.timeout_ms)?;
        let output = on_sandbox(hosted, move |hosted, sandbox| {
            let session = lock(&hosted.sessions).get(&session_id).cloned().ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND", format!("no session {session_id:?}"))
            })?;
            sandbox.session_exec(&session, &script, limits.as_ref()).map_err(|error| {
                if session.is_alive() {
                    ApiError::from(error)
                } else {
                    ApiError::new(StatusCode::GONE, "SESSION_GONE", "the session's shell has ended; delete it")
                }
            })
        })
        .await?;
        return Ok(Json(output_json(&output)).into_response());
    }
    let request = OwnedExec::new(&service, body.command, body.timeout_ms, body.env, body.cwd)?;
    let result = on_sandbox(hosted, move |_, sandbox| Ok(sandbox.exec(&request.request(), &[])?)).await?;
    Ok(Json(output_json(&result.output)).into_response())
}

/// Server-sent events: `stdout` and `stderr` events (`{"data": text}`) as output arrives, then
/// one `exit` event with the result (the JSON of `exec`), or one `error` event.
async fn exec_stream(
    State(service): ServiceState,
    LiveSandbox { hosted, .. }: LiveSandbox,
    body: Result<Json<ExecBody>, JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(bad_json)?;
    if body.session.is_some() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "SESSION_OPTIONS", "streaming does not run in sessions"));
    }
    let request = OwnedExec::new(&service, body.command, body.timeout_ms, body.env, body.cwd)?;
    // A command the policy refuses is answered with its status, not a stream: ask the policy
    // first (no record), and let the recorded refusal happen through the normal path.
    if service.enforcer.policy().authorize(&Action::Exec(request.request())).is_err() {
        let result = on_sandbox(hosted, move |_, sandbox| Ok(sandbox.exec(&request.request(), &[])?)).await?;
        return Ok(Json(output_json(&result.output)).into_response());
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::task::spawn_blocking(move || {
        let guard = hosted.sandbox.read().unwrap_or_else(PoisonError::into_inner);
        let Some(sandbox) = guard.as_ref() else {
            let _ = sender.blocking_send(error_event("SANDBOX_NOT_FOUND", "the sandbox was destroyed"));
            return;
        };
        let mut forward = |stream: Stream, chunk: &[u8]| {
            let name = match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            };
            let data = json!({ "data": String::from_utf8_lossy(chunk) }).to_string();
            // A client that went away stops receiving; the command still ends by its timeout.
            let _ = sender.blocking_send(Event::default().event(name).data(data));
        };
        let last = match sandbox.exec_streaming(&request.request(), &[], &mut forward) {
            Ok(result) => Event::default().event("exit").data(output_json(&result.output).to_string()),
            Err(error) => {
                let error = ApiError::from(error);
                error_event(error.code, &error.message)
            }
        };
        let _ = sender.blocking_send(last);
    });
    let events = ReceiverStream::new(receiver).map(Ok::<_, Infallible>);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

fn error_event(code: &str, message: &str) -> Event {
    Event::default().event("error").data(json!({ "error": { "code": code, "message": message } }).to_string())
}

// ---- sessions ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    id: String,
    cwd: Option<String>,
    env: Option<BTreeMap<String, String>>,
}

/// Session IDs: 1 to 64 characters of `[A-Za-z0-9_-]`.
fn valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn create_session(
    State(service): ServiceState,
    LiveSandbox { hosted, .. }: LiveSandbox,
    body: Result<Json<SessionBody>, JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(bad_json)?;
    if !valid_session_id(&body.id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_SESSION_ID",
            "session IDs are 1 to 64 characters of [A-Za-z0-9_-]",
        ));
    }
    let max = service.limits.sessions_per_sandbox;
    let session_id = body.id.clone();
    on_sandbox(hosted, move |hosted, sandbox| {
        {
            let sessions = lock(&hosted.sessions);
            if sessions.contains_key(&body.id) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "SESSION_EXISTS",
                    format!("session {:?} exists", body.id),
                ));
            }
            if sessions.len() >= max {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "QUOTA_EXCEEDED",
                    format!("at most {max} sessions per sandbox"),
                ));
            }
        }
        let cwd = OsString::from(body.cwd.unwrap_or_else(|| "/workspace".to_owned()));
        let env: Vec<(String, String)> = body.env.unwrap_or_default().into_iter().collect();
        let session = sandbox.open_session(&cwd, &env)?;
        let mut sessions = lock(&hosted.sessions);
        if sessions.contains_key(&body.id) {
            // Created twice at once: the second is closed again.
            drop(sessions);
            sandbox.close_session(session)?;
            return Err(ApiError::new(StatusCode::CONFLICT, "SESSION_EXISTS", format!("session {:?} exists", body.id)));
        }
        sessions.insert(body.id, Arc::new(session));
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": session_id }))).into_response())
}

async fn delete_session(
    LiveSandbox { hosted, .. }: LiveSandbox,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((_, session_id)) = params.map_err(bad_path)?;
    on_sandbox(hosted, move |hosted, sandbox| {
        let session = lock(&hosted.sessions).remove(&session_id).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND", format!("no session {session_id:?}"))
        })?;
        // A session still running a script closes when that script's call drops it.
        if let Ok(session) = Arc::try_unwrap(session) {
            sandbox.close_session(session)?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- files ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathQuery {
    path: String,
    #[serde(default)]
    recursive: bool,
}

async fn write_file(
    LiveSandbox { hosted, .. }: LiveSandbox,
    FileQuery(query): FileQuery,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let data = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "FILE_TOO_LARGE" } else { "INVALID_BODY" };
        ApiError::new(status, code, rejection.body_text())
    })?;
    on_sandbox(hosted, move |_, sandbox| Ok(sandbox.write_file(query.path.as_ref(), &data, None)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn read_file(LiveSandbox { hosted, .. }: LiveSandbox, FileQuery(query): FileQuery) -> Reply {
    let data = on_sandbox(hosted, move |_, sandbox| Ok(sandbox.read_file(query.path.as_ref())?)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

async fn remove_file(LiveSandbox { hosted, .. }: LiveSandbox, FileQuery(query): FileQuery) -> Reply {
    on_sandbox(hosted, move |_, sandbox| Ok(sandbox.remove_file(query.path.as_ref(), query.recursive)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_files(LiveSandbox { hosted, .. }: LiveSandbox, FileQuery(query): FileQuery) -> Reply {
    let entries =
        on_sandbox(hosted, move |_, sandbox| Ok(sandbox.list_files(query.path.as_ref(), query.recursive)?)).await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let kind = match entry.kind {
                sandguard_exec::files::EntryKind::File => "file",
                sandguard_exec::files::EntryKind::Dir => "dir",
                sandguard_exec::files::EntryKind::Symlink => "symlink",
                sandguard_exec::files::EntryKind::Other => "other",
            };
            json!({ "name": entry.name.to_string_lossy(), "kind": kind, "size": entry.size, "mode": entry.mode })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MkdirBody {
    path: String,
    #[serde(default)]
    recursive: bool,
}

async fn make_dir(LiveSandbox { hosted, .. }: LiveSandbox, body: Result<Json<MkdirBody>, JsonRejection>) -> Reply {
    let Json(body) = body.map_err(bad_json)?;
    on_sandbox(hosted, move |_, sandbox| Ok(sandbox.make_dir(body.path.as_ref(), body.recursive)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- processes ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessBody {
    command: CommandBody,
    timeout_ms: Option<u64>,
    env: Option<BTreeMap<String, String>>,
    cwd: Option<String>,
}

async fn start_process(
    State(service): ServiceState,
    LiveSandbox { hosted, .. }: LiveSandbox,
    body: Result<Json<ProcessBody>, JsonRejection>,
) -> Reply {
    let Json(body) = body.map_err(bad_json)?;
    let request = OwnedExec::new(&service, body.command, body.timeout_ms, body.env, body.cwd)?;
    let max = service.limits.processes_per_sandbox;
    let pid = on_sandbox(hosted, move |hosted, sandbox| {
        if lock(&hosted.processes).len() >= max {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "QUOTA_EXCEEDED",
                format!("at most {max} processes per sandbox; delete some"),
            ));
        }
        let process = sandbox.start_process(&request.request(), &[])?;
        let pid = process.id();
        lock(&hosted.processes).insert(pid, Arc::new(process));
        Ok(pid)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "pid": pid, "status": "running" }))).into_response())
}

/// The process a path names.
fn process(hosted: &Hosted, pid: &str) -> Result<Arc<crate::Process>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND", format!("no process {pid:?}"));
    let pid: u64 = pid.parse().map_err(|_| not_found())?;
    lock(&hosted.processes).get(&pid).cloned().ok_or_else(not_found)
}

async fn process_status(
    LiveSandbox { hosted, .. }: LiveSandbox,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((_, pid)) = params.map_err(bad_path)?;
    let process = process(&hosted, &pid)?;
    let body = match process.status() {
        ProcessStatus::Running => json!({ "pid": process.id(), "status": "running" }),
        ProcessStatus::Exited(end) => json!({
            "pid": process.id(), "status": "exited",
            "exit_code": end.code, "signal": end.signal, "timed_out": end.timed_out,
        }),
        _ => json!({ "pid": process.id(), "status": "gone" }),
    };
    Ok(Json(body).into_response())
}

async fn process_logs(
    LiveSandbox { hosted, .. }: LiveSandbox,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((_, pid)) = params.map_err(bad_path)?;
    let process = process(&hosted, &pid)?;
    let logs = process.logs();
    Ok(Json(json!({
        "stdout": String::from_utf8_lossy(&logs.stdout),
        "stderr": String::from_utf8_lossy(&logs.stderr),
        "total_bytes": logs.total_bytes,
        "truncated": logs.truncated,
    }))
    .into_response())
}

async fn kill_process(
    LiveSandbox { hosted, .. }: LiveSandbox,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((_, pid)) = params.map_err(bad_path)?;
    let process = process(&hosted, &pid)?;
    on_sandbox(hosted, move |hosted, sandbox| {
        sandbox.kill_process(&process)?;
        lock(&hosted.processes).remove(&process.id());
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
