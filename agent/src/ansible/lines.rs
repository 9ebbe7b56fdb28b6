//! `lineinfile`, `blockinfile` and `replace`: edits of a text file, following Ansible's own
//! algorithms line for line (so the same file ends up with the same bytes).

use std::path::Path;

use regex::Regex;

use super::args::{Args, FILE_COMMON};
use super::fsutil::{self, Attrs};
use super::{Diff, Failure, ModResult, ModuleResult, RunOptions};

fn compile(pattern: &str, multiline: bool) -> Result<Regex, Failure> {
    let p = if multiline { format!("(?m){pattern}") } else { pattern.to_string() };
    Regex::new(&p).map_err(|e| Failure::new(format!("Unable to process regular expression {pattern:?}: {e}")))
}

/// A Python `re` replacement template (`\1`, `\g<1>`, `\g<name>`, `\n`, `\\`) as a `regex`
/// replacement (`${1}`, `${name}`, literal `$` doubled).
pub fn python_template(t: &str) -> Result<String, Failure> {
    let mut out = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = d.to_string();
                    if let Some(e) = chars.peek().filter(|e| e.is_ascii_digit()) {
                        num.push(*e);
                        chars.next();
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    if chars.next() != Some('<') {
                        return Err(Failure::new("bad escape \\g in the replacement: missing <"));
                    }
                    let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                    if name.is_empty() {
                        return Err(Failure::new("bad escape \\g<> in the replacement: missing group name"));
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(other) if other.is_ascii_alphabetic() => {
                    return Err(Failure::new(format!("bad escape \\{other} in the replacement")));
                }
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Reads a file for editing: `Ok(None)` when it does not exist (and may be created).
fn read_target(path: &Path, create: bool, opts: &RunOptions) -> Result<Option<String>, Failure> {
    let p = path.display();
    if path.is_dir() {
        return Err(Failure::new(format!("Path {p} is a directory !")).with("rc", 256));
    }
    match std::fs::read(path) {
        Ok(data) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(Failure::new(format!("Path {p} does not exist !")).with("rc", 257));
            }
            if let Some(parent) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists())
                && !opts.check
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Failure::new(format!("Error creating {}: {e}", parent.display())))?;
            }
            Ok(None)
        }
        Err(e) => Err(Failure::new(format!("cannot read {p}: {e}"))),
    }
}

/// Writes the new content (when changed and not in check mode) and applies the attributes,
/// as Ansible's `write_changes` + `check_file_attrs`. Returns the final result.
/// An edit computed by a module: the file's text before and after.
struct Edit<'a> {
    existed: bool,
    before: &'a str,
    after: &'a str,
    changed: bool,
    msg: String,
}

fn finish(path: &Path, args: &Args, opts: &RunOptions, edit: Edit) -> ModResult {
    let Edit { existed, before, after, mut changed, mut msg } = edit;
    let backup = args.bool(&["backup"], false)?;
    let mut r = ModuleResult::ok(false);
    if changed && !opts.check {
        if backup && existed {
            r.values.insert("backup".into(), fsutil::backup_local(path)?.into());
        }
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        fsutil::write_atomic(&real, after.as_bytes(), args.str(&["validate"])?.as_deref())?;
    }
    let header = format!("{} (content)", path.display());
    let content_diff = if opts.diff { Diff::text(before, after, &header) } else { Diff::default() };
    if opts.check && !existed {
        r.changed = changed;
        r.msg = Some(msg);
        if opts.diff {
            r.diff.push(content_diff);
        }
        return Ok(r);
    }
    let mut attr_diff = Diff::default();
    if Attrs::from_args(args)?.apply(path, opts.check, true, &mut attr_diff)? {
        if changed {
            msg.push_str(" and ");
        }
        changed = true;
        msg.push_str("ownership, perms or SE linux context changed");
    }
    r.changed = changed;
    r.msg = Some(msg);
    if opts.diff {
        let attr_header = format!("{} (file attributes)", path.display());
        attr_diff.before_header = Some(attr_header.clone());
        attr_diff.after_header = Some(attr_header);
        r.diff.push(content_diff);
        r.diff.push(attr_diff);
    }
    Ok(r)
}

fn split_lines(s: &str) -> Vec<String> {
    s.split_inclusive('\n').map(String::from).collect()
}

/// A line as Python's `re.search` sees it for `$`: one final `\n` does not count.
fn py_line(l: &str) -> &str {
    l.strip_suffix('\n').unwrap_or(l)
}

fn strip_eol(l: &str) -> &str {
    l.trim_end_matches(['\r', '\n'])
}

fn ends_eol(l: &str) -> bool {
    l.ends_with('\n') || l.ends_with('\r')
}

/// `lineinfile`: one line present (or every matching line absent).
pub fn lineinfile(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "path",
            "dest",
            "destfile",
            "name",
            "state",
            "regexp",
            "regex",
            "search_string",
            "line",
            "value",
            "insertafter",
            "insertbefore",
            "backrefs",
            "create",
            "backup",
            "firstmatch",
            "validate",
        ],
        FILE_COMMON,
    )?;
    let path_s = args.required(&["path", "dest", "destfile", "name"])?;
    let path = Path::new(&path_s);
    let present = args.choice(&["state"], &["absent", "present"], Some("present"))?.as_deref() == Some("present");
    let regexp = args.str(&["regexp", "regex"])?;
    let search = args.str(&["search_string"])?;
    let line = args.str(&["line", "value"])?;
    let after = args.str(&["insertafter"])?;
    let before_ins = args.str(&["insertbefore"])?;
    let backrefs = args.bool(&["backrefs"], false)?;
    let create = args.bool(&["create"], false)?;
    let firstmatch = args.bool(&["firstmatch"], false)?;
    if after.is_some() && before_ins.is_some() {
        return Err(Failure::new("parameters are mutually exclusive: insertbefore|insertafter"));
    }
    if regexp.is_some() && search.is_some() {
        return Err(Failure::new("parameters are mutually exclusive: regexp|search_string"));
    }
    if regexp.as_deref() == Some("") || search.as_deref() == Some("") {
        // Ansible warns and goes on; an empty pattern matches every line.
    }
    let re = regexp.as_deref().map(|r| compile(r, false)).transpose()?;

    if !present {
        if regexp.is_none() && search.is_none() && line.is_none() {
            return Err(Failure::new("one of line, search_string, or regexp is required with state=absent"));
        }
        let Some(content) = (match std::fs::read(path) {
            Ok(d) => Some(String::from_utf8_lossy(&d).into_owned()),
            Err(_) => None,
        }) else {
            return Ok(ModuleResult::ok(false).msg("file not present"));
        };
        let mut found = 0;
        let kept: Vec<String> = split_lines(&content)
            .into_iter()
            .filter(|l| {
                let m = match (&re, &search, &line) {
                    (Some(re), _, _) => re.is_match(py_line(l)),
                    (None, Some(s), _) => l.contains(s.as_str()),
                    (None, None, Some(line)) => strip_eol(l) == line,
                    _ => false,
                };
                if m {
                    found += 1;
                }
                !m
            })
            .collect();
        let after_text = kept.concat();
        let msg = if found > 0 { format!("{found} line(s) removed") } else { String::new() };
        let edit = Edit { existed: true, before: &content, after: &after_text, changed: found > 0, msg };
        let r = finish(path, &args, opts, edit)?;
        return Ok(r.set("found", found));
    }

    let Some(line) = line else {
        return Err(Failure::new("state is present but all of the following are missing: line"));
    };
    if backrefs && regexp.is_none() {
        return Err(Failure::new("regexp is required with backrefs=true"));
    }
    let original = read_target(path, create, opts)?;
    let existed = original.is_some();
    let before_text = original.clone().unwrap_or_default();
    let mut lines = split_lines(&before_text);

    let ins_re = match (&after, &before_ins) {
        (Some(a), _) if a != "BOF" && a != "EOF" => Some(compile(a, false)?),
        (None, Some(b)) if b != "BOF" => Some(compile(b, false)?),
        _ => None,
    };
    let mut index: [i64; 2] = [-1, -1];
    let mut matched: Option<String> = None;
    let mut exact = false;
    if let Some(re) = &re {
        for (n, l) in lines.iter().enumerate() {
            if re.is_match(py_line(l)) {
                index[0] = n as i64;
                matched = Some(l.clone());
                if firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(s) = &search {
        for (n, l) in lines.iter().enumerate() {
            if l.contains(s.as_str()) {
                index[0] = n as i64;
                matched = Some(l.clone());
                if firstmatch {
                    break;
                }
            }
        }
    }
    if matched.is_none() {
        for (n, l) in lines.iter().enumerate() {
            if strip_eol(l) == line {
                index[0] = n as i64;
                exact = true;
            } else if let Some(ins) = &ins_re
                && ins.is_match(py_line(l))
            {
                if after.is_some() {
                    index[1] = n as i64 + 1;
                    if firstmatch {
                        break;
                    }
                }
                if before_ins.is_some() {
                    index[1] = n as i64;
                    if firstmatch {
                        break;
                    }
                }
            }
        }
    }

    let nl = "\n";
    let with_nl = format!("{line}{nl}");
    let mut msg = "";
    let mut changed = false;
    let added = |lines: &mut Vec<String>, at: usize| lines.insert(at, with_nl.clone());
    if index[0] != -1 {
        let mut new_line = match (&re, &matched) {
            (Some(re), Some(m)) if backrefs => {
                let caps = re.captures(py_line(m));
                let mut out = String::new();
                if let Some(caps) = caps {
                    caps.expand(&python_template(&line)?, &mut out);
                }
                out
            }
            _ => line.clone(),
        };
        if !new_line.ends_with(nl) {
            new_line.push_str(nl);
        }
        let i0 = index[0] as usize;
        if re.is_none() && search.is_none() && matched.is_none() && !exact {
            // Not reachable: index[0] is set only by a match or an exact line.
        } else if lines[i0] != new_line {
            lines[i0] = new_line;
            msg = "line replaced";
            changed = true;
        }
    } else if backrefs {
        // Without a match the back-references have nothing to expand: Ansible leaves the file.
    } else if before_ins.as_deref() == Some("BOF") || after.as_deref() == Some("BOF") {
        added(&mut lines, 0);
        msg = "line added";
        changed = true;
    } else if after.as_deref() == Some("EOF") || index[1] == -1 {
        if let Some(last) = lines.last()
            && !ends_eol(last)
        {
            lines.push(nl.to_string());
        }
        lines.push(with_nl.clone());
        msg = "line added";
        changed = true;
    } else if after.is_some() {
        let i1 = index[1] as usize;
        if lines.len() == i1 {
            if strip_eol(&lines[i1 - 1]) != line {
                lines.push(with_nl.clone());
                msg = "line added";
                changed = true;
            }
        } else if strip_eol(&lines[i1]) != line {
            added(&mut lines, i1);
            msg = "line added";
            changed = true;
        }
    } else {
        added(&mut lines, index[1] as usize);
        msg = "line added";
        changed = true;
    }
    let after_text = lines.concat();
    let edit = Edit { existed, before: &before_text, after: &after_text, changed, msg: msg.to_string() };
    finish(path, &args, opts, edit).map(|mut r| {
        r.values.entry("backup").or_insert_with(|| "".into());
        r
    })
}

/// `blockinfile`: a block between two marker lines.
pub fn blockinfile(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "path",
            "dest",
            "destfile",
            "name",
            "state",
            "marker",
            "block",
            "content",
            "insertafter",
            "insertbefore",
            "create",
            "backup",
            "validate",
            "marker_begin",
            "marker_end",
            "append_newline",
            "prepend_newline",
        ],
        FILE_COMMON,
    )?;
    let path_s = args.required(&["path", "dest", "destfile", "name"])?;
    let path = Path::new(&path_s);
    let present = args.choice(&["state"], &["absent", "present"], Some("present"))?.as_deref() == Some("present");
    let marker = args.str(&["marker"])?.unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
    let mut block = args.str(&["block", "content"])?.unwrap_or_default();
    let mut insertafter = args.str(&["insertafter"])?;
    let insertbefore = args.str(&["insertbefore"])?;
    let create = args.bool(&["create"], false)?;
    let begin = args.str(&["marker_begin"])?.unwrap_or_else(|| "BEGIN".into());
    let end = args.str(&["marker_end"])?.unwrap_or_else(|| "END".into());
    let append_newline = args.bool(&["append_newline"], false)?;
    let prepend_newline = args.bool(&["prepend_newline"], false)?;
    if insertafter.is_some() && insertbefore.is_some() {
        return Err(Failure::new("parameters are mutually exclusive: insertbefore|insertafter"));
    }
    if path.is_dir() {
        return Err(Failure::new(format!("Path {path_s} is a directory !")).with("rc", 256));
    }
    if !present && !path.exists() {
        return Ok(ModuleResult::ok(false).msg(format!("File {path_s} not present")));
    }
    let original = read_target(path, create, opts)?;
    let existed = original.is_some();
    let mut lines = split_lines(original.as_deref().unwrap_or(""));
    if insertbefore.is_none() && insertafter.is_none() {
        insertafter = Some("EOF".into());
    }
    let insert_re = match (&insertafter, &insertbefore) {
        (Some(a), _) if a != "EOF" => Some(compile(a, false)?),
        (None, Some(b)) if b != "BOF" => Some(compile(b, false)?),
        _ => None,
    };
    let nl = "\n";
    let marker0 = format!("{}{nl}", marker.replace("{mark}", &begin));
    let marker1 = format!("{}{nl}", marker.replace("{mark}", &end));
    let blocklines: Vec<String> = if present && !block.is_empty() {
        if !block.ends_with(nl) {
            block.push_str(nl);
        }
        std::iter::once(marker0.clone()).chain(split_lines(&block)).chain(std::iter::once(marker1.clone())).collect()
    } else {
        Vec::new()
    };
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut at = match (n0, n1) {
        (Some(a), Some(b)) if a < b => {
            lines.drain(a..=b);
            a
        }
        (Some(a), Some(b)) => {
            lines.drain(b..=a);
            b
        }
        _ => {
            if let Some(re) = &insert_re {
                let mut found = None;
                for (i, l) in lines.iter().enumerate() {
                    if re.is_match(py_line(l)) {
                        found = Some(i);
                    }
                }
                match found {
                    None => lines.len(),
                    Some(i) if insertafter.is_some() => i + 1,
                    Some(i) => i,
                }
            } else if insertbefore.is_some() {
                0
            } else {
                lines.len()
            }
        }
    };
    if at > 0 && !lines[at - 1].ends_with(nl) {
        lines[at - 1].push_str(nl);
    }
    if prepend_newline && present && at != 0 && lines[at - 1] != nl {
        lines.insert(at, nl.to_string());
        at += 1;
    }
    let count = blocklines.len();
    lines.splice(at..at, blocklines);
    if append_newline && present {
        let after_block = at + count;
        if after_block < lines.len() && lines[after_block] != nl {
            lines.insert(after_block, nl.to_string());
        }
    }
    let result = lines.concat();
    let (changed, msg) = if original.as_deref() == Some(result.as_str()) {
        (false, "")
    } else if original.is_none() {
        (true, "File created")
    } else if count == 0 {
        (true, "Block removed")
    } else {
        (true, "Block inserted")
    };
    let before = original.unwrap_or_default();
    finish(path, &args, opts, Edit { existed, before: &before, after: &result, changed, msg: msg.to_string() })
}

/// `replace`: every match of a regular expression replaced (Python-style back-references).
pub fn replace(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &["path", "dest", "destfile", "name", "regexp", "replace", "after", "before", "backup", "validate", "encoding"],
        FILE_COMMON,
    )?;
    let path_s = args.required(&["path", "dest", "destfile", "name"])?;
    let path = Path::new(&path_s);
    let regexp = args.required(&["regexp"])?;
    let replacement = python_template(&args.str(&["replace"])?.unwrap_or_default())?;
    let after = args.str(&["after"])?.filter(|s| !s.is_empty());
    let before = args.str(&["before"])?.filter(|s| !s.is_empty());
    let contents = read_target(path, false, opts)?.unwrap_or_default();
    let section_pattern = match (&after, &before) {
        (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
        (None, None) => None,
    };
    let (start, end) = match &section_pattern {
        None => (0, contents.len()),
        Some(p) => {
            // Python's re.DOTALL: `.` crosses lines.
            let re = compile(&format!("(?s){p}"), false)?;
            match re.captures(&contents).and_then(|c| c.name("subsection")) {
                Some(m) => (m.start(), m.end()),
                None => {
                    return Ok(ModuleResult::ok(false)
                        .msg(format!("Pattern for before/after params did not match the given file: {p}"))
                        .set("rc", 0));
                }
            }
        }
    };
    let section = &contents[start..end];
    let re = compile(&regexp, true)?;
    let count = re.find_iter(section).count();
    let replaced = re.replace_all(section, replacement.as_str());
    let (changed, msg, result) = if count > 0 && replaced != section {
        let full = format!("{}{}{}", &contents[..start], replaced, &contents[end..]);
        (true, format!("{count} replacements made"), full)
    } else {
        (false, String::new(), contents.clone())
    };
    let backup = args.bool(&["backup"], false)?;
    let mut r = ModuleResult::ok(false).set("rc", 0);
    if changed && opts.diff {
        r.diff.push(Diff::text(&contents, &result, &path_s));
    }
    if changed && !opts.check {
        if backup {
            r.values.insert("backup_file".into(), fsutil::backup_local(path)?.into());
        }
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        fsutil::write_atomic(&real, result.as_bytes(), args.str(&["validate"])?.as_deref())?;
    }
    let mut msg = msg;
    let mut changed = changed;
    if Attrs::from_args(&args)?.apply(path, opts.check, true, &mut Diff::default())? {
        if changed {
            msg.push_str(" and ");
        }
        changed = true;
        msg.push_str("ownership, perms or SE linux context changed");
    }
    r.changed = changed;
    r.msg = Some(msg);
    Ok(r)
}
