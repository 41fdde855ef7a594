//! The API's error type and the one place that maps errors to HTTP statuses.
//! Every error leaves as `{"error": {"code", "message", "field"}}`. User
//! errors pass through with their message; internal ones are logged once,
//! here, with detail, and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::catalogue::FieldError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// An extra member of the error object (`details`, `report`).
    pub extra: Option<Box<(&'static str, Value)>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            extra: None,
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some(Box::new((key, value)));
        self
    }
    pub fn bad_query(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).field(field)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 404 from the relay paths for an unknown or disabled camera.
    pub fn camera_not_found(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "camera_not_found",
            format!("no enabled camera {id}"),
        )
    }
    /// 422 for failed validation: the first field is `field`, all are in
    /// `details`.
    pub fn validation(errs: Vec<FieldError>) -> Self {
        let first = errs.first().cloned();
        let message = match errs.len() {
            1 => first
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            n => format!(
                "{} (and {} more problems, see details)",
                first.as_ref().map(|e| e.message.as_str()).unwrap_or(""),
                n - 1
            ),
        };
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with("details", json!(errs));
        if let Some(f) = first {
            e.code = f.code;
            e.field = Some(f.field.to_string());
        }
        e
    }
    /// 503 `database_unavailable` with `Retry-After`: the database cannot
    /// be reached now; pulls and open streams go on.
    pub fn database_unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database cannot be reached; retry shortly (pulls and open streams go on)",
        )
    }

    /// An internal error: logged here with detail, answered generically.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the gateway's log has the details",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Exhausted(m) => ApiError::new(StatusCode::CONFLICT, "id_exhausted", m),
            e if e.is_disk_full() => {
                tracing::warn!(error = %e, "the database's disk is full");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    "the database's disk is full: nothing was written; writes resume once space is freed",
                )
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::database_unavailable()
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut obj = json!({
            "code": self.code,
            "message": self.message,
            "field": self.field,
        });
        if let Some(extra) = self.extra {
            let (k, v) = *extra;
            obj[k] = v;
        }
        let mut r = (self.status, axum::Json(json!({ "error": obj }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        r
    }
}
