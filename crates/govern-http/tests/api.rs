//! The HTTP API over a real loopback socket: routes and who may call them, bad input and
//! limits, slow clients, graceful shutdown, and the OpenAPI document against the routes; and
//! tenant isolation as a property, through the router in process.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

mod api {
    pub(crate) mod isolation;
    pub(crate) mod limits;
    pub(crate) mod load;
    pub(crate) mod openapi;
    pub(crate) mod plan_change;
    pub(crate) mod routes;
    pub(crate) mod sla;
    pub(crate) mod support;
}
