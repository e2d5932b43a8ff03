//! The bearer-key extractor every authenticated route takes.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use govern_governors::TenantId;

use crate::keys::{Caller, KeyStore};
use crate::{ApiError, AppState};

/// A caller whose `Authorization: Bearer gk_…` key is valid and not revoked. A route that
/// takes it answers 401 without one (the reason is logged, not told).
#[derive(Clone, Debug)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, parts.uri.path(), &state.keys).map(Self)
    }
}

/// The caller whose `Authorization: Bearer gk_…` key is in `headers`, valid and not revoked;
/// 401 otherwise (the reason is logged, not told).
///
/// # Errors
/// 401 `unauthorized`.
pub(crate) fn authenticate(
    headers: &axum::http::HeaderMap,
    path: &str,
    keys: &KeyStore,
) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized("an API key is required: Authorization: Bearer <key>"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <key>`"))?;
    keys.authenticate(token.trim()).map_err(|why| {
        tracing::warn!(%path, %why, "refused an API key");
        ApiError::unauthorized("the API key is not valid")
    })
}

impl Authenticated {
    /// The caller, if its key reaches `tenant`; otherwise 403, and the refusal is logged.
    ///
    /// # Errors
    /// 403 `forbidden` for a tenant key used on another tenant.
    pub fn for_tenant(&self, tenant: &TenantId) -> Result<&Caller, ApiError> {
        if self.0.reaches(tenant) {
            Ok(&self.0)
        } else {
            tracing::warn!(key = %self.0.key_id, scope = %self.0.scope, %tenant, "refused: the key does not reach this tenant");
            Err(ApiError::forbidden(format!("this key does not reach tenant {tenant}")))
        }
    }

    /// The caller, if an operator; otherwise 403, and the refusal is logged.
    ///
    /// # Errors
    /// 403 `forbidden` for a tenant key.
    pub fn operator(&self) -> Result<&Caller, ApiError> {
        if self.0.is_operator() {
            Ok(&self.0)
        } else {
            tracing::warn!(key = %self.0.key_id, scope = %self.0.scope, "refused: an operator route");
            Err(ApiError::forbidden("this route needs an operator key"))
        }
    }
}
