//! The operator web UI: plain ES modules, CSS and message files from
//! `src/web/ui/`, embedded in the binary (no build step). `/` is the shell;
//! `/ui/...` the assets. They hold no data and need no login: every call
//! they make goes to the API, which does.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

macro_rules! assets {
    ($($path:literal => $mime:literal),* $(,)?) => {
        &[$(($path, $mime, include_str!(concat!("../web/ui/", $path)))),*]
    };
}

/// Every file of the UI: path under `/ui/`, content type, content.
pub const ASSETS: &[(&str, &str, &str)] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "i18n.js" => "text/javascript; charset=utf-8",
    "charts.js" => "text/javascript; charset=utf-8",
    "tree.js" => "text/javascript; charset=utf-8",
    "views/login.js" => "text/javascript; charset=utf-8",
    "views/catalogue.js" => "text/javascript; charset=utf-8",
    "views/camera.js" => "text/javascript; charset=utf-8",
    "views/checkpoints.js" => "text/javascript; charset=utf-8",
    "views/wall.js" => "text/javascript; charset=utf-8",
    "views/health.js" => "text/javascript; charset=utf-8",
    "views/import.js" => "text/javascript; charset=utf-8",
    "messages/zh-CN.json" => "application/json; charset=utf-8",
    "messages/en.json" => "application/json; charset=utf-8",
};

/// The UI's Content-Security-Policy: its own scripts, styles and API only;
/// video from the gateway (blob: for MSE); frames of its own embed page.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// A strong validator of an asset: FNV-1a of its bytes.
fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((_, mime, body)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no UI file {path:?}"),
        )
        .into_response();
    };
    let tag = etag(body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *mime)], *body).into_response()
    };
    let h = r.headers_mut();
    // Revalidated on every load, so an upgraded gateway serves its own UI.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if mime.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    r
}

/// `GET /`: the UI's shell.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{*path}`.
pub async fn asset(
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in src/web/ui is served, and nothing else is listed.
    #[test]
    fn every_ui_file_is_embedded() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/ui");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.0.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    /// The two message files have the same keys, and every `t('key')` in
    /// the scripts is in them.
    #[test]
    fn messages_cover_every_key() {
        let load = |name: &str| -> serde_json::Map<String, serde_json::Value> {
            let (_, _, body) = ASSETS.iter().find(|a| a.0 == name).unwrap();
            serde_json::from_str(body).unwrap()
        };
        let zh = load("messages/zh-CN.json");
        let en = load("messages/en.json");
        let zk: std::collections::BTreeSet<_> = zh.keys().collect();
        let ek: std::collections::BTreeSet<_> = en.keys().collect();
        assert_eq!(
            zk.symmetric_difference(&ek).collect::<Vec<_>>(),
            Vec::<&&String>::new(),
            "keys in one message file only"
        );
        // Namespaces of the keys (`state` of `state.online`).
        let spaces: std::collections::BTreeSet<&str> = zh
            .keys()
            .filter_map(|k| k.split_once('.'))
            .map(|(a, _)| a)
            .collect();
        let mut checked = 0;
        for (path, _, body) in ASSETS.iter().filter(|a| a.0.ends_with(".js")) {
            // Every quoted 'space.name' in a known namespace is a key, and
            // so is every t('key'); keys built at run time end in '.'
            // (`t('role.' + r)`) and are not checked.
            let b = body.as_bytes();
            for (at, _) in body.match_indices('\'') {
                let len = b[at + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'.')
                    .count();
                let end = at + 1 + len;
                if len == 0 || b.get(end) != Some(&b'\'') || b[end - 1] == b'.' {
                    continue;
                }
                let token = &body[at + 1..end];
                let called = body[..at].ends_with("t(")
                    && !body[..at - 2]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
                let spaced = token
                    .split_once('.')
                    .is_some_and(|(a, rest)| spaces.contains(a) && !rest.is_empty());
                if called || spaced {
                    checked += 1;
                    assert!(zh.contains_key(token), "{path}: '{token}' has no message");
                }
            }
        }
        assert!(checked > 100, "only {checked} keys found in the scripts");
    }

    /// Every code a field or CSV row problem can carry has a `rowerr.`
    /// message: the UI shows it before the server's (English) details.
    /// The codes are read from the sources that make them.
    #[test]
    fn every_problem_code_has_a_message() {
        let (_, _, body) = ASSETS
            .iter()
            .find(|a| a.0 == "messages/zh-CN.json")
            .unwrap();
        let zh: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body).unwrap();
        /// The string literal that starts `s` (after blanks), if any.
        fn literal(s: &str) -> Option<&str> {
            let s = s.trim_start().strip_prefix('"')?;
            let end = s.find('"')?;
            let code = &s[..end];
            code.bytes()
                .all(|c| c.is_ascii_lowercase() || c == b'_')
                .then_some(code)
        }
        let sources = [
            include_str!("../catalogue/validate.rs"),
            include_str!("../catalogue/csv.rs"),
            include_str!("../importer.rs"),
            include_str!("walls.rs"),
        ];
        let mut codes = std::collections::BTreeSet::new();
        for src in sources {
            // FieldError::new(field, "code", ...): the second argument.
            for (at, m) in src.match_indices("FieldError::new(") {
                let rest = &src[at + m.len()..];
                if let Some(code) = rest.split_once(',').and_then(|(_, r)| literal(r)) {
                    codes.insert(code);
                }
            }
            // err("code", ...), header_err("code", ...), code: "code".into(),
            // e.code = "code".into().
            for pat in ["err(", "code: ", "code = "] {
                for (at, m) in src.match_indices(pat) {
                    if let Some(code) = literal(&src[at + m.len()..]) {
                        codes.insert(code);
                    }
                }
            }
        }
        assert!(
            codes.len() >= 20,
            "only {} codes found: {codes:?}",
            codes.len()
        );
        let missing: Vec<_> = codes
            .iter()
            .filter(|c| !zh.contains_key(&format!("rowerr.{c}")))
            .collect();
        assert!(missing.is_empty(), "no rowerr. message for {missing:?}");
    }

    #[test]
    fn assets_revalidate_with_etags() {
        let r = serve("app.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let tag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(serve("app.js", &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
