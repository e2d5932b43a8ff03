//! `POST /v1/tenants/{tenant}/commands`: any governor's command, by kind and name, with string
//! arguments (what `RawCommand` takes), under an optional `Idempotency-Key`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use govern_governors::{Args, GovernorKind, ResourceId};
use govern_runtime::{Accepted, IDEMPOTENCY_KEY, RawCommand};
use serde::Deserialize;

use super::extract::{Json, TenantCaller};
use crate::limits::IDEMPOTENCY_KEY_LEN_MAX;
use crate::{ApiError, AppState};

/// The header whose value becomes the command's idempotency key.
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The receipt metadata key that records which API key sent a command.
pub(crate) const API_KEY_METADATA: &str = "api_key";

/// A command as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandBody {
    /// The governor kind (`subscription`, `billing`, `tenant`, ...).
    kind: String,
    /// The resource; for the `tenant` kind, the tenant id (the default there).
    #[serde(default)]
    resource: Option<String>,
    /// The command's name (`start_trial`, `provision_tenant`, ...).
    name: String,
    /// Its arguments: strings, numbers or booleans, each passed on as its text.
    #[serde(default)]
    args: BTreeMap<String, serde_json::Value>,
    /// Why (recorded in the receipt).
    reason: String,
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request("bad_request", message)
}

fn args(raw: BTreeMap<String, serde_json::Value>) -> Result<Args, ApiError> {
    raw.into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(bad(format!("args.{name}: a string, number or boolean"))),
            };
            Ok((name, text))
        })
        .collect()
}

/// Sends the command and answers its `Accepted` (the receipt's seq, hash, from and to), or the
/// governor's rejection or the runtime's refusal in the error shape. The `tenant` kind
/// (provisioning, activation, suspension, deprovisioning) takes an operator key: a tenant's
/// own key must not lift its suspension.
pub(crate) async fn send(
    State(state): State<AppState>,
    who: TenantCaller,
    headers: HeaderMap,
    Json(body): Json<CommandBody>,
) -> Result<axum::Json<Accepted>, ApiError> {
    let kind = GovernorKind::from_name(&body.kind)
        .ok_or_else(|| bad(format!("kind `{}`: not a governor kind", body.kind)))?;
    if kind == GovernorKind::Tenant && !who.caller.is_operator() {
        tracing::warn!(key = %who.caller.key_id, tenant = %who.tenant, command = %body.name, "refused: a tenant command needs an operator key");
        return Err(ApiError::forbidden("commands of the tenant governor need an operator key"));
    }
    let resource = match (body.resource, kind) {
        (Some(r), _) => r,
        (None, GovernorKind::Tenant) => who.tenant.as_str().to_owned(),
        (None, _) => return Err(bad("missing field `resource`".into())),
    };
    let resource = ResourceId::new(&resource).map_err(|e| bad(format!("resource: {e}")))?;
    let mut metadata = vec![(API_KEY_METADATA.to_owned(), who.caller.key_id.clone())];
    if let Some(value) = headers.get(IDEMPOTENCY_HEADER) {
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_LEN_MAX)
            .ok_or_else(|| {
                bad(format!(
                    "Idempotency-Key: 1 to {IDEMPOTENCY_KEY_LEN_MAX} bytes of visible ASCII"
                ))
            })?;
        metadata.push((IDEMPOTENCY_KEY.to_owned(), key.to_owned()));
    }
    let command = RawCommand {
        tenant: who.tenant,
        kind,
        resource,
        name: body.name,
        args: args(body.args)?,
        reason: body.reason,
        metadata,
    };
    Ok(axum::Json(state.runtime.command(command).await?))
}
