//! How a notification leaves the process: the [`Transport`] a host may implement (with its
//! own HTTPS client, a proxy, a queue), and the built-in [`HttpTransport`], plain HTTP/1 on
//! hyper's client over tokio TCP, one kept-alive connection per endpoint at most in use at a
//! time. The built-in transport speaks HTTP only: TLS goes through the host's transport or a
//! proxy in front of the endpoint.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;

use crate::limits::{NOTIFY_IDLE_CONNECTIONS_MAX, NOTIFY_RESPONSE_BYTES_MAX};

/// One HTTP request to deliver: `POST url` with these headers and body.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Outbound {
    /// The endpoint's URL, as configured.
    pub url: Arc<str>,
    /// Header names (lowercase) and values: content type, event id and type, attempt,
    /// signature.
    pub headers: Vec<(&'static str, String)>,
    /// The event's JSON body.
    pub body: Bytes,
}

/// Why an attempt got no HTTP status. The message goes into the attempt's receipt: it says
/// what failed (`connect: connection refused`), never the body or a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// The answer of a transport: the HTTP status, or why there was none.
pub type Sent = Pin<Box<dyn Future<Output = Result<u16, TransportError>> + Send>>;

/// Sends one request and answers its HTTP status. The notifier bounds every call by the
/// attempt timeout (dropping the future), so a transport need not; it must not retry on its
/// own (each attempt is receipted by the notifier).
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Sends `request`.
    fn send(&self, request: Outbound) -> Sent;

    /// Whether it can send to `url` (checked for each endpoint at start). Default: any.
    ///
    /// # Errors
    /// Why not, for the start's error.
    fn accepts(&self, url: &str) -> Result<(), String> {
        let _ = url;
        Ok(())
    }
}

/// Idle kept-alive connections, by `host:port`.
type Idle = Arc<Mutex<BTreeMap<String, Vec<SendRequest<Full<Bytes>>>>>>;

/// The built-in transport: HTTP/1.1 over TCP, `http://` URLs only.
#[derive(Clone, Debug, Default)]
pub struct HttpTransport {
    /// Idle kept-alive connections, by `host:port`: a delivery takes one (or connects) and
    /// gives it back once its answer is read.
    idle: Idle,
}

impl HttpTransport {
    /// A transport with no connections yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn take_idle(&self, authority: &str) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = idle.get_mut(authority)?;
        while let Some(sender) = list.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn give_back(&self, authority: String, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = idle.entry(authority).or_default();
        if list.len() < NOTIFY_IDLE_CONNECTIONS_MAX {
            list.push(sender);
        }
    }
}

/// The `host:port` and path of an `http://` URL.
fn split(url: &str) -> Result<(String, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https needs the host's own transport (the built-in one is plain \
                        HTTP; TLS through a proxy or `Notifications::transport`)"
                .into());
        }
        _ => return Err("not an http:// URL".into()),
    }
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((format!("{host}:{port}"), path))
}

impl Transport for HttpTransport {
    fn accepts(&self, url: &str) -> Result<(), String> {
        split(url).map(drop)
    }

    fn send(&self, request: Outbound) -> Sent {
        let me = self.clone();
        Box::pin(async move {
            let (authority, path) = split(&request.url).map_err(TransportError)?;
            let mut sender = match me.take_idle(&authority) {
                Some(s) => s,
                None => connect(&authority).await?,
            };
            let mut builder = hyper::Request::post(path).header("host", &authority);
            for (name, value) in &request.headers {
                builder = builder.header(*name, value);
            }
            let req = builder
                .body(Full::new(request.body))
                .map_err(|e| TransportError(format!("request: {e}")))?;
            sender.ready().await.map_err(|e| TransportError(format!("connection: {e}")))?;
            let response =
                sender.send_request(req).await.map_err(|e| TransportError(format!("send: {e}")))?;
            let status = response.status().as_u16();
            // The answer's body is read (bounded) so the connection can carry the next
            // delivery; one too long closes it instead.
            let read =
                Limited::new(response.into_body(), NOTIFY_RESPONSE_BYTES_MAX).collect().await;
            if read.is_ok() && !sender.is_closed() {
                me.give_back(authority, sender);
            }
            Ok(status)
        })
    }
}

/// A new HTTP/1 connection to `authority`, its driver spawned.
async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, TransportError> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| TransportError(format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| TransportError(format!("handshake: {e}")))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes.
        let _ = connection.await;
    });
    Ok(sender)
}
