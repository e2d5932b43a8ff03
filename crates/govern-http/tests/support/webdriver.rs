//! A tiny W3C WebDriver client (the dozen endpoints a page test needs) over [`super::http`],
//! and chromedriver started on a free loopback port. Chosen over `fantoccini` for its build
//! weight (docs/ARCHITECTURE.md, crate choices).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64ct::{Base64, Encoding as _};
use hyper::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use super::http::request;

/// The W3C key of an element reference in a response.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long chromedriver may take to say it listens.
pub(crate) const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// How many lines of chromedriver's output are read looking for its start line.
const DRIVER_START_LINES_MAX: usize = 50;

/// How long the browser looks for an element before answering "no such element" (the
/// session's implicit wait).
pub(crate) const IMPLICIT_WAIT_MS: u64 = 5_000;

/// chromedriver, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) addr: SocketAddr,
    _child: Child,
}

impl Driver {
    /// Starts `chromedriver` on a free loopback port and waits for its "started successfully"
    /// line.
    pub(crate) async fn start(binary: &Path) -> Result<Self, String> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            probe.local_addr().map_err(|e| e.to_string())?.port()
        };
        let mut child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let started = async {
            let mut lines = BufReader::new(stdout).lines();
            for _ in 0..DRIVER_START_LINES_MAX {
                match lines.next_line().await {
                    Ok(Some(line)) if line.contains("started successfully") => return Ok(lines),
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("chromedriver exited".to_owned()),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err("chromedriver did not say it started".to_owned())
        };
        let lines = tokio::time::timeout(DRIVER_START_TIMEOUT, started)
            .await
            .map_err(|_| "chromedriver did not start in time".to_owned())??;
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move {
            let mut lines = lines;
            while let Ok(Some(_)) = lines.next_line().await {}
        });
        Ok(Self { addr: SocketAddr::from(([127, 0, 0, 1], port)), _child: child })
    }

    /// A new browser session with `capabilities` (`alwaysMatch`).
    pub(crate) async fn session(&self, capabilities: Value) -> Result<Session, String> {
        let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let value = call(self.addr, Method::POST, "/session", Some(&body)).await?;
        let id = value["sessionId"].as_str().ok_or(format!("no session id: {value}"))?;
        Ok(Session { addr: self.addr, id: id.to_owned(), ended: false })
    }
}

/// One WebDriver call: the response's `value`, or the WebDriver error as text.
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let reply = request(addr, method, path, &[], body).await?;
    let mut json = reply.json()?;
    let value = json.get_mut("value").map(Value::take).unwrap_or(Value::Null);
    if reply.status == 200 {
        Ok(value)
    } else {
        Err(format!("{path}: {} {}: {}", reply.status, value["error"], value["message"]))
    }
}

/// How long ending a session from `Drop` may take (chromedriver answers once the browser
/// has closed).
const QUIT_ON_DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of chromedriver's answer read when ending a session from `Drop`.
const QUIT_ANSWER_MAX: usize = 64 << 10;

/// A browser session. Ended by [`Session::quit`], or when dropped (a failed test): killing
/// chromedriver alone would leave its browser running.
#[derive(Debug)]
pub(crate) struct Session {
    addr: SocketAddr,
    id: String,
    /// `quit` ended it.
    ended: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Drop cannot await: one blocking request on a socket of its own. chromedriver answers
        // once the browser has closed, and keeps the connection open: read the status line
        // and headers only.
        use std::io::{Read as _, Write as _};
        let Ok(mut stream) = std::net::TcpStream::connect(self.addr) else { return };
        let _ = stream.set_read_timeout(Some(QUIT_ON_DROP_TIMEOUT));
        let _ = stream.set_write_timeout(Some(QUIT_ON_DROP_TIMEOUT));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.id, self.addr
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while answer.len() < QUIT_ANSWER_MAX && !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
    }
}

/// An element of the page.
#[derive(Clone, Debug)]
pub(crate) struct Element(String);

impl Session {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        call(self.addr, method, &format!("/session/{}{path}", self.id), body).await
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) -> Result<(), String> {
        self.call(Method::POST, "/url", Some(&json!({ "url": url }))).await.map(drop)
    }

    /// The first element `css` selects (after the implicit wait).
    pub(crate) async fn find(&self, css: &str) -> Result<Element, String> {
        let body = json!({ "using": "css selector", "value": css });
        let value = self.call(Method::POST, "/element", Some(&body)).await?;
        let id = value[ELEMENT_KEY].as_str().ok_or(format!("not an element: {value}"))?;
        Ok(Element(id.to_owned()))
    }

    /// Every element `css` selects (none without waiting, when there is none).
    pub(crate) async fn find_all(&self, css: &str) -> Result<Vec<Element>, String> {
        let body = json!({ "using": "css selector", "value": css });
        let value = self.call(Method::POST, "/elements", Some(&body)).await?;
        let all = value.as_array().ok_or(format!("not a list: {value}"))?;
        all.iter()
            .map(|v| v[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
            .collect::<Option<Vec<_>>>()
            .ok_or(format!("not elements: {value}"))
    }

    /// Types `text` into `element`.
    pub(crate) async fn type_into(&self, element: &Element, text: &str) -> Result<(), String> {
        let path = format!("/element/{}/value", element.0);
        self.call(Method::POST, &path, Some(&json!({ "text": text }))).await.map(drop)
    }

    /// Clicks `element`.
    pub(crate) async fn click(&self, element: &Element) -> Result<(), String> {
        let path = format!("/element/{}/click", element.0);
        self.call(Method::POST, &path, Some(&json!({}))).await.map(drop)
    }

    /// The text a person sees of `element`.
    pub(crate) async fn text(&self, element: &Element) -> Result<String, String> {
        let value = self.call(Method::GET, &format!("/element/{}/text", element.0), None).await?;
        value.as_str().map(str::to_owned).ok_or(format!("not text: {value}"))
    }

    /// An attribute of `element` (`None` when absent).
    pub(crate) async fn attribute(
        &self,
        element: &Element,
        name: &str,
    ) -> Result<Option<String>, String> {
        let path = format!("/element/{}/attribute/{name}", element.0);
        Ok(self.call(Method::GET, &path, None).await?.as_str().map(str::to_owned))
    }

    /// The text of the first element `css` selects, once `ready` accepts it: asks again
    /// (each ask waits up to the implicit wait for the element) until it does or `timeout`
    /// passes; then the last text or error.
    pub(crate) async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let mut last = Err(format!("{css}: not asked"));
        let polled = tokio::time::timeout(timeout, async {
            loop {
                last = match self.find(css).await {
                    Ok(element) => self.text(&element).await,
                    Err(e) => Err(e),
                };
                if last.as_deref().is_ok_and(&ready) {
                    return;
                }
                // Let the page's own tasks run between two asks.
                tokio::task::yield_now().await;
            }
        })
        .await;
        match (polled, last) {
            (Ok(()), last) => last,
            (Err(_), Ok(text)) => Err(format!("{css}: still {text:?} after {timeout:?}")),
            (Err(_), Err(e)) => Err(format!("{css}: {e} (after {timeout:?})")),
        }
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let value = self.call(Method::GET, "/screenshot", None).await?;
        let b64 = value.as_str().ok_or("not base64 text")?;
        Base64::decode_vec(b64).map_err(|e| e.to_string())
    }

    /// Ends the session (closes the browser).
    pub(crate) async fn quit(mut self) -> Result<(), String> {
        self.ended = true;
        call(self.addr, Method::DELETE, &format!("/session/{}", self.id), None).await.map(drop)
    }
}
