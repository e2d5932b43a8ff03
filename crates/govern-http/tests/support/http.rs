//! A minimal HTTP/1.1 client over hyper for tests: one connection per request, the whole body
//! read (bounded by [`BODY_MAX`]).

use std::net::SocketAddr;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The most bytes of a response body read (a full-page screenshot is a few hundred KB of
/// base64).
pub(crate) const BODY_MAX: usize = 32 << 20;

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON ({e}): {}", self.text()))
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request to `addr` and reads the whole response.
pub(crate) async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Result<Reply, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut builder = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if body.is_some() {
        builder = builder.header("content-type", "application/json; charset=utf-8");
    }
    for (name, value) in headers {
        builder = builder.header(*name, HeaderValue::from_str(value).map_err(|e| e.to_string())?);
    }
    let request = builder.body(Full::new(bytes)).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, BODY_MAX)
        .collect()
        .await
        .map_err(|e| format!("read body: {e}"))?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body })
}
