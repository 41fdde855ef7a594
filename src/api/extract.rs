//! Request extractors whose rejections are [`ApiError`]s, so malformed input
//! gets the same JSON error shape as everything else, naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Unknown fields, wrong types and bad syntax are 400 errors
/// whose `field` is the path of the offending value.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        if let Some(field) = nul_in_json(&bytes) {
            return Err(nul_error(&field));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = inner.to_string();
                // Unknown fields are reported at the parent path; name the field.
                let field = match message.strip_prefix("unknown field `") {
                    Some(rest) => rest.split('`').next().unwrap_or("").to_string(),
                    None if path == "." => String::new(),
                    None => path,
                };
                if message.contains(crate::catalogue::validate::NULL_REFUSED) {
                    // A required field given as null: well-formed JSON, a
                    // value that cannot be taken.
                    let what = if field.is_empty() {
                        "the field"
                    } else {
                        field.as_str()
                    };
                    let mut err = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_field",
                        format!("{what} {}", crate::catalogue::validate::NULL_REFUSED),
                    );
                    if !field.is_empty() {
                        err = err.field(field);
                    }
                    return Err(err);
                }
                let code = if inner.is_syntax() || inner.is_eof() {
                    "invalid_json"
                } else {
                    "invalid_field"
                };
                let mut err = ApiError::new(StatusCode::BAD_REQUEST, code, message);
                if !field.is_empty() {
                    err = err.field(field);
                }
                Err(err)
            }
        }
    }
}

/// The 400 for a NUL character in `field`: no text the gateway stores or
/// looks up may hold one (PostgreSQL refuses them; they hide text).
pub fn nul_error(field: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_field",
        format!(
            "{} contains a NUL character",
            if field.is_empty() { "the body" } else { field }
        ),
    );
    if !field.is_empty() {
        e = e.field(field);
    }
    e
}

/// The path (`a.b[2]`) of the first JSON string or key holding a NUL
/// (`\u0000`), if any. Raw NULs are not valid JSON and fail parsing.
pub fn nul_in_json(bytes: &[u8]) -> Option<String> {
    // Cheap test first: no escape of code point 0 anywhere.
    let hint = bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && (w[1] == b'u' || w[1] == b'U') && &w[2..] == b"0000");
    if !hint {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(path.to_string()),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    Some(p.replace('\0', "\\0"))
                } else {
                    walk(x, &p)
                }
            }),
            _ => None,
        }
    }
    walk(&v, "")
}

/// Checks a request's path parameters and query for NUL characters and
/// percent-encoded bytes that are not UTF-8: a JSON 400 naming the
/// parameter instead of a database error or a plain-text rejection.
pub async fn clean_input(
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::FromRequestParts as _;
    use axum::response::IntoResponse as _;
    let (mut parts, body) = req.into_parts();
    match axum::extract::RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => {
            if let Some((k, _)) = params.iter().find(|(_, v)| v.contains('\0')) {
                return nul_error(k).into_response();
            }
        }
        Err(axum::extract::rejection::RawPathParamsRejection::InvalidUtf8InPathParam(e)) => {
            let text = e.body_text();
            let key = text.split('`').nth(1).unwrap_or("").to_string();
            let mut err = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                format!(
                    "{} is not valid UTF-8",
                    if key.is_empty() { "the path" } else { &key }
                ),
            );
            if !key.is_empty() {
                err = err.field(key);
            }
            return err.into_response();
        }
        Err(_) => {}
    }
    if let Some(q) = parts.uri.query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| -> Vec<u8> {
                let plus = s.replace('+', " ");
                percent_encoding::percent_decode_str(&plus).collect()
            };
            let (kb, vb) = (decode(k), decode(v));
            let key = String::from_utf8_lossy(&kb).replace('\0', "\\0");
            let bad = match (std::str::from_utf8(&kb), std::str::from_utf8(&vb)) {
                (Ok(a), Ok(b)) if a.contains('\0') || b.contains('\0') => {
                    Some("contains a NUL character")
                }
                (Ok(_), Ok(_)) => None,
                _ => Some("is not valid UTF-8"),
            };
            if let Some(why) = bad {
                return ApiError::bad_query(
                    &key,
                    format!(
                        "query parameter {} {why}",
                        crate::catalogue::validate::clip(&key)
                    ),
                )
                .into_response();
            }
        }
    }
    req = Request::from_parts(parts, body);
    next.run(req).await
}

/// Reads the whole body, mapping an over-limit body to 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than the limit (server.max_import_bytes for imports)",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", rej.body_text())
        }
    })
}

/// Query parameters as ordered pairs, checked against the names a route
/// accepts: an unknown parameter is an error rather than silently ignored.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        for (k, _) in &pairs {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_query(
                    k,
                    format!(
                        "unknown query parameter {:?}; this route accepts: {}",
                        crate::catalogue::validate::clip(k),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(QueryPairs(pairs))
    }
    /// The single value of `name`; repeating it is an error.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(ApiError::bad_query(
                name,
                format!("{name} may be given once"),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn parse_one<T: std::str::FromStr>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.one(name)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_query(
                    name,
                    format!(
                        "{name} must be {what}, got {:?}",
                        crate::catalogue::validate::clip(v)
                    ),
                )
            }),
        }
    }
}

/// The client's IP address, when the server was started with connection
/// info (`camgate serve`); `None` in in-process tests that call the router
/// directly. Never a rejection.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
