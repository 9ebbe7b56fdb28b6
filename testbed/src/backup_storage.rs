//! Backups in a process testbed: every agent runs on this one machine, so each machine gets its
//! own tree under `<dir>/hosts/<machine>` for the paths its systems back up, and the backup
//! repositories (storage the hosts mount from the DR site) live once under `<dir>/storage`,
//! where every agent reaches them. The controller reads a copy of the inventory with those
//! paths (`<dir>/inventory-process.json`; JSON is YAML), and each system's paths are seeded with
//! a little real data: documents with Vietnamese names, a database dump, a larger file.
//!
//! In a container testbed each container has its own filesystem: the same trees are bind-mounted
//! where the inventory says (every repository on every host, each system's paths on the host
//! that backs it up), and the controller reads the inventory as it is.

use std::fs;
use std::path::{Path, PathBuf};

use inventory::{AgentMode, Inventory, System};

use crate::TestbedError;
use crate::layout::Layout;

/// The machine whose agent backs `system` up: its `backup.host`, else its first workload with
/// a native agent.
pub fn backup_host<'a>(inv: &'a Inventory, system: &'a System) -> Option<&'a str> {
    if let Some(h) = system.backup.as_ref().and_then(|b| b.host.as_deref()) {
        return Some(h);
    }
    inv.workloads
        .iter()
        .find(|w| w.agent == AgentMode::Native && inv.system_of(w) == Some(system.name.as_str()))
        .map(|w| w.name.as_str())
}

fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

/// The inventory the controller of a process testbed reads, written next to the layout, and
/// the data it backs up. Returns the inventory's own path when no system has a backup.
pub fn prepare(layout: &Layout) -> Result<PathBuf, TestbedError> {
    let inv = &layout.inventory;
    if inv.systems.iter().all(|s| s.backup.is_none()) {
        return Ok(layout.inventory_path.clone());
    }
    let mut out = inv.clone();
    let storage = layout.dir.join("storage");
    for r in &mut out.backup_repositories {
        if r.location.starts_with('/') {
            let path = under(&storage, &r.location);
            let parent = path.parent().unwrap_or(&storage).to_path_buf();
            fs::create_dir_all(&parent).map_err(crate::layout::io(&parent))?;
            r.location = path.display().to_string();
        }
    }
    for (i, s) in inv.systems.iter().enumerate() {
        let Some(host) = backup_host(inv, s) else { continue };
        let root = layout.dir.join("hosts").join(host);
        let Some(b) = out.systems[i].backup.as_mut() else { continue };
        b.host = Some(host.to_string());
        for p in &mut b.paths {
            let local = under(&root, p);
            seed_data(&local, &s.name)?;
            *p = local.display().to_string();
        }
    }
    let path = layout.dir.join("inventory-process.json");
    let text = serde_json::to_string_pretty(&out)
        .map_err(|e| TestbedError::Inventory(format!("cannot write the process testbed's inventory: {e}")))?;
    crate::layout::write_file(&path, &text, 0o644)?;
    Ok(path)
}

/// The bind mounts (source, target, read-only) that give container host `machine` the backup
/// repositories and the data of the systems it backs up, seeded as in a process testbed.
pub fn container_mounts(layout: &Layout, machine: &str) -> Result<Vec<(String, String, bool)>, TestbedError> {
    let inv = &layout.inventory;
    let mut mounts = Vec::new();
    if inv.systems.iter().all(|s| s.backup.is_none()) {
        return Ok(mounts);
    }
    let storage = layout.dir.join("storage");
    for r in inv.backup_repositories.iter().filter(|r| r.location.starts_with('/')) {
        let from = under(&storage, &r.location);
        fs::create_dir_all(&from).map_err(crate::layout::io(&from))?;
        mounts.push((from.display().to_string(), r.location.clone(), false));
    }
    for s in &inv.systems {
        let (Some(b), Some(host)) = (&s.backup, backup_host(inv, s)) else { continue };
        if host != machine {
            continue;
        }
        let root = layout.dir.join("hosts").join(host);
        for p in &b.paths {
            let from = under(&root, p);
            seed_data(&from, &s.name)?;
            mounts.push((from.display().to_string(), p.clone(), false));
        }
    }
    Ok(mounts)
}

/// A system's data: the index page its web service serves, a few documents, a dump and a
/// 2 MiB file, the same on every run.
fn seed_data(dir: &Path, system: &str) -> Result<(), TestbedError> {
    fs::create_dir_all(dir.join("documents")).map_err(crate::layout::io(dir))?;
    let files: [(&str, Vec<u8>); 5] = [
        // The page the system's small web service serves (and a drill's probe checks).
        (
            "index.html",
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{system}</title></head>\n\
                 <body><h1>{system}</h1>\n<p>Hệ thống {system} — dữ liệu mẫu của testbed.</p></body></html>\n"
            )
            .into_bytes(),
        ),
        ("documents/báo cáo quý 3.txt", format!("Báo cáo của hệ thống {system}, quý 3.\n").into_bytes()),
        ("documents/công văn 123-UBND.txt", "Công văn số 123/UBND về việc sao lưu dữ liệu.\n".into()),
        (
            "dump.sql",
            format!(
                "-- {system}\nCREATE TABLE ho_so (id int, ten text);\nINSERT INTO ho_so VALUES (1, 'Nguyễn Văn A');\n"
            )
            .into_bytes(),
        ),
        ("attachments.bin", (0..2u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        if !path.exists() {
            fs::write(&path, bytes).map_err(crate::layout::io(&path))?;
        }
    }
    Ok(())
}
