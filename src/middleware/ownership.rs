//! Ownership: a request naming a sandbox (see [`sandbox_id`](super::sandbox_id)) passes only if
//! its [`Actor`] owns that sandbox. Another actor's sandbox is 403 `NOT_OWNER` and the handler
//! never runs; an unknown sandbox is 404 `SANDBOX_NOT_FOUND`. Who owns what comes from an
//! [`OwnershipStore`]: [`MemoryOwnershipStore`] for one process; the trait is what a shared store
//! (Redis, a database) implements for several.
//!
//! ```
//! use sandguard::middleware::ownership::{MemoryOwnershipStore, Ownership, OwnershipStore};
//! use sandguard::policy::SandboxId;
//!
//! let store = MemoryOwnershipStore::new();
//! let id = SandboxId::parse("box-1").unwrap();
//! assert!(store.claim(&id, "alice"));
//! assert!(!store.claim(&id, "bob"), "a claimed sandbox cannot be claimed again");
//! assert_eq!(store.ownership(&id, "alice"), Ownership::Owner);
//! assert_eq!(store.ownership(&id, "bob"), Ownership::Other);
//! assert!(store.release(&id));
//! assert_eq!(store.ownership(&id, "alice"), Ownership::Unknown);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::guard::{Guard, GuardLayer, GuardService};
use super::{Actor, Decision, audit_unavailable, error_response, record, refuse};
use crate::Enforcer;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use sandguard_audit::Outcome;
use sandguard_policy::SandboxId;

/// How an actor stands to a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The actor owns it.
    Owner,
    /// Someone else owns it.
    Other,
    /// No one: it does not exist (or no longer).
    Unknown,
}

/// Who owns which sandbox.
pub trait OwnershipStore: Send + Sync + 'static {
    /// How `actor` stands to `sandbox`.
    fn ownership(&self, sandbox: &SandboxId, actor: &str) -> Ownership;
    /// Makes `owner` the owner of `sandbox`; `false` (and no change) if it already has one.
    fn claim(&self, sandbox: &SandboxId, owner: &str) -> bool;
    /// Forgets `sandbox`; `false` if it was unknown.
    fn release(&self, sandbox: &SandboxId) -> bool;
}

/// An [`OwnershipStore`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryOwnershipStore {
    owners: RwLock<HashMap<SandboxId, Arc<str>>>,
}

impl MemoryOwnershipStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every sandbox known, with its owner.
    pub fn entries(&self) -> Vec<(SandboxId, String)> {
        let owners = self.owners.read().unwrap_or_else(PoisonError::into_inner);
        owners.iter().map(|(id, owner)| (id.clone(), owner.to_string())).collect()
    }
}

impl OwnershipStore for MemoryOwnershipStore {
    fn ownership(&self, sandbox: &SandboxId, actor: &str) -> Ownership {
        // A poisoned lock still holds a consistent map: each operation is one insert or remove.
        match self.owners.read().unwrap_or_else(PoisonError::into_inner).get(sandbox) {
            Some(owner) if **owner == *actor => Ownership::Owner,
            Some(_) => Ownership::Other,
            None => Ownership::Unknown,
        }
    }

    fn claim(&self, sandbox: &SandboxId, owner: &str) -> bool {
        let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
        if owners.contains_key(sandbox) {
            return false;
        }
        owners.insert(sandbox.clone(), owner.into());
        true
    }

    fn release(&self, sandbox: &SandboxId) -> bool {
        self.owners.write().unwrap_or_else(PoisonError::into_inner).remove(sandbox).is_some()
    }
}

impl<T: OwnershipStore + ?Sized> OwnershipStore for Arc<T> {
    fn ownership(&self, sandbox: &SandboxId, actor: &str) -> Ownership {
        (**self).ownership(sandbox, actor)
    }
    fn claim(&self, sandbox: &SandboxId, owner: &str) -> bool {
        (**self).claim(sandbox, owner)
    }
    fn release(&self, sandbox: &SandboxId) -> bool {
        (**self).release(sandbox)
    }
}

/// Checks ownership of the sandbox a request names; see the [module docs](self).
pub type OwnershipLayer<O> = GuardLayer<OwnershipGuard<O>>;

/// The service made by [`OwnershipLayer`].
pub type OwnershipCheck<S, O> = GuardService<OwnershipGuard<O>, S>;

/// The decision of an [`OwnershipLayer`].
#[derive(Debug)]
pub struct OwnershipGuard<O> {
    store: Arc<O>,
    enforcer: Arc<Enforcer>,
}

impl<O> Clone for OwnershipGuard<O> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), enforcer: Arc::clone(&self.enforcer) }
    }
}

impl<O: OwnershipStore> OwnershipLayer<O> {
    /// A layer asking `store`, recording decisions through `enforcer`.
    pub fn new(store: O, enforcer: Arc<Enforcer>) -> Self {
        Self::with(OwnershipGuard { store: Arc::new(store), enforcer })
    }
}

impl<O: OwnershipStore> Guard for OwnershipGuard<O> {
    fn check<B>(&self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        let Some(sandbox) = request.extensions().get::<SandboxId>() else { return Ok(()) };
        let enforcer = &self.enforcer;
        let action = "request.ownership";
        let Some(actor) = request.extensions().get::<Actor>() else {
            // Without an authentication layer in front there is no one to own anything.
            let (code, message) = ("UNAUTHENTICATED", "no authenticated actor");
            let refusal = error_response(StatusCode::UNAUTHORIZED, code, message);
            return Err(refuse(enforcer, request, action, code, message, refusal));
        };
        let (status, code, message) = match self.store.ownership(sandbox, actor.name()) {
            Ownership::Owner => {
                let allowed = Decision { action, outcome: Outcome::Allowed, code: None, message: "" };
                return record(enforcer, request, &allowed).map_err(|error| audit_unavailable(&error));
            }
            Ownership::Other => (StatusCode::FORBIDDEN, "NOT_OWNER", "this sandbox belongs to another user"),
            Ownership::Unknown => (StatusCode::NOT_FOUND, "SANDBOX_NOT_FOUND", "no such sandbox"),
        };
        let refusal = error_response(status, code, message);
        Err(refuse(enforcer, request, action, code, message, refusal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::sandbox_id::SandboxIdLayer;
    use crate::middleware::test_support::{Harness, as_actor};
    use tower::ServiceBuilder;

    #[test]
    fn only_the_owner_passes() {
        let harness = Harness::new();
        let store = Arc::new(MemoryOwnershipStore::new());
        assert!(store.claim(&SandboxId::parse("box-1").unwrap(), "alice"));
        let mut service = ServiceBuilder::new()
            .layer(SandboxIdLayer::new("/v1/sandboxes/", harness.enforcer()))
            .layer(OwnershipLayer::new(Arc::clone(&store), harness.enforcer()))
            .service(harness.echo_actor());

        let reply = harness.call(&mut service, as_actor("alice", "/v1/sandboxes/box-1/exec", 200));
        assert_eq!((reply.status, reply.body.as_str()), (200, "alice"));
        let allowed = harness.last_event();
        assert_eq!((allowed.outcome, allowed.sandbox.as_deref()), (Outcome::Allowed, Some("box-1")));

        let reply = harness.call(&mut service, as_actor("bob", "/v1/sandboxes/box-1/exec", 200));
        assert_eq!((reply.status, reply.code.as_deref()), (403, Some("NOT_OWNER")));
        let denied = harness.last_event();
        assert_eq!((denied.actor.as_str(), denied.outcome), ("bob", Outcome::Denied));

        let reply = harness.call(&mut service, as_actor("alice", "/v1/sandboxes/box-2", 200));
        assert_eq!((reply.status, reply.code.as_deref()), (404, Some("SANDBOX_NOT_FOUND")));

        let mut anonymous = as_actor("alice", "/v1/sandboxes/box-1", 200);
        anonymous.extensions_mut().remove::<Actor>();
        assert_eq!(harness.call(&mut service, anonymous).status, 401);

        assert_eq!(harness.call(&mut service, as_actor("bob", "/v1/sandboxes", 200)).status, 200, "no sandbox named");
    }
}
