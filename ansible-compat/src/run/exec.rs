//! Plays, blocks, includes, roles and handlers over the hosts of a play, in the `linear`
//! strategy's order: each task runs on every live host (in parallel) before the next.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::host_task::{self, Status};
use super::jinja::{OMIT, Templar};
use super::output::{banner, recap_line};
use super::vars::Layers;
use super::{Input, Modules, Options, Report, Stats, facts};
use crate::Vars;
use crate::playbook::{Action, Play, Role, Task};

/// One host's state through the run.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub inventory: Vars,
    pub facts: Vars,
    /// `set_fact` results and registered results (they outlive the play, as in Ansible).
    pub set_facts: Vars,
    pub group_names: Vec<String>,
    /// Out of this play's remaining tasks (and later plays).
    pub failed: bool,
    pub unreachable: bool,
    pub stats: Stats,
    /// Handlers (indices into the play's handler list) notified and not yet run.
    pub notified: BTreeSet<usize>,
}

/// What is inherited down the task tree: role, block vars, tags, conditions, keywords.
#[derive(Clone, Default)]
pub struct Frame<'p> {
    pub role: Option<&'p Role>,
    pub role_params: Vec<&'p Vars>,
    pub block_vars: Vec<&'p Vars>,
    pub tags: Vec<String>,
    pub when: Vec<Json>,
    /// Keyword maps from the play down (play, role entry, blocks), outer first.
    pub keywords: Vec<&'p Vars>,
    /// Inside a block that has a `rescue` (a failure counts as rescued).
    pub rescuable: bool,
    /// The hosts this part runs on (a rescue, a dynamic include), all live hosts when `None`.
    pub only: Option<Arc<BTreeSet<usize>>>,
    pub handler: bool,
}

impl<'p> Frame<'p> {
    /// A keyword as the task has it, else from the nearest enclosing block, role or play.
    pub fn keyword(&self, task: &Task, name: &str) -> Option<Json> {
        task.keywords.get(name).cloned().or_else(|| self.keywords.iter().rev().find_map(|k| k.get(name).cloned()))
    }
}

/// The play being run: everything a host's task needs besides the host.
pub struct PlayCtx<'p> {
    pub templar: Templar,
    pub play: &'p Play,
    pub options: &'p Options,
    pub role_defaults: Vec<&'p Vars>,
    pub role_vars: Vec<&'p Vars>,
    pub magic: Vars,
    pub files: &'p (dyn crate::playbook::Files + Sync),
    pub base: String,
}

impl PlayCtx<'_> {
    /// A host's variables for a task in `frame` (task `vars` given as `task_vars`).
    pub fn vars_for(&self, host: &Host, frame: &Frame<'_>, task_kw: Option<&Vars>) -> Vars {
        let task_vars: Option<Vars> = task_kw.and_then(|k| k.get("vars")).and_then(|v| v.as_object().cloned());
        let mut role_defaults = self.role_defaults.clone();
        let mut role_vars = self.role_vars.clone();
        if let Some(r) = frame.role {
            role_defaults.push(&r.defaults);
            role_vars.push(&r.vars);
        }
        let play_vars_files: Vec<&Vars> = self.play.vars_files.iter().map(|(_, v)| v).collect();
        let mut magic = self.magic.clone();
        magic.insert("inventory_hostname".into(), json!(host.name));
        magic.insert("inventory_hostname_short".into(), json!(host.name.split('.').next().unwrap_or("")));
        magic.insert("group_names".into(), json!(host.group_names));
        if let Some(r) = frame.role {
            magic.insert("role_name".into(), json!(r.name));
            magic.insert("role_path".into(), json!(r.dir));
        }
        let layers = Layers {
            role_defaults,
            inventory: Some(&host.inventory),
            facts: Some(&host.facts),
            play_vars: Some(&self.play.vars),
            vars_files: play_vars_files,
            role_vars,
            block_vars: frame.block_vars.clone(),
            task_vars: task_vars.as_ref(),
            set_facts: Some(&host.set_facts),
            role_params: frame.role_params.clone(),
            magic: Some(&magic),
            extra: Some(&self.options.extra_vars),
        };
        layers.merge()
    }

    /// A `template` or `copy` source: the role's `templates/`/`files/`, then the
    /// playbook's, then next to the playbook (an absolute path as it is).
    pub fn read_source(&self, frame: &Frame<'_>, sub: &str, src: &str) -> Result<String, String> {
        let mut candidates = Vec::new();
        if src.starts_with('/') {
            candidates.push(src.to_owned());
        } else {
            if let Some(r) = frame.role {
                candidates.push(format!("{}/{sub}/{src}", r.dir));
                candidates.push(format!("{}/{src}", r.dir));
            }
            candidates.push(format!("{}/{sub}/{src}", self.base));
            candidates.push(format!("{}/{src}", self.base));
        }
        for c in &candidates {
            match self.files.read(c) {
                Some(Ok(t)) => return Ok(t),
                Some(Err(e)) => return Err(format!("could not read {c}: {e}")),
                None => {}
            }
        }
        Err(format!("Could not find or access '{src}' (searched {})", candidates.join(", ")))
    }
}

/// A handler of the play: the task, its role, and the names it answers to.
struct Handler<'p> {
    task: &'p Task,
    role: Option<&'p Role>,
    names: BTreeSet<String>,
}

pub struct Runner<'a, 'o> {
    input: &'a Input<'a>,
    modules: &'a dyn Modules,
    out: &'o mut dyn FnMut(&str),
    templar: Templar,
    hosts: Vec<Host>,
    by_name: BTreeMap<String, usize>,
    /// Hosts that failed or were unreachable in an earlier play.
    out_of_run: BTreeSet<String>,
    play_json: Vec<Json>,
    tasks_json: Vec<Json>,
}

impl<'a, 'o> Runner<'a, 'o> {
    pub fn new(input: &'a Input<'a>, modules: &'a dyn Modules, out: &'o mut dyn FnMut(&str)) -> Self {
        let inv = input.inventory;
        let mut hosts = Vec::new();
        let mut by_name = BTreeMap::new();
        for name in inv.hosts.keys() {
            let mut inventory = inv.all_vars.clone();
            if let Some(v) = input.playbook.group_vars.get("all") {
                inventory.extend(v.clone());
            }
            let mut groups: Vec<(usize, String)> = inv.groups_of_host(name).into_iter().map(|(g, d)| (d, g)).collect();
            groups.sort();
            for (_, g) in &groups {
                if let Some(grp) = inv.groups.get(g) {
                    inventory.extend(grp.vars.clone());
                }
                if let Some(v) = input.playbook.group_vars.get(g) {
                    inventory.extend(v.clone());
                }
            }
            if let Some(own) = inv.hosts.get(name) {
                inventory.extend(own.clone());
            }
            if let Some(v) = input.playbook.host_vars.get(name) {
                inventory.extend(v.clone());
            }
            let f = input.facts.get(name).cloned().unwrap_or_else(|| json!({}));
            by_name.insert(name.clone(), hosts.len());
            hosts.push(Host {
                name: name.clone(),
                inventory,
                facts: facts::fact_vars(&f),
                set_facts: Vars::new(),
                group_names: groups.into_iter().map(|(_, g)| g).filter(|g| g != "ungrouped").collect(),
                failed: false,
                unreachable: false,
                stats: Stats::default(),
                notified: BTreeSet::new(),
            });
        }
        Runner {
            input,
            modules,
            out,
            templar: Templar::new(),
            hosts,
            by_name,
            out_of_run: BTreeSet::new(),
            play_json: Vec::new(),
            tasks_json: Vec::new(),
        }
    }

    fn emit(&mut self, line: &str) {
        (self.out)(line);
    }

    fn banner(&mut self, text: &str) {
        for l in banner(text) {
            self.emit(&l);
        }
    }

    pub fn run(mut self) -> Report {
        let mut targeted: BTreeSet<usize> = BTreeSet::new();
        for play in &self.input.playbook.plays {
            let ran = self.play(play);
            targeted.extend(ran);
        }
        self.banner("PLAY RECAP");
        let mut stats = BTreeMap::new();
        let mut exit = 0;
        for &i in &targeted {
            let h = &self.hosts[i];
            stats.insert(h.name.clone(), h.stats);
        }
        for (name, s) in &stats {
            let line = recap_line(name, s);
            self.emit(&line);
        }
        self.emit("");
        if stats.values().any(|s| s.unreachable > 0) {
            exit = 4;
        } else if targeted.iter().any(|&i| self.hosts[i].failed) || stats.values().any(|s| s.failed > 0) {
            exit = 2;
        }
        Report { plays: self.play_json, stats, exit_code: exit }
    }

    /// Runs one play; returns the hosts it targeted.
    fn play(&mut self, play: &'a Play) -> Vec<usize> {
        let extra = &self.input.options.extra_vars;
        let pattern = if play.hosts.contains("{{") {
            crate::patterns::render_simple(&play.hosts, extra).unwrap_or_else(|| play.hosts.clone())
        } else {
            play.hosts.clone()
        };
        let name = play.name.clone().unwrap_or_else(|| pattern.clone());
        let name = self
            .templar
            .render(&json!(name), &self.templar.scope(play_level_vars(play, extra)))
            .map_or(name, |v| super::pyfmt::str_of(&v));
        self.banner(&format!("PLAY [{name}]"));
        let sel = match crate::patterns::resolve(self.input.inventory, &pattern, self.input.options.limit.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                self.emit(&format!("ERROR! {e}"));
                return Vec::new();
            }
        };
        let hosts: Vec<usize> = sel
            .hosts
            .iter()
            .filter(|h| !self.out_of_run.contains(*h))
            .filter_map(|h| self.by_name.get(h).copied())
            .collect();
        if hosts.is_empty() {
            self.emit("skipping: no hosts matched");
            self.play_json.push(json!({"name": name, "hosts": [], "tasks": []}));
            return Vec::new();
        }
        for &i in &hosts {
            self.hosts[i].failed = false;
            self.hosts[i].notified.clear();
        }
        let mut role_defaults = Vec::new();
        let mut role_vars = Vec::new();
        fn collect<'r>(r: &'r Role, d: &mut Vec<&'r Vars>, v: &mut Vec<&'r Vars>) {
            for dep in &r.dependencies {
                collect(dep, d, v);
            }
            d.push(&r.defaults);
            v.push(&r.vars);
        }
        for r in &play.roles {
            collect(r, &mut role_defaults, &mut role_vars);
        }
        let mut magic = Vars::new();
        magic.insert("groups".into(), groups_json(self.input.inventory));
        // Every host's variables as the play starts (inventory, facts, earlier plays' facts);
        // a fact another host sets during this play is not seen through it.
        let hostvars: serde_json::Map<String, Json> = self
            .hosts
            .iter()
            .map(|h| {
                let mut v = h.inventory.clone();
                v.extend(h.facts.clone());
                v.extend(h.set_facts.clone());
                v.insert("inventory_hostname".into(), json!(h.name));
                v.insert("group_names".into(), json!(h.group_names));
                (h.name.clone(), Json::Object(v))
            })
            .collect();
        magic.insert("hostvars".into(), Json::Object(hostvars));
        let names: Vec<&str> = hosts.iter().map(|&i| self.hosts[i].name.as_str()).collect();
        magic.insert("play_hosts".into(), json!(names));
        magic.insert("ansible_play_hosts".into(), json!(names));
        magic.insert("ansible_play_hosts_all".into(), json!(names));
        magic.insert("ansible_play_batch".into(), json!(names));
        magic.insert("ansible_check_mode".into(), json!(self.input.options.check));
        magic.insert("ansible_diff_mode".into(), json!(self.input.options.diff));
        magic.insert("omit".into(), json!(OMIT));
        magic.insert("playbook_dir".into(), json!(dir_of(&self.input.playbook.file)));
        magic.insert("ansible_play_name".into(), json!(name));
        let ctx = PlayCtx {
            templar: self.templar.clone(),
            play,
            options: &self.input.options,
            role_defaults,
            role_vars,
            magic,
            files: self.input.files,
            base: dir_of(&self.input.playbook.file),
        };
        let handlers = handlers_of(play);
        let mut p = PlayRun { ctx, hosts: hosts.clone(), handlers, stopped: false };
        let top = Frame { tags: play.tags.clone(), keywords: vec![&play.keywords], ..Default::default() };

        let gather = play.keywords.get("gather_facts").is_none_or(truthy);
        // Fact gathering is tagged `always`, as in Ansible.
        let gather_tags = ["always".to_owned()];
        let opts = &self.input.options;
        if gather && crate::tags::should_run(&gather_tags, &opts.only_tags, &opts.skip_tags) {
            self.banner("TASK [Gathering Facts]");
            let mut statuses = serde_json::Map::new();
            for &i in &hosts {
                let name = self.hosts[i].name.clone();
                match self.modules.reachable(&name) {
                    Ok(()) => {
                        self.hosts[i].stats.ok += 1;
                        self.emit(&format!("ok: [{name}]"));
                        statuses.insert(name, json!({"status": "ok"}));
                    }
                    Err(msg) => {
                        let r = json!({"changed": false, "msg": msg, "unreachable": true});
                        self.hosts[i].stats.unreachable += 1;
                        self.hosts[i].unreachable = true;
                        self.emit(&format!("fatal: [{name}]: UNREACHABLE! => {}", super::output::dump(&r, false)));
                        statuses.insert(name, json!({"status": "unreachable", "result": r}));
                    }
                }
            }
            self.tasks_json.push(json!({"task": "Gathering Facts", "at": play.loc.to_string(), "hosts": statuses}));
            self.check_stop(&mut p);
        }
        self.tasks(&mut p, &play.pre_tasks, &top);
        self.flush(&mut p);
        let mut done_roles: BTreeSet<String> = BTreeSet::new();
        for r in &play.roles {
            self.role(&mut p, r, &top, &mut done_roles);
        }
        self.tasks(&mut p, &play.tasks, &top);
        self.flush(&mut p);
        self.tasks(&mut p, &play.post_tasks, &top);
        self.flush(&mut p);
        for &i in &hosts {
            let h = &self.hosts[i];
            if h.failed || h.unreachable {
                self.out_of_run.insert(h.name.clone());
            }
        }
        let tasks = std::mem::take(&mut self.tasks_json);
        let names: Vec<&str> = hosts.iter().map(|&i| self.hosts[i].name.as_str()).collect();
        self.play_json.push(json!({"name": name, "at": play.loc.to_string(), "hosts": names, "tasks": tasks}));
        hosts
    }

    fn live(&self, p: &PlayRun<'_>, frame: &Frame<'_>) -> Vec<usize> {
        p.hosts
            .iter()
            .copied()
            .filter(|i| frame.only.as_ref().is_none_or(|o| o.contains(i)))
            .filter(|&i| !self.hosts[i].failed && !self.hosts[i].unreachable)
            .collect()
    }

    /// After a top-level step: when no host of the play is left, say so and stop the play.
    fn check_stop(&mut self, p: &mut PlayRun<'_>) {
        if !p.stopped && p.hosts.iter().all(|&i| self.hosts[i].failed || self.hosts[i].unreachable) {
            self.banner("NO MORE HOSTS LEFT");
            p.stopped = true;
        }
    }

    fn tasks(&mut self, p: &mut PlayRun<'a>, tasks: &'a [Task], frame: &Frame<'a>) {
        for t in tasks {
            if p.stopped || self.live(p, frame).is_empty() {
                return;
            }
            self.task(p, t, frame);
            if frame.only.is_none() && frame.block_vars.is_empty() && !frame.rescuable {
                self.check_stop(p);
            }
        }
    }

    fn role(&mut self, p: &mut PlayRun<'a>, r: &'a Role, parent: &Frame<'a>, done: &mut BTreeSet<String>) {
        let key = format!("{}|{}", r.dir, serde_json::to_string(&r.params).unwrap_or_default());
        if !done.insert(key) {
            return;
        }
        let mut f = parent.clone();
        f.tags.extend(r.tags.iter().cloned());
        if let Some(w) = r.keywords.get("when") {
            f.when.extend(as_list(w));
        }
        f.keywords.push(&r.keywords);
        for d in &r.dependencies {
            self.role(p, d, &f, done);
        }
        f.role = Some(r);
        f.role_params.push(&r.params);
        self.tasks(p, &r.tasks, &f);
    }

    fn task(&mut self, p: &mut PlayRun<'a>, t: &'a Task, frame: &Frame<'a>) {
        let mut tags = frame.tags.clone();
        tags.extend(t.tags.iter().cloned());
        let opts = &self.input.options;
        match &t.action {
            Action::Module { module, args } => {
                if !crate::tags::should_run(&tags, &opts.only_tags, &opts.skip_tags) {
                    return;
                }
                let hosts = self.live(p, frame);
                let title = self.title(p, t, frame, module);
                let word = if frame.handler { "RUNNING HANDLER" } else { "TASK" };
                self.banner(&format!("{word} [{title}]"));
                self.run_module_task(p, t, frame, module, args, &hosts, &title);
            }
            Action::Block { block, rescue, always } => {
                let mut f = frame.clone();
                f.tags = tags;
                if let Some(w) = t.keywords.get("when") {
                    f.when.extend(as_list(w));
                }
                f.keywords.push(&t.keywords);
                if let Some(Json::Object(v)) = t.keywords.get("vars") {
                    f.block_vars.push(v);
                }
                let entered: BTreeSet<usize> = self.live(p, &f).into_iter().collect();
                if entered.is_empty() {
                    return;
                }
                let mut inner = f.clone();
                inner.only = Some(Arc::new(entered.clone()));
                inner.rescuable = frame.rescuable || !rescue.is_empty();
                self.tasks(p, block, &inner);
                let mut failed_in: BTreeSet<usize> =
                    entered.iter().copied().filter(|&i| self.hosts[i].failed && !self.hosts[i].unreachable).collect();
                if !rescue.is_empty() && !failed_in.is_empty() {
                    for &i in &failed_in {
                        self.hosts[i].failed = false;
                    }
                    let mut rf = f.clone();
                    rf.only = Some(Arc::new(failed_in.clone()));
                    rf.rescuable = frame.rescuable;
                    self.tasks(p, rescue, &rf);
                    failed_in.retain(|&i| self.hosts[i].failed);
                }
                if !always.is_empty() {
                    for &i in &failed_in {
                        self.hosts[i].failed = false;
                    }
                    let mut af = f.clone();
                    af.only = Some(Arc::new(entered));
                    af.rescuable = frame.rescuable;
                    self.tasks(p, always, &af);
                    for &i in &failed_in {
                        self.hosts[i].failed = true;
                    }
                }
            }
            Action::IncludeTasks { tasks, dynamic: false, .. } => {
                let mut f = frame.clone();
                f.tags = tags;
                if let Some(w) = t.keywords.get("when") {
                    f.when.extend(as_list(w));
                }
                f.keywords.push(&t.keywords);
                self.tasks(p, tasks, &f);
            }
            Action::IncludeTasks { tasks, dynamic: true, file } => {
                if !crate::tags::should_run(&tags, &opts.only_tags, &opts.skip_tags) {
                    return;
                }
                let Some(included) = self.include_hosts(p, t, frame, "include_tasks", file) else { return };
                let mut f = frame.clone();
                f.only = Some(Arc::new(included));
                f.keywords.push(&t.keywords);
                self.tasks(p, tasks, &f);
            }
            Action::IncludeRole { role, dynamic } => {
                if *dynamic && !crate::tags::should_run(&tags, &opts.only_tags, &opts.skip_tags) {
                    return;
                }
                let mut f = frame.clone();
                if *dynamic {
                    let Some(included) = self.include_hosts(p, t, frame, "include_role", &role.name) else { return };
                    f.only = Some(Arc::new(included));
                } else {
                    f.tags = tags;
                    if let Some(w) = t.keywords.get("when") {
                        f.when.extend(as_list(w));
                    }
                }
                f.keywords.push(&t.keywords);
                let mut done = BTreeSet::new();
                self.role(p, role, &f, &mut done);
            }
        }
    }

    /// A dynamic include: its banner, `included:` for the hosts whose `when` holds (ok for
    /// each), `skipping:` for the others; the hosts that include it.
    fn include_hosts(
        &mut self,
        p: &mut PlayRun<'a>,
        t: &'a Task,
        frame: &Frame<'a>,
        what: &str,
        file: &str,
    ) -> Option<BTreeSet<usize>> {
        let hosts = self.live(p, frame);
        let title = match &t.name {
            Some(n) => self.title_text(p, frame, n),
            None => what.to_owned(),
        };
        self.banner(&format!("TASK [{title}]"));
        let mut conditions = frame.when.clone();
        if let Some(w) = t.keywords.get("when") {
            conditions.extend(as_list(w));
        }
        let mut included = BTreeSet::new();
        let mut statuses = serde_json::Map::new();
        for &i in &hosts {
            let vars = p.ctx.vars_for(&self.hosts[i], frame, Some(&t.keywords));
            let scope = p.ctx.templar.scope(vars);
            let mut ok = true;
            for c in &conditions {
                match p.ctx.templar.condition(c, &scope) {
                    Ok(true) => {}
                    Ok(false) => {
                        ok = false;
                        break;
                    }
                    Err(e) => {
                        let name = self.hosts[i].name.clone();
                        let r = json!({"failed": true, "msg": e});
                        self.emit(&format!("fatal: [{name}]: FAILED! => {}", super::output::dump(&r, false)));
                        self.fail_host(i, frame);
                        ok = false;
                        break;
                    }
                }
            }
            let name = self.hosts[i].name.clone();
            if ok {
                included.insert(i);
                self.hosts[i].stats.ok += 1;
                statuses.insert(name, json!({"status": "ok"}));
            } else if !self.hosts[i].failed {
                self.hosts[i].stats.skipped += 1;
                self.emit(&format!("skipping: [{name}]"));
                statuses.insert(name, json!({"status": "skipped"}));
            }
        }
        if !included.is_empty() {
            let names: Vec<String> = included.iter().map(|&i| self.hosts[i].name.clone()).collect();
            self.emit(&format!("included: {file} for {}", names.join(", ")));
        }
        self.tasks_json.push(json!({"task": title, "at": t.loc.to_string(), "hosts": statuses}));
        (!included.is_empty()).then_some(included)
    }

    fn fail_host(&mut self, i: usize, frame: &Frame<'_>) {
        let h = &mut self.hosts[i];
        h.failed = true;
        if frame.rescuable {
            h.stats.rescued += 1;
        } else {
            h.stats.failed += 1;
        }
    }

    fn title_text(&self, p: &PlayRun<'_>, frame: &Frame<'_>, name: &str) -> String {
        let vars = play_level_vars(p.ctx.play, &self.input.options.extra_vars);
        let mut v = vars;
        if let Some(r) = frame.role {
            for (k, x) in &r.defaults {
                v.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
        // Names are templated with play-level variables; one that cannot be stays as written.
        let rendered = p
            .ctx
            .templar
            .render(&json!(name), &p.ctx.templar.scope(v))
            .map_or_else(|_| name.to_owned(), |x| super::pyfmt::str_of(&x));
        match frame.role {
            Some(r) => format!("{} : {rendered}", r.name),
            None => rendered,
        }
    }

    fn title(&self, p: &PlayRun<'_>, t: &Task, frame: &Frame<'_>, module: &str) -> String {
        match &t.name {
            Some(n) => self.title_text(p, frame, n),
            None => match frame.role {
                Some(r) => format!("{} : {module}", r.name),
                None => module.to_owned(),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_module_task(
        &mut self,
        p: &mut PlayRun<'a>,
        t: &'a Task,
        frame: &Frame<'a>,
        module: &str,
        args: &Json,
        hosts: &[usize],
        title: &str,
    ) {
        let ctx = &p.ctx;
        let modules = self.modules;
        let mut work: Vec<(usize, Host)> = hosts.iter().map(|&i| (i, self.hosts[i].clone())).collect();
        let outcomes: Vec<(usize, Host, host_task::Outcome)> = std::thread::scope(|s| {
            let handles: Vec<_> = work
                .drain(..)
                .map(|(i, mut h)| {
                    s.spawn(move || {
                        let o = host_task::run(ctx, frame, t, module, args, &mut h, modules);
                        (i, h, o)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut statuses = serde_json::Map::new();
        for (i, h, o) in outcomes {
            self.hosts[i] = h;
            for l in &o.lines {
                self.emit(l);
            }
            let host = &mut self.hosts[i];
            match o.status {
                Status::Ok => host.stats.ok += 1,
                Status::Changed => {
                    host.stats.ok += 1;
                    host.stats.changed += 1;
                }
                Status::Skipped => host.stats.skipped += 1,
                Status::Ignored => {
                    host.stats.ok += 1;
                    host.stats.ignored += 1;
                    if o.changed {
                        host.stats.changed += 1;
                    }
                }
                Status::Unreachable => {
                    host.stats.unreachable += 1;
                    host.unreachable = true;
                }
                Status::Failed => {
                    if frame.rescuable {
                        // What a rescue reads of the failure, as in Ansible.
                        let h = &mut self.hosts[i];
                        h.set_facts.insert("ansible_failed_result".into(), super::output::clean(&o.result));
                        h.set_facts.insert("ansible_failed_task".into(), json!({"name": title, "action": module}));
                    }
                    self.fail_host(i, frame)
                }
            }
            for n in &o.notify {
                for (hi, hd) in p.handlers.iter().enumerate() {
                    if hd.names.contains(n) {
                        self.hosts[i].notified.insert(hi);
                    }
                }
            }
            let mut shown = super::output::clean(&o.result);
            if t.keywords.get("no_log").is_some_and(truthy) {
                shown = json!({"censored": "no_log"});
            }
            statuses.insert(self.hosts[i].name.clone(), json!({"status": o.status.as_str(), "result": shown}));
        }
        self.tasks_json
            .push(json!({"task": title, "at": t.loc.to_string(), "handler": frame.handler, "hosts": statuses}));
    }

    /// Runs the notified handlers, in the order they are defined, each on the live hosts that
    /// notified it.
    fn flush(&mut self, p: &mut PlayRun<'a>) {
        if p.stopped {
            return;
        }
        for hi in 0..p.handlers.len() {
            let notified: BTreeSet<usize> = p
                .hosts
                .iter()
                .copied()
                .filter(|&i| {
                    self.hosts[i].notified.contains(&hi) && !self.hosts[i].failed && !self.hosts[i].unreachable
                })
                .collect();
            for &i in &p.hosts {
                self.hosts[i].notified.remove(&hi);
            }
            if notified.is_empty() {
                continue;
            }
            let (task, role) = (p.handlers[hi].task, p.handlers[hi].role);
            let frame = Frame {
                role,
                role_params: role.map(|r| vec![&r.params]).unwrap_or_default(),
                tags: Vec::new(),
                keywords: vec![&p.ctx.play.keywords],
                only: Some(Arc::new(notified)),
                handler: true,
                ..Default::default()
            };
            if let Action::Module { module, args } = &task.action {
                let hosts = self.live(p, &frame);
                let title = self.title(p, task, &frame, module);
                self.banner(&format!("RUNNING HANDLER [{title}]"));
                self.run_module_task(p, task, &frame, module, args, &hosts, &title);
            } else {
                self.task(p, task, &frame);
            }
        }
        self.check_stop(p);
    }
}

struct PlayRun<'p> {
    ctx: PlayCtx<'p>,
    hosts: Vec<usize>,
    handlers: Vec<Handler<'p>>,
    stopped: bool,
}

/// The play's handlers: its roles' (dependencies first), then the roles it includes, then its own.
fn handlers_of(play: &Play) -> Vec<Handler<'_>> {
    let mut out = Vec::new();
    fn add<'p>(tasks: &'p [Task], role: Option<&'p Role>, out: &mut Vec<Handler<'p>>) {
        for t in tasks {
            let mut names = BTreeSet::new();
            if let Some(n) = &t.name {
                names.insert(n.clone());
                if let Some(r) = role {
                    names.insert(format!("{} : {n}", r.name));
                }
            }
            if let Some(l) = t.keywords.get("listen") {
                names.extend(as_list(l).iter().map(super::pyfmt::str_of));
            }
            out.push(Handler { task: t, role, names });
        }
    }
    fn role_handlers<'p>(r: &'p Role, out: &mut Vec<Handler<'p>>, seen: &mut BTreeSet<String>) {
        if !seen.insert(r.dir.clone()) {
            return;
        }
        for d in &r.dependencies {
            role_handlers(d, out, seen);
        }
        add(&r.handlers, Some(r), out);
        included_roles(&r.tasks, out, seen);
    }
    fn included_roles<'p>(tasks: &'p [Task], out: &mut Vec<Handler<'p>>, seen: &mut BTreeSet<String>) {
        for t in tasks {
            match &t.action {
                Action::IncludeRole { role, .. } => role_handlers(role, out, seen),
                Action::Block { block, rescue, always } => {
                    included_roles(block, out, seen);
                    included_roles(rescue, out, seen);
                    included_roles(always, out, seen);
                }
                Action::IncludeTasks { tasks, .. } => included_roles(tasks, out, seen),
                Action::Module { .. } => {}
            }
        }
    }
    let mut seen = BTreeSet::new();
    for r in &play.roles {
        role_handlers(r, &mut out, &mut seen);
    }
    for list in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
        included_roles(list, &mut out, &mut seen);
    }
    add(&play.handlers, None, &mut out);
    out
}

fn play_level_vars(play: &Play, extra: &Vars) -> Vars {
    let mut v = play.vars.clone();
    for (_, f) in &play.vars_files {
        v.extend(f.clone());
    }
    v.extend(extra.clone());
    v
}

fn groups_json(inv: &crate::AnsibleInventory) -> Json {
    let mut m = serde_json::Map::new();
    m.insert("all".into(), json!(inv.hosts.keys().collect::<Vec<_>>()));
    m.insert("ungrouped".into(), json!(inv.ungrouped()));
    for g in inv.groups.keys() {
        m.insert(g.clone(), json!(inv.hosts_of_group(g)));
    }
    Json::Object(m)
}

fn dir_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_owned(),
        None => ".".into(),
    }
}

fn as_list(v: &Json) -> Vec<Json> {
    match v {
        Json::Array(a) => a.clone(),
        Json::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn truthy(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::String(s) => matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1" | "y"),
        Json::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}
