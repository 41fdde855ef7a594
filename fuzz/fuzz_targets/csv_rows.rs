//! A camera CSV file as an operator's spreadsheet may save it: encoding
//! detection, then rows and errors. Invariants: every error names a line
//! within the file, rows and errors never exceed the lines.
#![no_main]

use camgate::catalogue::csv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let label = match data.first() {
        Some(b) if b % 5 == 1 => Some("gb18030"),
        Some(b) if b % 5 == 2 => Some("utf-16le"),
        _ => None,
    };
    let Ok((text, _)) = csv::decode(data, label) else { return };
    let parsed = csv::parse(&text);
    let lines = text.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    assert!(parsed.rows.len() as u64 <= lines);
    for e in &parsed.errors {
        assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}", e.line);
    }
    for r in &parsed.rows {
        let _ = csv::parse_tags(r.input.tags.as_ref().map_or("", |_| ""));
    }
});
