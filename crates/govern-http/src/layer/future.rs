//! The entitlement service's response future: the layer's own answer, or the inner
//! service's response with the layer's header added; and the in-flight count it holds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;

use super::answer::{DECIDED_BY_HEADER, FAIL_HEADER};

/// A mapped request counted in flight until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more in `count`, unless it is at `max` already.
    pub(crate) fn enter(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        let before = count.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(Arc::clone(count)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the inner service's response gets.
#[derive(Debug)]
pub(crate) enum Mark {
    /// Nothing (an unmapped route).
    Untouched,
    /// `x-govern-decided-by`.
    DecidedBy(Option<HeaderValue>),
    /// `x-govern-fail: open`.
    FailedOpen,
}

pin_project_lite::pin_project! {
    /// The response of an [`super::EntitlementService`]: answered by the layer, or the inner
    /// service's with the layer's header added.
    pub struct ResponseFuture<F> {
        #[pin]
        pub(crate) state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = Projected]
    pub(crate) enum State<F> {
        /// Answered by the layer (taken on the first poll).
        Answered { response: Option<Response<Body>> },
        /// The inner service's.
        Inner {
            #[pin]
            future: F,
            mark: Mark,
            in_flight: Option<InFlight>,
        },
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Projected::Answered { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion: a contract breach by the caller; answer something
                // rather than panic.
                None => Poll::Ready(Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response())),
            },
            Projected::Inner { future, mark, in_flight } => {
                let response = match future.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(error)) => {
                        in_flight.take();
                        return Poll::Ready(Err(error));
                    }
                    Poll::Ready(Ok(response)) => response,
                };
                in_flight.take();
                let mut response = response.map(Body::new);
                match std::mem::replace(mark, Mark::Untouched) {
                    Mark::Untouched | Mark::DecidedBy(None) => {}
                    Mark::DecidedBy(Some(value)) => {
                        response.headers_mut().insert(DECIDED_BY_HEADER, value);
                    }
                    Mark::FailedOpen => {
                        response
                            .headers_mut()
                            .insert(FAIL_HEADER, HeaderValue::from_static("open"));
                    }
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
