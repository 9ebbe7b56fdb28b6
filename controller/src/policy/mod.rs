//! Security-level policies in the controller: the shipped and custom packs compiled once, who they apply
//! to (`scope`), and evaluating a host's facts against them (`evaluate`), with waivers applied
//! and findings kept with their history; `drills` gives the `drill` controls the drill records.

pub mod drills;
pub mod evaluate;
pub mod scope;

use std::collections::HashMap;
use std::sync::Arc;

/// The packs this controller evaluates, each compiled once and shared.
pub struct Policies {
    pub packs: Vec<policies::Pack>,
    evaluators: HashMap<String, Arc<policies::Evaluator>>,
    /// Where each pack came from: `shipped`, or the custom pack's directory.
    sources: HashMap<String, String>,
}

impl Policies {
    /// The packs shipped in this binary. A pack that does not load or compile is a bug in the
    /// build, reported at start rather than at the first evaluation.
    pub fn shipped() -> Result<Policies, String> {
        Self::load(&[])
    }

    /// The shipped packs and the custom pack directories of `[policy] packs`. A custom pack
    /// that does not load or compile, or takes a shipped pack's name, stops the start with
    /// its file and line: a pack silently missing would pass systems it should judge.
    pub fn load(custom: &[std::path::PathBuf]) -> Result<Policies, String> {
        let mut packs = policies::shipped().map_err(|e| format!("shipped policy packs: {e}"))?;
        let mut sources: HashMap<String, String> = packs.iter().map(|p| (p.name.clone(), "shipped".into())).collect();
        for dir in custom {
            let pack = policies::load_dir(dir).map_err(|e| format!("custom policy pack: {e}"))?;
            if let Some(first) = sources.get(&pack.name) {
                return Err(format!(
                    "policy pack {}: the name {} is taken (by {first}); give the custom pack its own name and framework",
                    dir.display(),
                    pack.name
                ));
            }
            sources.insert(pack.name.clone(), dir.display().to_string());
            packs.push(pack);
        }
        // An Ansible remediation the runner would refuse is found now, not at the first failure.
        for p in &packs {
            for c in &p.controls {
                if let Some(tasks) = &c.meta.remediation.ansible {
                    crate::ansible_run::task_list_playbook("all", tasks).map_err(|e| {
                        format!(
                            "policy pack {} ({}): control {}: remediation: {e}",
                            p.name, sources[&p.name], c.meta.id
                        )
                    })?;
                }
            }
        }
        let mut evaluators = HashMap::new();
        for p in &packs {
            let e = policies::Evaluator::new(p).map_err(|e| format!("policy pack {}: {e}", p.name))?;
            evaluators.insert(p.name.clone(), Arc::new(e));
        }
        Ok(Policies { packs, evaluators, sources })
    }

    /// Where a pack came from: `shipped`, or its directory.
    pub fn source(&self, pack: &str) -> Option<&str> {
        self.sources.get(pack).map(String::as_str)
    }

    pub fn evaluator(&self, pack: &str) -> Option<Arc<policies::Evaluator>> {
        self.evaluators.get(pack).cloned()
    }

    pub fn pack(&self, name: &str) -> Option<&policies::Pack> {
        self.packs.iter().find(|p| p.name == name)
    }

    /// The pack's control with this id.
    pub fn control(&self, pack: &str, id: &str) -> Option<&policies::ControlMeta> {
        self.pack(pack).and_then(|p| p.control(id)).map(|c| &c.meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a shipped pack under `name`, in `dir`.
    fn custom_copy(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs/vn-nd85-tcvn11930");
        let out = dir.join(name);
        std::fs::create_dir_all(out.join("controls")).expect("mkdir");
        for rel in std::fs::read_dir(src.join("controls")).expect("controls").flatten() {
            std::fs::copy(rel.path(), out.join("controls").join(rel.file_name())).expect("copy");
        }
        let meta = std::fs::read_to_string(src.join("pack.yaml")).expect("pack.yaml");
        std::fs::write(out.join("pack.yaml"), meta.replace("vn-nd85-tcvn11930", name)).expect("write");
        out
    }

    #[test]
    fn custom_packs_load_beside_the_shipped_ones_and_say_where_they_came_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mine = custom_copy(dir.path(), "camau-rieng");
        let p = Policies::load(std::slice::from_ref(&mine)).expect("load");
        assert!(p.evaluator("camau-rieng").is_some());
        assert_eq!(p.source("camau-rieng"), Some(mine.display().to_string().as_str()));
        assert_eq!(p.source("vn-nd85-tcvn11930"), Some("shipped"));
    }

    #[test]
    fn a_custom_pack_taking_a_shipped_name_or_failing_to_compile_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clash = custom_copy(dir.path(), "vn-nd85-tcvn11930");
        let e = Policies::load(&[clash]).err().expect("refused");
        assert!(e.contains("is taken (by shipped)"), "{e}");

        let broken = custom_copy(dir.path(), "camau-hong");
        let rego = broken.join("controls/time-sync.rego");
        let text = std::fs::read_to_string(&rego).expect("rego");
        std::fs::write(&rego, format!("{text}\nthis is not rego ((\n")).expect("write");
        let e = Policies::load(&[broken]).err().expect("refused");
        assert!(e.contains("camau-hong") && e.contains("time-sync.rego:"), "{e}");
    }

    #[test]
    fn an_ansible_remediation_the_runner_refuses_stops_the_start_and_the_shipped_ones_load() {
        let p = Policies::shipped().expect("shipped packs");
        let tasks = p.control("vn-nd85-tcvn11930", "ssh-root-login").and_then(|c| c.remediation.ansible.clone());
        assert!(tasks.is_some_and(|t| t.len() == 3), "ssh-root-login's remediation is an Ansible task list");

        let dir = tempfile::tempdir().expect("tempdir");
        let mine = custom_copy(dir.path(), "camau-ansible");
        let meta = mine.join("controls/ssh-root-login.yaml");
        let text = std::fs::read_to_string(&meta).expect("meta");
        let text = text.replace(
            "      lineinfile:\n        path: /etc/ssh/sshd_config\n        line:",
            "      mount:\n        path: /etc/ssh/sshd_config\n        line:",
        );
        assert!(text.contains("mount:"), "the fixture edit applies");
        std::fs::write(&meta, text).expect("write");
        let e = Policies::load(&[mine]).err().expect("refused");
        assert!(e.contains("camau-ansible") && e.contains("ssh-root-login") && e.contains("mount"), "{e}");
    }
}
