//! The extractors the API's handlers take, each answering its rejections in our error shape:
//! the caller of a tenant's route (key, tenant id, reach, in that order), and a JSON body and
//! a query string whose problems are 400 `bad_request` with serde's message (413 for a body
//! over the limit, 415 without a JSON content type).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use govern_governors::TenantId;
use serde::de::DeserializeOwned;

use crate::keys::Caller;
use crate::{ApiError, AppState, Authenticated};

/// A tenant id from the path, validated: 400 `bad_request` otherwise.
pub(crate) fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::new(raw)
        .map_err(|e| ApiError::bad_request("bad_request", format!("tenant id `{raw}`: {e}")))
}

/// The caller of a `/v1/tenants/{tenant}/…` route: a valid key (401 otherwise) that reaches
/// the tenant (403 otherwise, logged), and the tenant. Checked before the body is read, so
/// a refused caller learns nothing from how its body would have been parsed.
#[derive(Debug)]
pub(crate) struct TenantCaller {
    /// The key's holder.
    pub(crate) caller: Caller,
    /// The tenant of the path.
    pub(crate) tenant: TenantId,
}

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        // The route's `{tenant}` parameter, whatever other parameters it has.
        let Params(mut params) =
            Params::<std::collections::BTreeMap<String, String>>::from_request_parts(parts, state)
                .await?;
        let raw = params.remove("tenant").unwrap_or_default();
        let tenant = tenant_id(&raw)?;
        let caller = auth.for_tenant(&tenant)?.clone();
        Ok(Self { caller, tenant })
    }
}

/// The caller of an operator's route: a valid key (401 otherwise) of the operator's scope
/// (403 otherwise, logged), checked before the query is read.
#[derive(Debug)]
pub(crate) struct OperatorCaller;

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Authenticated::from_request_parts(parts, state).await?.operator()?;
        Ok(Self)
    }
}

/// A JSON body (`Content-Type: application/json`), its problems answered in our shape.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the server takes",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with `Content-Type: application/json`",
        ),
        _ => ApiError::bad_request("bad_request", rejection.body_text()),
    }
}

/// A query string, its problems answered 400 `bad_request`.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e: QueryRejection| ApiError::bad_request("bad_request", e.body_text()))
    }
}

/// A route's path parameters, their problems answered 400 `bad_request`.
#[derive(Debug)]
pub(crate) struct Params<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|e| ApiError::bad_request("bad_request", e.body_text()))
    }
}

/// A raw body (a webhook's, whose bytes are signed), over the limit answered 413
/// `payload_too_large` in our shape.
#[derive(Debug)]
pub(crate) struct Body(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state).await.map(Self).map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the server takes",
                )
            } else {
                ApiError::bad_request("bad_request", e.body_text())
            }
        })
    }
}
