//! Host ranges as Ansible expands them: `web[01:10]` (zero-padded when the start is),
//! `db-[a:c]`, `node[1:9:2]` (a step), several ranges in one name, and a `:port` suffix.

/// Most hosts one pattern may expand to.
pub const MAX_HOSTS: usize = 100_000;

/// A host pattern's host names and port, or what is wrong with it.
///
/// ```
/// use ansible_compat::hostrange::expand;
/// assert_eq!(expand("web[01:03]").unwrap(), (vec!["web01".to_string(), "web02".into(), "web03".into()], None));
/// assert_eq!(expand("db-[a:b]:2222").unwrap(), (vec!["db-a".to_string(), "db-b".into()], Some(2222)));
/// ```
///
/// # Errors
/// A message for an unclosed bracket, a bad bound or step, a range running backwards,
/// begin and end of different widths when zero-padded, or more than [`MAX_HOSTS`] hosts.
pub fn expand(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let (name, port) = split_port(pattern)?;
    let mut out = Vec::new();
    expand_into(name, &mut out)?;
    Ok((out, port))
}

fn split_port(pattern: &str) -> Result<(&str, Option<u16>), String> {
    // A `:` outside brackets, once, followed by digits, is a port (IPv6 addresses are not ranges).
    let mut depth = 0i32;
    let mut colons = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [] => Ok((pattern, None)),
        [i] => {
            let port = &pattern[i + 1..];
            if port.is_empty() {
                return Err(format!("host pattern `{pattern}` ends in `:` (a port is missing)"));
            }
            let p: u16 =
                port.parse().map_err(|_| format!("host pattern `{pattern}`: `{port}` is not a port number"))?;
            Ok((&pattern[..*i], Some(p)))
        }
        _ => Ok((pattern, None)),
    }
}

fn expand_into(name: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = name.find('[') else {
        if name.contains(']') {
            return Err(format!("host pattern `{name}` has `]` without `[`"));
        }
        out.push(name.to_owned());
        return Ok(());
    };
    let close =
        name[open..].find(']').map(|i| i + open).ok_or_else(|| format!("host pattern `{name}` has an unclosed `[`"))?;
    let head = &name[..open];
    let range = &name[open + 1..close];
    let tail = &name[close + 1..];
    let parts: Vec<&str> = range.split(':').collect();
    let (beg, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => return Err(format!("host range `[{range}]` must be `[begin:end]` or `[begin:end:step]`")),
    };
    let beg = if beg.is_empty() { "0" } else { beg };
    if end.is_empty() {
        return Err(format!("host range `[{range}]` has no end"));
    }
    let step: usize =
        step.parse().ok().filter(|s| *s > 0).ok_or_else(|| format!("host range `[{range}]`: bad step `{step}`"))?;
    let items: Vec<String> = if beg.len() == 1
        && end.len() == 1
        && beg.chars().all(|c| c.is_ascii_alphabetic())
        && end.chars().all(|c| c.is_ascii_alphabetic())
    {
        const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let (b, e) = (LETTERS.find(beg).unwrap_or(0), LETTERS.find(end).unwrap_or(0));
        if b > e {
            return Err(format!("host range `[{range}]` runs backwards"));
        }
        LETTERS[b..=e].chars().step_by(step).map(String::from).collect()
    } else {
        let (b, e): (u64, u64) = match (beg.parse(), end.parse()) {
            (Ok(b), Ok(e)) => (b, e),
            _ => return Err(format!("host range `[{range}]`: bounds must be numbers or single letters")),
        };
        if b > e {
            return Err(format!("host range `[{range}]` runs backwards"));
        }
        if (e - b) / step as u64 > MAX_HOSTS as u64 {
            return Err(format!("host range `[{range}]` names more than {MAX_HOSTS} hosts"));
        }
        let width = if beg.starts_with('0') && beg.len() > 1 {
            if beg.len() != end.len() {
                return Err(format!("host range `[{range}]`: zero-padded begin and end must have the same width"));
            }
            beg.len()
        } else {
            0
        };
        (b..=e).step_by(step).map(|n| format!("{n:0width$}")).collect()
    };
    for item in items {
        if out.len() >= MAX_HOSTS {
            return Err(format!("host pattern `{name}` names more than {MAX_HOSTS} hosts"));
        }
        expand_into(&format!("{head}{item}{tail}"), out)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<String> {
        expand(p).unwrap().0
    }

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(names("web[01:10]").len(), 10);
        assert_eq!(names("web[01:10]")[9], "web10");
        assert_eq!(names("web[1:3]"), ["web1", "web2", "web3"]);
        assert_eq!(names("x[a:c]y"), ["xay", "xby", "xcy"]);
        assert_eq!(names("n[1:5:2]"), ["n1", "n3", "n5"]);
        assert_eq!(names("r[1:2]-[a:b]"), ["r1-a", "r1-b", "r2-a", "r2-b"]);
        assert_eq!(names("plain"), ["plain"]);
        assert_eq!(expand("h:22").unwrap().1, Some(22));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in ["web[1:", "web[3:1]", "web[01:100]", "web[a:1]", "web[1:3:0]", "h:", "h:port", "x]"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
        assert!(expand("h[0:9999999]").is_err());
    }
}
