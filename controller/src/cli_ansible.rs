//! `mangrove ansible …`: Mangrove's inventory for Ansible (dynamic inventory and static
//! files), importing Ansible inventories, and playbooks (loaded and checked here, then run
//! by the controller through the agents).

use std::path::{Path, PathBuf};

use ansible_compat::loader::{Disk, SourceFile, read_tree};
use ansible_compat::{AnsibleInventory, export, patterns, playbook, render, tags};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::{emit, s, table, write_out};
use crate::client::Client;

#[derive(Debug, clap::Subcommand)]
pub enum AnsibleCmd {
    /// Mangrove's inventory for Ansible: a dynamic inventory (`--list`, `--host H`: point
    /// `ansible -i` at a script that runs this) or a static file (`--static yaml|ini`).
    Inventory {
        /// Every group and host, with `_meta.hostvars` (Ansible's dynamic-inventory protocol).
        #[arg(long, conflicts_with_all = ["host", "static_format"])]
        list: bool,
        /// One host's variables.
        #[arg(long, conflicts_with = "static_format")]
        host: Option<String>,
        /// A static inventory in Ansible's YAML or INI format.
        #[arg(long = "static", value_parser = ["yaml", "ini"])]
        static_format: Option<String>,
        /// Write the static inventory here instead of stdout.
        #[arg(long, requires = "static_format")]
        out: Option<PathBuf>,
    },
    /// Read an Ansible inventory (INI or YAML file, or a directory, with group_vars/ and
    /// host_vars/) and show what it would add or change; `--apply` applies it (operator).
    Import {
        path: PathBuf,
        #[arg(long)]
        apply: bool,
    },
    /// Run a playbook through the agents (checked first; refused whole on anything unsupported).
    Run {
        playbook: PathBuf,
        /// Further limit the hosts (a host pattern).
        #[arg(short = 'l', long)]
        limit: Option<String>,
        #[arg(long)]
        check: bool,
        #[arg(long)]
        diff: bool,
        /// Extra variables: `k=v k2=v2`, JSON, or `@file` (YAML or JSON); repeatable.
        #[arg(short = 'e', long = "extra-vars")]
        extra_vars: Vec<String>,
        /// Only tasks with these tags (comma-separated; repeatable).
        #[arg(long)]
        tags: Vec<String>,
        /// Skip tasks with these tags.
        #[arg(long)]
        skip_tags: Vec<String>,
    },
}

/// Runs an `ansible` subcommand. `client` is only called when the controller is needed.
pub fn run(cmd: AnsibleCmd, client: impl Fn() -> Result<Client>, json_out: bool) -> Result<()> {
    match cmd {
        AnsibleCmd::Inventory { list, host, static_format, out } => {
            inventory_cmd(&client()?, list, host.as_deref(), static_format.as_deref(), out.as_deref())
        }
        AnsibleCmd::Import { path, apply } => import_cmd(&client()?, &path, apply, json_out),
        AnsibleCmd::Run { playbook, limit, check, diff, extra_vars, tags, skip_tags } => {
            let r = RunArgs {
                playbook: &playbook,
                limit: limit.as_deref(),
                check,
                diff,
                extra_vars: &extra_vars,
                tags: &tags,
                skip_tags: &skip_tags,
            };
            run_cmd(&r, client, json_out)
        }
    }
}

/// The controller's inventory, as Ansible sees it.
fn fetch(c: &Client) -> Result<(inventory::Inventory, AnsibleInventory)> {
    let v = c.get("/api/v1/inventory")?;
    let inv: inventory::Inventory =
        serde_json::from_value(v).context("the controller's inventory does not read as an inventory")?;
    let ai = export::from_mangrove(&inv);
    Ok((inv, ai))
}

fn inventory_cmd(
    c: &Client,
    list: bool,
    host: Option<&str>,
    static_format: Option<&str>,
    out: Option<&Path>,
) -> Result<()> {
    let (_, ai) = fetch(c)?;
    if let Some(fmt) = static_format {
        let text = if fmt == "ini" { render::to_ini(&ai) } else { render::to_yaml(&ai) };
        return write_out(text.as_bytes(), out);
    }
    let v = match (list, host) {
        (true, _) => export::list_json(&ai),
        (false, Some(h)) => export::host_json(&ai, h).ok_or_else(|| anyhow!("no host {h} in the inventory"))?,
        (false, None) => bail!("say what to print: --list, --host HOST, or --static yaml|ini"),
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn import_cmd(c: &Client, path: &Path, apply: bool, json_out: bool) -> Result<()> {
    let files: Vec<SourceFile> = read_tree(path, true)?;
    let body = json!({
        "files": files.iter().map(|f| json!({"path": f.path, "text": f.text})).collect::<Vec<_>>(),
        "apply": apply,
    });
    let v = c.post("/api/v1/ansible/import", &body)?;
    emit(json_out, &v, |v| {
        let mut out = String::new();
        let add = crate::cli::rows_of(&v["add"], |m| {
            vec![s(&m["name"]), s(&m["site"]), s(&m["kind"]), s(&m["address"]), s(&m["system"]), s(&m["at"])]
        });
        if !add.is_empty() {
            out.push_str(&format!(
                "{} {} machine(s):\n",
                if v["applied"] == json!(true) { "Added" } else { "Would add" },
                add.len()
            ));
            out.push_str(&table(&["NAME", "SITE", "KIND", "ADDRESS", "SYSTEM", "FROM"], &add));
        }
        let change = crate::cli::rows_of(&v["change"], |c| {
            vec![s(&c["name"]), s(&c["field"]), s(&c["from"]), s(&c["to"]), s(&c["at"])]
        });
        if !change.is_empty() {
            out.push_str(&format!(
                "{} {} field(s):\n",
                if v["applied"] == json!(true) { "Changed" } else { "Would change" },
                change.len()
            ));
            out.push_str(&table(&["NAME", "FIELD", "NOW", "IMPORTED", "FROM"], &change));
        }
        let unchanged = v["unchanged"].as_array().map_or(0, Vec::len);
        if unchanged > 0 {
            out.push_str(&format!("{unchanged} machine(s) already as imported\n"));
        }
        if let Some(conflicts) = v["conflicts"].as_array().filter(|c| !c.is_empty()) {
            out.push_str(&format!("{} conflict(s):\n", conflicts.len()));
            for c in conflicts {
                out.push_str(&format!("  {}\n", s(c)));
            }
        }
        if v["applied"] == json!(true) {
            out.push_str(&format!(
                "written to {} (previous kept as {}); {}\n",
                s(&v["inventory_file"]),
                s(&v["previous_file"]),
                s(&v["note"])
            ));
        } else if !apply {
            out.push_str("nothing changed; run with --apply to apply\n");
        }
        out
    });
    let conflicts = v["conflicts"].as_array().map_or(0, Vec::len);
    if conflicts > 0 {
        bail!("the import has {conflicts} conflict(s) (listed above)");
    }
    Ok(())
}

struct RunArgs<'a> {
    playbook: &'a Path,
    limit: Option<&'a str>,
    check: bool,
    diff: bool,
    extra_vars: &'a [String],
    tags: &'a [String],
    skip_tags: &'a [String],
}

/// Loads and checks everything first (refusing the whole run, with `file:line`, before the
/// controller is even asked), resolves the hosts, then has the controller run it.
fn run_cmd(r: &RunArgs<'_>, client: impl Fn() -> Result<Client>, json_out: bool) -> Result<()> {
    let path = r.playbook.display().to_string();
    let pb = match playbook::load(&path, &Disk) {
        Ok(pb) => pb,
        Err(problems) => {
            let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"playbook": path, "refused": true, "problems": lines, "ran": false})
                    )?
                );
            } else {
                for l in &lines {
                    eprintln!("{l}");
                }
            }
            bail!(
                "refusing to run {path}: {} unsupported or invalid construct(s) (listed above); nothing was run",
                lines.len()
            );
        }
    };
    let extra = extra_vars(r.extra_vars)?;
    if let Err(problems) = playbook::check_vars("-e", &extra) {
        for p in &problems.0 {
            eprintln!("{p}");
        }
        bail!(
            "refusing to run {path}: the extra vars use what the runner does not support (listed above); nothing was run"
        );
    }
    let only = tags::parse_list(r.tags);
    let skip = tags::parse_list(r.skip_tags);
    let c = client()?;
    let (_, ai) = fetch(&c)?;
    for p in &pb.plays {
        let pattern =
            if p.hosts.contains("{{") { patterns::render_simple(&p.hosts, &extra) } else { Some(p.hosts.clone()) };
        if let Some(pat) = pattern {
            patterns::resolve(&ai, &pat, r.limit).map_err(|e| anyhow!("{}: {e}", p.loc))?;
        }
        let _ = p.selected_tasks(&only, &skip);
    }
    // The controller runs it: it gets the playbook and every file next to it (roles,
    // vars files, templates, files), loads and checks them again, and sends each module call
    // to the hosts' agents.
    let abs = std::fs::canonicalize(r.playbook).with_context(|| format!("cannot read {path}"))?;
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let mut files = Vec::new();
    collect_files(&dir, &mut files)?;
    let body = json!({
        "playbook": abs.display().to_string(),
        "files": files.iter().map(|(p, t)| json!({"path": p, "text": t})).collect::<Vec<_>>(),
        "limit": r.limit,
        "check": r.check,
        "diff": r.diff,
        "extra_vars": extra,
        "tags": r.tags,
        "skip_tags": r.skip_tags,
    });
    let long = std::time::Duration::from_secs(6 * 3600);
    let v = if json_out {
        c.post_long("/api/v1/ansible/run", &body, long)?
    } else {
        // The output as the run goes, line by line; the last line carries the result.
        let mut body = body;
        body["stream"] = json!(true);
        let mut result = None;
        c.post_lines("/api/v1/ansible/run", &body, long, &mut |v| {
            if let Some(l) = v.get("line").and_then(Value::as_str) {
                println!("{l}");
            } else if let Some(r) = v.get("result") {
                result = Some(r.clone());
            } else if let Some(e) = v.get("error").and_then(Value::as_str) {
                bail!("{path}: {e}");
            } else if v.get("refused").is_some() {
                result = Some(v);
            }
            Ok(())
        })?;
        result.ok_or_else(|| anyhow!("{path}: the controller's answer ended before the run's result"))?
    };
    if v["refused"] == json!(true) {
        if json_out {
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            for l in v["problems"].as_array().into_iter().flatten() {
                eprintln!("{}", s(l));
            }
        }
        bail!(
            "refusing to run {path}: the controller found unsupported or invalid constructs (listed above); nothing was run"
        );
    }
    if json_out {
        let mut out = v.clone();
        if let Some(m) = out.as_object_mut() {
            m.remove("output");
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    let code = v["exit_code"].as_i64().unwrap_or(1);
    if code != 0 {
        // ansible-playbook's codes: 2 when a host failed, 4 when one was unreachable.
        std::process::exit(i32::try_from(code).unwrap_or(1));
    }
    Ok(())
}

/// Every readable text file under `dir` (hidden directories skipped), for the controller.
fn collect_files(dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    const MAX_FILES: usize = 5_000;
    const MAX_BYTES: u64 = 4 * 1024 * 1024;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("cannot read the directory {}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if !name.starts_with('.') {
                    stack.push(p);
                }
            } else if meta.is_file() && meta.len() <= MAX_BYTES {
                if let Ok(text) = std::fs::read_to_string(&p) {
                    out.push((p.display().to_string(), text));
                }
                if out.len() > MAX_FILES {
                    bail!(
                        "{} has more than {MAX_FILES} files next to the playbook; put the playbook in its own directory",
                        dir.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// `-e` values as Ansible reads them: `@file` (YAML/JSON), a JSON/YAML mapping, or
/// `k=v` pairs split like a shell line. Later ones override earlier ones.
fn extra_vars(values: &[String]) -> Result<ansible_compat::Vars> {
    let mut out = ansible_compat::Vars::new();
    for v in values {
        let vars = if let Some(file) = v.strip_prefix('@') {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read extra-vars file {file}"))?;
            yaml_mapping(&text, file)?
        } else if v.trim_start().starts_with('{') {
            yaml_mapping(v, "-e")?
        } else {
            let words = ansible_compat::pylit::split_args(v).map_err(|e| anyhow!("-e {v:?}: {e}"))?;
            let mut m = ansible_compat::Vars::new();
            for w in words {
                let (k, val) = w.split_once('=').ok_or_else(|| anyhow!("-e {v:?}: expected key=value, got {w:?}"))?;
                m.insert(k.to_owned(), Value::String(val.to_owned()));
            }
            m
        };
        out.extend(vars);
    }
    Ok(out)
}

fn yaml_mapping(text: &str, origin: &str) -> Result<ansible_compat::Vars> {
    let docs = ansible_compat::yamlpos::parse(text, origin)?;
    match docs.first().map(ansible_compat::yamlpos::Node::to_json) {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Ok(ansible_compat::Vars::new()),
        Some(_) => bail!("{origin}: extra vars must be a mapping"),
    }
}
