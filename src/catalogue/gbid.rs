//! GB/T 28181 rule-A device IDs (20 digits):
//!
//! ```text
//! 62060200 00 132 0 000001
//! |        |  |   | `- serial (6)
//! |        |  |   `--- network flag (1): 0-4 private video net, 5 police,
//! |        |  |        6 government, 7 internet, 8 social resources
//! |        |  `------- type (3): 131 camera, 132 IPC, 121 checkpoint camera,
//! |        |           200 platform, 215 business group, 216 virtual organisation
//! |        `---------- industry (2): 00 public road, 01 community, 05 traffic
//! |                    checkpoint, 80-89 resident-built ...
//! `------------------- centre code (8): 6-digit GB/T 2260 county + 2-digit
//!                      grassroots unit
//! ```

use std::fmt;

/// Type codes that denote a camera, and so are valid for a camera's ID.
pub const CAMERA_TYPE_CODES: [&str; 3] = ["121", "131", "132"];
/// Type code given to generated camera IDs (IPC).
pub const GENERATED_CAMERA_TYPE: &str = "132";
/// Type code given to generated checkpoint IDs (virtual organisation: a
/// checkpoint groups the cameras of one site).
pub const GENERATED_CHECKPOINT_TYPE: &str = "216";

/// The parts of a syntactically valid 20-digit ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GbId<'a> {
    pub raw: &'a str,
}

/// Why a string is not a rule-A ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GbIdError {
    Length(usize),
    NotDigits,
    NetworkFlag(char),
}

impl fmt::Display for GbIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GbIdError::Length(n) => write!(f, "must be 20 digits, got {n} characters"),
            GbIdError::NotDigits => write!(f, "must be 20 digits (0-9 only)"),
            GbIdError::NetworkFlag(c) => {
                write!(f, "network flag (15th digit) must be 0-8, got {c}")
            }
        }
    }
}

impl<'a> GbId<'a> {
    /// Checks the syntax of a rule-A ID.
    ///
    /// ```
    /// use camgate::catalogue::gbid::GbId;
    /// let id = GbId::parse("62060200001320000001").unwrap();
    /// assert_eq!((id.county6(), id.industry(), id.type_code(), id.serial()), ("620602", "00", "132", 1));
    /// assert!(GbId::parse("6206020000132000000").is_err()); // 19 digits
    /// ```
    pub fn parse(raw: &'a str) -> Result<Self, GbIdError> {
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(if raw.chars().count() == 20 {
                GbIdError::NotDigits
            } else {
                GbIdError::Length(raw.chars().count())
            });
        }
        if raw.len() != 20 {
            return Err(GbIdError::Length(raw.len()));
        }
        let flag = raw.as_bytes()[13] as char;
        if flag == '9' {
            return Err(GbIdError::NetworkFlag(flag));
        }
        Ok(GbId { raw })
    }
    /// First 6 digits: the GB/T 2260 code of the centre's county (or padded
    /// prefecture or province).
    pub fn county6(&self) -> &'a str {
        &self.raw[..6]
    }
    pub fn centre(&self) -> &'a str {
        &self.raw[..8]
    }
    pub fn industry(&self) -> &'a str {
        &self.raw[8..10]
    }
    pub fn type_code(&self) -> &'a str {
        &self.raw[10..13]
    }
    pub fn network_flag(&self) -> u8 {
        self.raw.as_bytes()[13] - b'0'
    }
    pub fn serial(&self) -> u32 {
        self.raw[14..].parse().expect("digits")
    }
    /// The first 14 digits: everything but the serial.
    pub fn prefix14(&self) -> &'a str {
        &self.raw[..14]
    }
}

/// Builds the 14-digit prefix of a generated ID.
pub fn prefix14(county6: &str, industry: &str, type_code: &str, network_flag: u8) -> String {
    debug_assert_eq!(county6.len(), 6);
    debug_assert_eq!(industry.len(), 2);
    debug_assert_eq!(type_code.len(), 3);
    format!("{county6}00{industry}{type_code}{network_flag}")
}

/// The largest serial.
pub const MAX_SERIAL: u32 = 999_999;

/// Joins a 14-digit prefix and a serial into an ID.
pub fn with_serial(prefix14: &str, serial: u32) -> String {
    format!("{prefix14}{serial:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rule_a() {
        let id = GbId::parse("62060200001320000001").unwrap();
        assert_eq!(id.county6(), "620602");
        assert_eq!(id.centre(), "62060200");
        assert_eq!(id.industry(), "00");
        assert_eq!(id.type_code(), "132");
        assert_eq!(id.network_flag(), 0);
        assert_eq!(id.serial(), 1);
        assert_eq!(id.prefix14(), "62060200001320");
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(GbId::parse("1234"), Err(GbIdError::Length(4)));
        assert_eq!(
            GbId::parse("6206020000132000000A"),
            Err(GbIdError::NotDigits)
        );
        assert_eq!(
            GbId::parse("62060200001329000001"),
            Err(GbIdError::NetworkFlag('9'))
        );
        assert_eq!(
            GbId::parse("６２0602000013200000"),
            Err(GbIdError::Length(18))
        );
    }

    #[test]
    fn builds_ids() {
        let p = prefix14("620602", "01", "132", 8);
        assert_eq!(p, "62060200011328");
        assert_eq!(with_serial(&p, 42), "62060200011328000042");
    }
}
