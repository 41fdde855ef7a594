//! Access control: who is asking (a user, an API key or a signed embed
//! link), what their role allows, and the district subtree they may see.
//!
//! Scopes are district codes in natural length (2, 4, 6, 9 or 12 digits),
//! so a district is inside a scope exactly when its code starts with the
//! scope's code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod cipher;
pub mod digest;
pub mod gate;
pub mod password;
pub mod service;
pub mod token;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Browse the catalogue and view streams.
    Viewer,
    /// Also write the catalogue and create embed links.
    Operator,
    /// Everything, including users, keys and the audit trail.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes everything `other` may do.
    pub fn at_least(self, other: Role) -> bool {
        self >= other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("`{s}` is not a role (admin, operator, viewer)")),
        }
    }
}

/// A district subtree, or everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope(pub Option<String>);

impl Scope {
    pub fn all() -> Scope {
        Scope(None)
    }

    pub fn district(code: &str) -> Scope {
        Scope(Some(code.to_string()))
    }

    /// The scope's district code, `None` for everything.
    pub fn code(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether district `code` is inside the scope.
    pub fn contains(&self, code: &str) -> bool {
        self.0.as_deref().is_none_or(|s| code.starts_with(s))
    }

    /// The district filter for a request that asks for `requested`: the
    /// narrower of the two, or `None` when they do not overlap (the answer
    /// is then empty).
    pub fn narrow(&self, requested: Option<&str>) -> Option<Option<String>> {
        match (self.code(), requested) {
            (None, r) => Some(r.map(str::to_string)),
            (Some(s), None) => Some(Some(s.to_string())),
            (Some(s), Some(r)) if r.starts_with(s) => Some(Some(r.to_string())),
            (Some(s), Some(r)) if s.starts_with(r) => Some(Some(s.to_string())),
            _ => None,
        }
    }
}

/// Which kind of principal, with what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    User {
        id: i64,
        username: String,
    },
    Key {
        id: String,
        name: String,
    },
    /// A signed embed link: its one camera, or its district (the scope).
    Link {
        id: String,
        camera: Option<String>,
    },
}

/// Who is asking, and what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub role: Role,
    pub scope: Scope,
}

impl Principal {
    /// How the principal is named in the audit trail and logs:
    /// `user:NAME`, `key:ID` or `link:ID`.
    pub fn label(&self) -> String {
        match &self.kind {
            PrincipalKind::User { username, .. } => format!("user:{username}"),
            PrincipalKind::Key { id, .. } => format!("key:{id}"),
            PrincipalKind::Link { id, .. } => format!("link:{id}"),
        }
    }

    /// Whether this principal may see camera `id` in district `district`.
    pub fn may_see(&self, id: &str, district: &str) -> bool {
        if let PrincipalKind::Link {
            camera: Some(c), ..
        } = &self.kind
            && c != id
        {
            return false;
        }
        self.scope.contains(district)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Admin.at_least(Role::Operator));
        assert!(Role::Operator.at_least(Role::Viewer));
        assert!(!Role::Viewer.at_least(Role::Operator));
        for r in [Role::Admin, Role::Operator, Role::Viewer] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn scopes_contain_their_subtree_only() {
        let county = Scope::district("620602");
        assert!(county.contains("620602"));
        assert!(county.contains("620602001"));
        assert!(county.contains("620602001001"));
        assert!(!county.contains("620603"));
        assert!(!county.contains("6206"), "the city is outside");
        assert!(Scope::all().contains("33"));
        assert_eq!(county.narrow(None), Some(Some("620602".into())));
        assert_eq!(county.narrow(Some("62")), Some(Some("620602".into())));
        assert_eq!(
            county.narrow(Some("620602001")),
            Some(Some("620602001".into()))
        );
        assert_eq!(county.narrow(Some("620603")), None);
        assert_eq!(Scope::all().narrow(Some("33")), Some(Some("33".into())));
    }

    #[test]
    fn a_camera_link_sees_its_camera_only() {
        let link = Principal {
            kind: PrincipalKind::Link {
                id: "l".into(),
                camera: Some("c1".into()),
            },
            role: Role::Viewer,
            scope: Scope::all(),
        };
        assert!(link.may_see("c1", "620602"));
        assert!(!link.may_see("c2", "620602"));
        assert_eq!(link.label(), "link:l");
        let key = Principal {
            kind: PrincipalKind::Key {
                id: "k".into(),
                name: "platform".into(),
            },
            role: Role::Viewer,
            scope: Scope::district("620602"),
        };
        assert!(key.may_see("c2", "620602001"));
        assert!(!key.may_see("c2", "620603"));
    }
}
