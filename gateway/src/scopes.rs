//! Roles and scopes (spec `protocol.md` §5): which scope each method and
//! event needs, what a granted scope implies, and the error for a missing
//! one.

use serde_json::json;

use crate::protocol::ErrorShape;

/// `operator.admin`: everything.
pub const ADMIN: &str = "operator.admin";
/// `operator.read`.
pub const READ: &str = "operator.read";
/// `operator.write`.
pub const WRITE: &str = "operator.write";
/// `operator.pairing`.
pub const PAIRING: &str = "operator.pairing";

/// The scope `method` needs; `None` for methods any authenticated socket
/// may call (`health`, as the real gateway does).
pub fn method_scope(method: &str) -> Option<&'static str> {
    match method {
        "health" => None,
        m if m.starts_with("device.pair.")
            || m.starts_with("device.token.")
            || m.starts_with("node.pair.")
            || m == "node.rename" =>
        {
            Some(PAIRING)
        }
        // A node's own methods are gated by role, not scope.
        m if crate::nodes::NODE_METHODS.contains(&m) => None,
        "node.invoke" => Some(WRITE),
        m if m.starts_with("config.") && m != "config.get" => Some(ADMIN),
        "sessions.delete" => Some(ADMIN),
        "chat.send" | "chat.abort" | "agent" | "agent.wait" | "sessions.create"
        | "sessions.reset" | "sessions.patch" => Some(WRITE),
        _ => Some(READ),
    }
}

/// The scope an event needs to reach a socket; `None` for unscoped events.
pub fn event_scope(event: &str) -> Option<&'static str> {
    match event {
        "tick" | "health" | "heartbeat" | "shutdown" => None,
        e if e.starts_with("device.pair.") || e.starts_with("node.pair.") => Some(PAIRING),
        _ => Some(READ),
    }
}

/// True if `granted` satisfies `needed`: admin implies everything, write
/// implies read, talk and sessions, read implies sessions.read.
pub fn satisfies(granted: &[String], needed: &str) -> bool {
    granted.iter().any(|g| {
        g == needed
            || g == ADMIN
            || (g == WRITE
                && matches!(
                    needed,
                    READ | "operator.talk" | "operator.sessions.read" | "operator.sessions.write"
                ))
            || (g == READ && needed == "operator.sessions.read")
    })
}

/// `FORBIDDEN "missing scope: X"` with the details clients read.
pub fn forbidden(needed: &str) -> ErrorShape {
    ErrorShape {
        code: "FORBIDDEN",
        message: format!("missing scope: {needed}"),
        details: Some(
            json!({"code": "MISSING_SCOPE", "missingScope": needed, "requiredScopes": [needed]}),
        ),
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn implications() {
        assert!(satisfies(&s(&[ADMIN]), PAIRING));
        assert!(satisfies(&s(&[WRITE]), READ));
        assert!(!satisfies(&s(&[READ]), WRITE));
        assert!(!satisfies(&s(&[]), READ));
        assert!(satisfies(&s(&[READ]), "operator.sessions.read"));
        assert!(!satisfies(&s(&[READ]), PAIRING));
    }

    #[test]
    fn method_and_event_scopes() {
        assert_eq!(method_scope("health"), None);
        assert_eq!(method_scope("status"), Some(READ));
        assert_eq!(method_scope("device.pair.approve"), Some(PAIRING));
        assert_eq!(event_scope("tick"), None);
        assert_eq!(event_scope("presence"), Some(READ));
        assert_eq!(event_scope("device.pair.requested"), Some(PAIRING));
        let e = forbidden(READ);
        assert_eq!(
            (e.code, e.message.as_str()),
            ("FORBIDDEN", "missing scope: operator.read")
        );
    }
}
