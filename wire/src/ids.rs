//! The one rule for ids (site, gateway, device, point, hazard source): configs are checked
//! against it when loaded, and the central side checks every id that arrives against it,
//! so an id can always be a topic level, a store tag and a URL segment without escaping
//! surprises.

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub const ID_RULE: &str = "use 1 to 64 letters, digits, '_', '-' or '.'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("GD-101"));
        assert!(valid_id("HB-420100-0001.a_b"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a+"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
