//! Variable precedence, lowest first, as Ansible's documentation lists it: role defaults;
//! inventory `all`, then groups by depth (parent before child), then the playbook's
//! `group_vars/`; inventory host variables, then the playbook's `host_vars/`; host facts;
//! play `vars`; `vars_files`; role `vars`; block `vars` (outer first); task `vars`;
//! `set_fact` and registered results; role parameters (`roles:` entry `vars` or old-style
//! keys); extra vars (`-e`), which always win. Magic variables (`inventory_hostname`,
//! `groups`, `hostvars`, ...) come just below extra vars.

use crate::Vars;

/// Layers, lowest first; [`Layers::merge`] applies them in order (a later key replaces).
#[derive(Debug, Default, Clone)]
pub struct Layers<'a> {
    pub role_defaults: Vec<&'a Vars>,
    pub inventory: Option<&'a Vars>,
    pub facts: Option<&'a Vars>,
    pub play_vars: Option<&'a Vars>,
    pub vars_files: Vec<&'a Vars>,
    pub role_vars: Vec<&'a Vars>,
    pub block_vars: Vec<&'a Vars>,
    pub task_vars: Option<&'a Vars>,
    pub set_facts: Option<&'a Vars>,
    pub role_params: Vec<&'a Vars>,
    pub magic: Option<&'a Vars>,
    pub extra: Option<&'a Vars>,
}

impl Layers<'_> {
    pub fn merge(&self) -> Vars {
        let mut out = Vars::new();
        let mut add = |v: &Vars| {
            for (k, x) in v {
                out.insert(k.clone(), x.clone());
            }
        };
        self.role_defaults.iter().for_each(|v| add(v));
        self.inventory.into_iter().for_each(&mut add);
        self.facts.into_iter().for_each(&mut add);
        self.play_vars.into_iter().for_each(&mut add);
        self.vars_files.iter().for_each(|v| add(v));
        self.role_vars.iter().for_each(|v| add(v));
        self.block_vars.iter().for_each(|v| add(v));
        self.task_vars.into_iter().for_each(&mut add);
        self.set_facts.into_iter().for_each(&mut add);
        self.role_params.iter().for_each(|v| add(v));
        self.magic.into_iter().for_each(&mut add);
        self.extra.into_iter().for_each(&mut add);
        out
    }
}
