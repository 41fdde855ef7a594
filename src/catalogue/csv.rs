//! The camera CSV format, for bulk import and export.
//!
//! UTF-8 with or without a byte-order mark, GB18030/GBK (what spreadsheet
//! programs on Chinese Windows save) or UTF-16 with a byte-order mark,
//! detected or named (see [`decode`]); a header row with English or
//! Chinese column names (they may be mixed); one camera per row. Empty cells
//! are "not given": on import a camera that already exists keeps the stored
//! value of a column left empty only for the password (exports never carry
//! passwords, so an export imports back unchanged); other columns take their
//! defaults as on create. Parsing is pure: it turns bytes into
//! [`CameraInput`]s and errors that name the line and column.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;

use super::model::Camera;
use super::validate::{CameraInput, FieldError, clip};

/// The columns: API field name, English header, Chinese header.
pub const COLUMNS: [(&str, &str, &str); 17] = [
    ("id", "id", "国标编码"),
    ("name", "name", "名称"),
    ("district", "district", "行政区划"),
    ("checkpoint", "checkpoint", "卡口"),
    ("point_type", "point_type", "点位类型"),
    ("ownership", "ownership", "权属"),
    ("industry_code", "industry_code", "行业编码"),
    ("address", "address", "地址"),
    ("longitude", "longitude", "经度"),
    ("latitude", "latitude", "纬度"),
    ("rtsp_url", "rtsp_url", "RTSP地址"),
    ("username", "username", "用户名"),
    ("password", "password", "密码"),
    ("transport", "transport", "传输"),
    ("pull_mode", "pull_mode", "拉流方式"),
    ("enabled", "enabled", "启用"),
    ("tags", "tags", "标签"),
];

/// Columns a file must have.
const REQUIRED: [&str; 3] = ["name", "district", "rtsp_url"];

/// Header language of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderLang {
    En,
    Zh,
}

impl std::str::FromStr for HeaderLang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Ok(HeaderLang::En),
            "zh" | "zh-cn" => Ok(HeaderLang::Zh),
            _ => Err(format!("must be en or zh, got {:?}", clip(s))),
        }
    }
}

/// A problem with one row (or the header, line 1), naming the column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// The column's header as written in the file, when the error is in one cell.
    pub column: Option<String>,
    /// 1-based column number.
    pub column_index: Option<usize>,
    pub code: String,
    pub message: String,
}

/// A parsed data row.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub input: CameraInput,
}

/// The parsed file: rows that parsed, and errors for those that did not.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub errors: Vec<RowError>,
    /// API field name -> (header as written, 1-based index).
    pub columns: HashMap<&'static str, (String, usize)>,
}

impl Parsed {
    /// Turns a validation error of the row at `line` into a row error naming
    /// its column.
    pub fn field_error(&self, line: u64, e: &FieldError) -> RowError {
        let col = self.columns.get(e.field);
        RowError {
            line,
            column: col
                .map(|c| c.0.clone())
                .or_else(|| Some(e.field.to_string())),
            column_index: col.map(|c| c.1),
            code: e.code.to_string(),
            message: e.message.clone(),
        }
    }
}

fn field_for_header(h: &str) -> Option<&'static str> {
    let h = h.trim();
    COLUMNS
        .iter()
        .find_map(|(field, en, zh)| (h.eq_ignore_ascii_case(en) || h == *zh).then_some(*field))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "是" | "启用" => Some(true),
        "false" | "0" | "no" | "n" | "否" | "停用" | "禁用" => Some(false),
        _ => None,
    }
}

/// Parses `key=value;key=value` (a full-width `；` also separates).
pub fn parse_tags(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s
        .split([';', '；'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("tag {:?} must be written key=value", clip(part)))?;
        if out
            .insert(k.trim().to_string(), v.trim().to_string())
            .is_some()
        {
            return Err(format!("tag key {:?} appears twice", clip(k.trim())));
        }
    }
    Ok(out)
}

/// Formats tags as `key=value;key=value`.
pub fn format_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The encodings a CSV file may be named in (`?encoding=`, `--encoding`).
pub const ENCODINGS: &str = "utf-8, gb18030, gbk, utf-16le, utf-16be";

/// The file's text as UTF-8, and the encoding it was read in.
///
/// With `label` (one of [`ENCODINGS`]) the file is read in that encoding.
/// Without, a byte-order mark decides (UTF-8, UTF-16LE/BE); else a file
/// that is valid UTF-8 is UTF-8, and one that decodes as GB18030 without
/// a single error is GB18030 (Excel's "CSV" on a Chinese Windows saves
/// GBK, a subset). Anything else is read as UTF-8, and its bad cells are
/// reported by line and column.
pub fn decode<'a>(
    bytes: &'a [u8],
    label: Option<&str>,
) -> Result<(std::borrow::Cow<'a, [u8]>, &'static str), String> {
    use encoding_rs::{GB18030, UTF_8, UTF_16BE, UTF_16LE};
    use std::borrow::Cow;
    let named = match label.map(|l| l.trim().to_ascii_lowercase()) {
        None => None,
        Some(l) if l.is_empty() => None,
        Some(l) => Some(match l.as_str() {
            "utf-8" | "utf8" => UTF_8,
            "gb18030" | "gbk" | "gb2312" | "cp936" => GB18030,
            "utf-16le" | "utf-16" => UTF_16LE,
            "utf-16be" => UTF_16BE,
            other => {
                return Err(format!(
                    "unknown encoding {:?}; use one of {ENCODINGS}",
                    clip(other)
                ));
            }
        }),
    };
    let enc = match named {
        Some(e) => e,
        None => match encoding_rs::Encoding::for_bom(bytes) {
            Some((e, _)) => e,
            None if std::str::from_utf8(bytes).is_ok() => UTF_8,
            None if GB18030
                .decode_without_bom_handling_and_without_replacement(bytes)
                .is_some() =>
            {
                GB18030
            }
            None => UTF_8,
        },
    };
    if enc == UTF_8 {
        return Ok((Cow::Borrowed(bytes), "UTF-8"));
    }
    let (text, _, had_errors) = enc.decode(bytes);
    if had_errors && named.is_some() {
        return Err(format!(
            "the file is not valid {} (bytes that are no {} text)",
            enc.name(),
            enc.name()
        ));
    }
    let name = if enc == GB18030 {
        "GB18030"
    } else {
        enc.name()
    };
    Ok((Cow::Owned(text.into_owned().into_bytes()), name))
}

/// Parses a camera CSV file. Never fails as a whole: problems are returned
/// as row errors (line 1 for the header).
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = rdr.byte_records();

    let header_err = |code: &str, column: Option<(String, usize)>, message: String| RowError {
        line: 1,
        column: column.as_ref().map(|c| c.0.clone()),
        column_index: column.map(|c| c.1),
        code: code.to_string(),
        message,
    };
    let header = match records.next() {
        None => {
            parsed.errors.push(header_err(
                "empty",
                None,
                "the file is empty: it needs a header row".into(),
            ));
            return parsed;
        }
        Some(Err(e)) => {
            parsed
                .errors
                .push(header_err("invalid_csv", None, format!("header row: {e}")));
            return parsed;
        }
        Some(Ok(h)) => h,
    };
    let mut fields: Vec<Option<&'static str>> = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let col = (String::from_utf8_lossy(raw).trim().to_string(), i + 1);
        let Ok(text) = std::str::from_utf8(raw) else {
            parsed.errors.push(header_err(
                "invalid_utf8",
                Some(col),
                "header is not valid UTF-8 (nor GB18030); name the file's encoding with ?encoding= or --encoding".into(),
            ));
            fields.push(None);
            continue;
        };
        match field_for_header(text) {
            Some(f) => {
                if parsed.columns.contains_key(f) {
                    parsed.errors.push(header_err(
                        "duplicate_column",
                        Some(col.clone()),
                        format!("column {:?} appears twice", col.0),
                    ));
                }
                parsed.columns.insert(f, col);
                fields.push(Some(f));
            }
            None if text.trim().is_empty() => fields.push(None),
            None => {
                let known: Vec<String> =
                    COLUMNS.iter().map(|c| format!("{}/{}", c.1, c.2)).collect();
                parsed.errors.push(header_err(
                    "unknown_column",
                    Some(col.clone()),
                    format!(
                        "unknown column {:?}; known columns: {}",
                        clip(&col.0),
                        known.join(", ")
                    ),
                ));
                fields.push(None);
            }
        }
    }
    for req in REQUIRED {
        if !parsed.columns.contains_key(req) {
            let (_, en, zh) = COLUMNS.iter().find(|c| c.0 == req).expect("known");
            parsed.errors.push(header_err(
                "missing_column",
                None,
                format!("required column {en} ({zh}) is missing"),
            ));
        }
    }
    if !parsed.errors.is_empty() {
        return parsed;
    }

    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                parsed.errors.push(RowError {
                    line,
                    column: None,
                    column_index: None,
                    code: "invalid_csv".into(),
                    message: format!("malformed CSV: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue; // blank line
        }
        if rec.len() != fields.len() {
            parsed.errors.push(RowError {
                line,
                column: None,
                column_index: None,
                code: "field_count".into(),
                message: format!(
                    "row has {} cells, the header has {}",
                    rec.len(),
                    fields.len()
                ),
            });
            continue;
        }
        let mut input = CameraInput::default();
        let mut row_ok = true;
        for (i, raw) in rec.iter().enumerate() {
            let Some(field) = fields[i] else { continue };
            let col = parsed.columns[field].clone();
            let mut err = |code: &str, message: String| {
                parsed.errors.push(RowError {
                    line,
                    column: Some(col.0.clone()),
                    column_index: Some(col.1),
                    code: code.into(),
                    message,
                });
            };
            let Ok(cell) = std::str::from_utf8(raw) else {
                err(
                    "invalid_utf8",
                    "cell is not valid UTF-8 (save the file as UTF-8, or name its encoding with ?encoding= or --encoding)".into(),
                );
                row_ok = false;
                continue;
            };
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let s = || Some(cell.to_string());
            match field {
                "id" => input.id = s(),
                "name" => input.name = s(),
                "district" => input.district = s(),
                "checkpoint" => input.checkpoint = Some(s()),
                "point_type" => match cell.parse::<i64>() {
                    Ok(p) => input.point_type = Some(p),
                    Err(_) => {
                        err(
                            "invalid",
                            format!("point_type must be 1, 2, 3 or 9, got {:?}", clip(cell)),
                        );
                        row_ok = false;
                    }
                },
                "ownership" => input.ownership = s(),
                "industry_code" => input.industry_code = s(),
                "address" => input.address = s(),
                "longitude" | "latitude" => match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => {
                        if field == "longitude" {
                            input.longitude = Some(Some(v));
                        } else {
                            input.latitude = Some(Some(v));
                        }
                    }
                    _ => {
                        err(
                            "invalid",
                            format!("{field} must be a number in degrees, got {:?}", clip(cell)),
                        );
                        row_ok = false;
                    }
                },
                "rtsp_url" => input.rtsp_url = s(),
                "username" => input.username = Some(s()),
                // Never quote a password cell.
                "password" => input.password = Some(s()),
                "transport" => input.transport = s(),
                "pull_mode" => input.pull_mode = s(),
                "enabled" => match parse_bool(cell) {
                    Some(b) => input.enabled = Some(b),
                    None => {
                        err(
                            "invalid",
                            format!("enabled must be true or false, got {:?}", clip(cell)),
                        );
                        row_ok = false;
                    }
                },
                "tags" => match parse_tags(cell) {
                    Ok(t) => input.tags = Some(t),
                    Err(m) => {
                        err("invalid", m);
                        row_ok = false;
                    }
                },
                _ => unreachable!("every column maps to a field"),
            }
        }
        if row_ok {
            parsed.rows.push(Row { line, input });
        }
    }
    parsed
}

/// A CSV writer into memory holding the header row, preceded for Chinese
/// headers by a byte-order mark (spreadsheet programs need it to read UTF-8).
pub fn writer(lang: HeaderLang) -> std::io::Result<::csv::Writer<Vec<u8>>> {
    let bom: &[u8] = if lang == HeaderLang::Zh {
        b"\xEF\xBB\xBF"
    } else {
        b""
    };
    let mut w = ::csv::Writer::from_writer(bom.to_vec());
    w.write_record(
        COLUMNS
            .iter()
            .map(|c| if lang == HeaderLang::Zh { c.2 } else { c.1 }),
    )?;
    Ok(w)
}

/// Writes cameras as CSV rows. The password column is always empty.
pub fn write_rows<W: Write>(w: &mut ::csv::Writer<W>, cameras: &[Camera]) -> std::io::Result<()> {
    for c in cameras {
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        w.write_record([
            c.id.as_str(),
            &c.name,
            &c.district_code,
            c.checkpoint_id.as_deref().unwrap_or(""),
            &c.point_type.to_string(),
            c.ownership.as_str(),
            &c.industry_code,
            &c.address,
            &opt(c.longitude),
            &opt(c.latitude),
            &c.rtsp_url,
            c.username.as_deref().unwrap_or(""),
            "",
            c.transport.as_str(),
            c.pull_mode.as_str(),
            if c.enabled { "true" } else { "false" },
            &format_tags(&c.tags),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_headers_with_bom() {
        let text = "\u{feff}名称,行政区划,RTSP地址,点位类型,权属,经度,纬度,标签\n\
                    东门,620602,rtsp://10.0.0.1/s,1,公共,102.6,37.9,zone=东;floor=1\n";
        let p = parse(text.as_bytes());
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.rows.len(), 1);
        let r = &p.rows[0];
        assert_eq!(r.line, 2);
        assert_eq!(r.input.name.as_deref(), Some("东门"));
        assert_eq!(r.input.longitude, Some(Some(102.6)));
        assert_eq!(r.input.tags.as_ref().unwrap()["zone"], "东");
    }

    #[test]
    fn errors_name_line_and_column() {
        let text = "name,district,rtsp_url,longitude,enabled\n\
                    a,620602,rtsp://h/1,abc,true\n\
                    b,620602,rtsp://h/2,1,maybe\n\
                    c,620602\n";
        let p = parse(text.as_bytes());
        assert_eq!(p.rows.len(), 0);
        assert_eq!(p.errors.len(), 3, "{:?}", p.errors);
        assert_eq!(
            (
                p.errors[0].line,
                p.errors[0].column.as_deref(),
                p.errors[0].column_index
            ),
            (2, Some("longitude"), Some(4))
        );
        assert_eq!(
            (p.errors[1].line, p.errors[1].column.as_deref()),
            (3, Some("enabled"))
        );
        assert_eq!(
            (p.errors[2].line, p.errors[2].code.as_str()),
            (4, "field_count")
        );
    }

    #[test]
    fn header_problems() {
        let p = parse(b"name,distrct,rtsp_url\n");
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert_eq!(p.errors[0].code, "unknown_column");
        assert_eq!(p.errors[0].column_index, Some(2));
        assert_eq!(p.errors[1].code, "missing_column");
        assert_eq!(parse(b"").errors[0].code, "empty");
    }

    #[test]
    fn tags_round_trip() {
        let t = parse_tags("a=1；b = x=y ;").unwrap();
        assert_eq!(t["b"], "x=y");
        assert_eq!(format_tags(&t), "a=1;b=x=y");
        assert!(parse_tags("a=1;a=2").is_err());
        assert!(parse_tags("novalue").is_err());
    }

    #[test]
    fn multiline_quoted_cells_keep_line_numbers() {
        let text =
            "name,district,rtsp_url,address\n\"x\",1,rtsp://h/1,\"two\nlines\"\ny,1,rtsp://h/2,\n";
        let p = parse(text.as_bytes());
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.rows[1].line, 4);
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    const TEXT: &str = "名称,行政区划,RTSP地址\n东关街口,620602,rtsp://10.0.0.1/a\n";

    #[test]
    fn gbk_and_gb18030_are_detected() {
        let (gbk, _, _) = encoding_rs::GB18030.encode(TEXT);
        assert!(std::str::from_utf8(&gbk).is_err(), "really not UTF-8");
        let (text, enc) = decode(&gbk, None).unwrap();
        assert_eq!(
            (std::str::from_utf8(&text).unwrap(), enc),
            (TEXT, "GB18030")
        );
        let (text, enc) = decode(&gbk, Some("GBK")).unwrap();
        assert_eq!(
            (std::str::from_utf8(&text).unwrap(), enc),
            (TEXT, "GB18030")
        );
        let p = parse(&text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.rows[0].input.name.as_deref(), Some("东关街口"));
    }

    #[test]
    fn utf8_and_utf16_with_a_bom() {
        let (t, enc) = decode(TEXT.as_bytes(), None).unwrap();
        assert_eq!((&t[..], enc), (TEXT.as_bytes(), "UTF-8"));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(TEXT.as_bytes());
        assert_eq!(decode(&bom, None).unwrap().1, "UTF-8");
        for (bom, le) in [([0xffu8, 0xfe], true), ([0xfe, 0xff], false)] {
            let mut v = bom.to_vec();
            for u in TEXT.encode_utf16() {
                v.extend(if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            let (t, enc) = decode(&v, None).unwrap();
            assert_eq!(std::str::from_utf8(&t).unwrap(), TEXT, "{enc}");
            assert_eq!(enc, if le { "UTF-16LE" } else { "UTF-16BE" });
        }
    }

    #[test]
    fn unknown_or_wrong_encodings_are_errors() {
        assert!(
            decode(b"a", Some("latin-9"))
                .unwrap_err()
                .contains("unknown encoding")
        );
        // Named UTF-16 but an odd number of bytes.
        assert!(decode(b"abc", Some("utf-16le")).is_err());
        // Neither UTF-8 nor GB18030: read as UTF-8, cells reported.
        let (t, enc) = decode(b"name\n\xff\xff\xff\n", None).unwrap();
        assert_eq!(enc, "UTF-8");
        assert!(!parse(&t).errors.is_empty());
    }
}
