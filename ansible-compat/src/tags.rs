//! Tag selection as Ansible does it (`--tags`, `--skip-tags`; the special tags `always`,
//! `never`, `all`, `tagged`, `untagged`).
//!
//! A task's tags are its own and those inherited from its blocks, roles and play. With no
//! `--tags`, `only` is `["all"]`: everything runs except tasks tagged `never`. A task tagged
//! `always` runs unless `always` itself (or `all`) is skipped. A task tagged `never` runs
//! only when one of its other tags is asked for by name.

/// Whether a task with `tags` runs under `--tags only` and `--skip-tags skip`.
pub fn should_run(tags: &[String], only: &[String], skip: &[String]) -> bool {
    let untagged = ["untagged".to_owned()];
    let tags: &[String] = if tags.is_empty() { &untagged } else { tags };
    let has = |set: &[String], t: &str| set.iter().any(|x| x == t);
    let meets = |a: &[String], b: &[String]| a.iter().any(|x| b.contains(x));
    let all_only = ["all".to_owned()];
    let only: &[String] = if only.is_empty() { &all_only } else { only };
    let mut run = has(tags, "always")
        || (has(only, "all") && !has(tags, "never"))
        || meets(tags, only)
        || (has(only, "tagged") && tags != untagged && !has(tags, "never"));
    if run && !skip.is_empty() {
        if has(skip, "all") {
            if !has(tags, "always") || has(skip, "always") {
                run = false;
            }
        } else if meets(tags, skip) || (has(skip, "tagged") && tags != untagged) {
            run = false;
        }
    }
    run
}

/// `--tags a,b --tags c` → `[a, b, c]`.
pub fn parse_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        parse_list(&[s.to_owned()])
    }

    #[test]
    fn table_of_ansible_behaviour() {
        // (task tags, --tags, --skip-tags, runs)
        let cases = [
            ("", "", "", true),
            ("web", "", "", true),
            ("never", "", "", false),
            ("never,debug", "debug", "", true),
            ("never,debug", "all", "", false),
            ("always", "web", "", true),
            ("always", "", "always", false),
            ("always", "", "all", true),
            ("always", "", "all,always", false),
            ("web", "web", "", true),
            ("db", "web", "", false),
            ("", "untagged", "", true),
            ("web", "untagged", "", false),
            ("web", "tagged", "", true),
            ("", "tagged", "", false),
            ("web", "", "web", false),
            ("web", "", "tagged", false),
            ("", "", "tagged", true),
            ("", "", "untagged", false),
            ("web,db", "db", "web", false),
        ];
        for (tags, only, skip, want) in cases {
            assert_eq!(
                should_run(&v(tags), &v(only), &v(skip)),
                want,
                "tags {tags:?} --tags {only:?} --skip-tags {skip:?}"
            );
        }
    }
}
