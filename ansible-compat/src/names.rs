//! Names Ansible accepts.
//!
//! Ansible wants group names to be valid variable names (letters, digits, `_`, not starting
//! with a digit) and warns about, or rewrites, any other; Mangrove's names also use `-` and
//! `.`. Export writes only names Ansible keeps as they are.

/// A group name Ansible accepts unchanged: every character other than an ASCII letter, digit
/// or `_` becomes `_`, and a leading digit gets a `_` in front.
///
/// ```
/// assert_eq!(ansible_compat::safe_group_name("system_dvc-portal"), "system_dvc_portal");
/// assert_eq!(ansible_compat::safe_group_name("3rd.site"), "_3rd_site");
/// ```
pub fn safe_group_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Whether Ansible accepts `name` as a group name unchanged.
pub fn is_safe_group_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_become_underscores() {
        for (raw, safe) in [
            ("dc", "dc"),
            ("level_3", "level_3"),
            ("system_cong-bao", "system_cong_bao"),
            ("a.b c", "a_b_c"),
            ("", "_"),
            ("9x", "_9x"),
            ("hệ", "h_"),
        ] {
            assert_eq!(safe_group_name(raw), safe, "{raw}");
            assert!(is_safe_group_name(&safe_group_name(raw)));
        }
        assert!(!is_safe_group_name("web-servers"));
    }
}
