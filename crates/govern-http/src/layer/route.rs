//! The entitlement layer's route map: a route (method, path pattern) names the feature it
//! uses, the action (by default from the method) and the quantity; patterns are matched here,
//! segment by segment, not by axum (the layer may wrap a whole app, outside its routing).

use std::sync::Arc;

use axum::http::{HeaderValue, Method};
use govern_policy::DecidedBy;

/// Bytes in one route's path pattern.
pub const PATTERN_LEN_MAX: usize = 1_024;
/// Segments in one route's path pattern.
pub const PATTERN_SEGMENTS_MAX: usize = 32;

const _: () = assert!(PATTERN_SEGMENTS_MAX <= PATTERN_LEN_MAX);

/// What a mapped request gets when the runtime cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailMode {
    /// 503 `entitlement_unavailable`, `x-govern-fail: closed`; the inner service does not run.
    #[default]
    Closed,
    /// The inner service runs; the response carries `x-govern-fail: open`; a warning is logged.
    Open,
}

/// A mapped route: requests whose method and path match are checked against `feature`.
///
/// Built with [`Route::get`], [`Route::post`], ... or [`Route::any`], refined with
/// [`Route::action`], [`Route::quantity`] and [`Route::fail_open`]; the pattern is parsed when
/// the layer is built ([`crate::layer::EntitlementLayerBuilder::build`]).
#[derive(Clone, Debug)]
pub struct Route {
    /// The method it maps (`None`: every method). A `GET` route also maps `HEAD`.
    pub(crate) method: Option<Method>,
    /// The pattern as given, parsed at build time.
    pub(crate) pattern: String,
    /// The feature checked.
    pub(crate) feature: Arc<str>,
    /// The action checked, when not the method's ([`default_action`]).
    pub(crate) action: Option<Arc<str>>,
    /// The quantity checked (default 1).
    pub(crate) quantity: u64,
    /// What happens when the runtime cannot answer, when not the layer's default.
    pub(crate) fail: Option<FailMode>,
}

impl Route {
    /// A route of one method.
    #[must_use]
    pub fn new(method: Method, pattern: &str, feature: &str) -> Self {
        Self::of(Some(method), pattern, feature)
    }

    /// A route of every method (the action still follows each request's method).
    #[must_use]
    pub fn any(pattern: &str, feature: &str) -> Self {
        Self::of(None, pattern, feature)
    }

    /// `GET` (and `HEAD`): action `read`.
    #[must_use]
    pub fn get(pattern: &str, feature: &str) -> Self {
        Self::new(Method::GET, pattern, feature)
    }

    /// `POST`: action `create`.
    #[must_use]
    pub fn post(pattern: &str, feature: &str) -> Self {
        Self::new(Method::POST, pattern, feature)
    }

    /// `PUT`: action `update`.
    #[must_use]
    pub fn put(pattern: &str, feature: &str) -> Self {
        Self::new(Method::PUT, pattern, feature)
    }

    /// `PATCH`: action `update`.
    #[must_use]
    pub fn patch(pattern: &str, feature: &str) -> Self {
        Self::new(Method::PATCH, pattern, feature)
    }

    /// `DELETE`: action `delete`.
    #[must_use]
    pub fn delete(pattern: &str, feature: &str) -> Self {
        Self::new(Method::DELETE, pattern, feature)
    }

    fn of(method: Option<Method>, pattern: &str, feature: &str) -> Self {
        Self {
            method,
            pattern: pattern.to_owned(),
            feature: feature.into(),
            action: None,
            quantity: 1,
            fail: None,
        }
    }

    /// Checks this action instead of the method's.
    #[must_use]
    pub fn action(mut self, action: &str) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Checks this quantity instead of 1.
    #[must_use]
    pub const fn quantity(mut self, quantity: u64) -> Self {
        self.quantity = quantity;
        self
    }

    /// When the runtime cannot answer, passes the request on (the response says
    /// `x-govern-fail: open`) instead of the layer's default.
    #[must_use]
    pub const fn fail_open(mut self) -> Self {
        self.fail = Some(FailMode::Open);
        self
    }

    /// When the runtime cannot answer, answers 503 whatever the layer's default.
    #[must_use]
    pub const fn fail_closed(mut self) -> Self {
        self.fail = Some(FailMode::Closed);
        self
    }
}

/// The action a method checks unless its route says otherwise: `GET`/`HEAD` `read`, `POST`
/// `create`, `PUT`/`PATCH` `update`, `DELETE` `delete`, `OPTIONS` `options`, any other `other`.
#[must_use]
pub fn default_action(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "read",
        Method::POST => "create",
        Method::PUT | Method::PATCH => "update",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        _ => "other",
    }
}

/// Why a route's pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A pattern starts with `/`.
    #[error("a pattern starts with `/`")]
    NotAbsolute,
    /// Longer than [`PATTERN_LEN_MAX`] bytes.
    #[error("a pattern is at most {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// More than [`PATTERN_SEGMENTS_MAX`] segments.
    #[error("a pattern has at most {max} segments")]
    TooManySegments {
        /// The bound.
        max: usize,
    },
    /// A `{param}` segment with an empty name, or braces inside a segment.
    #[error("segment {segment:?}: a parameter is a whole segment `{{name}}` with a name")]
    BadParam {
        /// The segment.
        segment: String,
    },
    /// `*` anywhere but as the whole last segment.
    #[error("`*` is only the whole last segment")]
    MisplacedWildcard,
}

/// A parsed pattern: `/v1/reports/{id}/export`, `/v1/files/*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// The segments before a trailing `*`.
    segments: Vec<Segment>,
    /// Ends with `*`: the rest of the path, zero or more segments.
    rest: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Exactly this text.
    Literal(String),
    /// Any one non-empty segment.
    Param,
}

impl Pattern {
    /// Parses a pattern: `/`-separated segments, each a literal, a `{name}` parameter, or
    /// (the last only) `*`.
    pub(crate) fn parse(pattern: &str) -> Result<Self, PatternError> {
        if pattern.len() > PATTERN_LEN_MAX {
            return Err(PatternError::TooLong { max: PATTERN_LEN_MAX });
        }
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(PatternError::NotAbsolute);
        };
        let parts: Vec<&str> = body.split('/').collect();
        if parts.len() > PATTERN_SEGMENTS_MAX {
            return Err(PatternError::TooManySegments { max: PATTERN_SEGMENTS_MAX });
        }
        let last = parts.len() - 1;
        let mut segments = Vec::with_capacity(parts.len());
        let mut rest = false;
        for (i, part) in parts.into_iter().enumerate() {
            if part == "*" {
                if i != last {
                    return Err(PatternError::MisplacedWildcard);
                }
                rest = true;
            } else if part.contains('*') {
                return Err(PatternError::MisplacedWildcard);
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err(PatternError::BadParam { segment: part.to_owned() });
                }
                segments.push(Segment::Param);
            } else if part.contains(['{', '}']) {
                return Err(PatternError::BadParam { segment: part.to_owned() });
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Self { segments, rest })
    }

    /// Whether `path` (a URI's path, as received: not decoded, not normalised) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some(body) = path.strip_prefix('/') else { return false };
        let mut parts = body.split('/');
        for segment in &self.segments {
            let Some(part) = parts.next() else {
                return false;
            };
            let fits = match segment {
                Segment::Literal(text) => part == text,
                Segment::Param => !part.is_empty(),
            };
            if !fits {
                return false;
            }
        }
        // `*` takes whatever is left (nothing, `/`, or more segments); otherwise nothing may be.
        self.rest || parts.next().is_none()
    }
}

/// A route with its pattern parsed: what the layer matches requests against.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub(crate) route: Route,
    pub(crate) pattern: Pattern,
    /// `plan_feature:<feature>`, what allows most requests, made once (a clone is a
    /// reference count, not two allocations per request).
    pub(crate) plan_feature: Option<HeaderValue>,
}

impl Compiled {
    /// The route with its pattern parsed.
    pub(crate) fn new(route: Route) -> Result<Self, PatternError> {
        let pattern = Pattern::parse(&route.pattern)?;
        let plan_feature = HeaderValue::try_from(format!("plan_feature:{}", route.feature)).ok();
        Ok(Self { route, pattern, plan_feature })
    }

    /// The `x-govern-decided-by` value of an allow.
    pub(crate) fn decided_by(&self, decided_by: &DecidedBy) -> Option<HeaderValue> {
        match (decided_by, &self.plan_feature) {
            (DecidedBy::PlanFeature(feature), Some(value)) if *feature == self.route.feature => {
                Some(value.clone())
            }
            _ => HeaderValue::try_from(decided_by.to_string()).ok(),
        }
    }

    /// Whether a request of `method` to `path` is this route's.
    pub(crate) fn matches(&self, method: &Method, path: &str) -> bool {
        let method_fits = match &self.route.method {
            None => true,
            Some(m) => m == method || (*m == Method::GET && *method == Method::HEAD),
        };
        method_fits && self.pattern.matches(path)
    }
}
