//! The response future shared by the layers that either pass a request on or refuse it at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Response, StatusCode};
use pin_project_lite::pin_project;

pin_project! {
    /// The inner service's response, or a refusal made without calling it.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProjection]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Body>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self { kind: Kind::Inner { future } }
    }

    pub(crate) fn refused(response: Response<Body>) -> Self {
        Self { kind: Kind::Refused { response: Some(response) } }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Inner { future } => future.poll(cx),
            KindProjection::Refused { response } => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                // Polled again after completion: a caller bug, answered without panicking.
                super::error_response(StatusCode::INTERNAL_SERVER_ERROR, "POLLED_AFTER_COMPLETION", "internal error")
            }))),
        }
    }
}
