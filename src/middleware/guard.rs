//! What the checking layers share: each is a [`Guard`], which decides about one request (pass it
//! on, or answer a refusal at once), and [`GuardLayer`] and [`GuardService`] are the tower
//! plumbing around it, written once. The public names of the layers (`AuthLayer`,
//! `SandboxIdLayer`, ...) and of their services are aliases of these two.

use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response};
use tower::{Layer, Service};

use super::future::ResponseFuture;

/// Decides about one request before the layers behind see it.
pub trait Guard: Clone {
    /// `Ok` passes the request on (with whatever the guard added to its extensions); `Err` is
    /// the refusal answered instead, the layers behind never called.
    ///
    /// # Errors
    /// The refusal's response.
    #[allow(clippy::result_large_err, reason = "one refusal per refused request, moved straight into its future")]
    fn check<B>(&self, request: &mut Request<B>) -> Result<(), Response<Body>>;
}

/// A layer running guard `G` in front of the service it wraps.
#[derive(Debug, Clone)]
pub struct GuardLayer<G> {
    guard: G,
}

impl<G> GuardLayer<G> {
    pub(crate) fn with(guard: G) -> Self {
        Self { guard }
    }

    pub(crate) fn guard(&self) -> &G {
        &self.guard
    }
}

impl<G: Guard, S> Layer<S> for GuardLayer<G> {
    type Service = GuardService<G, S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, guard: self.guard.clone() }
    }
}

/// The service made by a [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct GuardService<G, S> {
    inner: S,
    guard: G,
}

impl<G, S, B> Service<Request<B>> for GuardService<G, S>
where
    G: Guard,
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self.guard.check(&mut request) {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(refusal) => ResponseFuture::refused(refusal),
        }
    }
}
