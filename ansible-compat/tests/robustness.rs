//! Every parser of outside input, fed mutated copies of real inputs: each must answer with a
//! value or a positioned problem, never panic or hang. (A deterministic, dependency-free
//! stand-in for a fuzzer run; the texts are small so each case is quick.)

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ansible_compat::model::AnsibleInventory;
use ansible_compat::{hostrange, ini, jinja_scan, playbook, pylit, yaml_inventory};

const SEEDS: &[&str] = &[
    "[web]\nweb[01:04] http_port=8080 note='a b'\n[db]\ndb-[a:c]:2222\n[app:children]\nweb\ndb\n[app:vars]\nx=[1, {'a': (2,)}]\n",
    "all:\n  vars: {a: 1}\n  children:\n    web:\n      hosts:\n        web[1:2]: {p: 80}\n      children: {edge: {hosts: {e1: }}}\n",
    "- hosts: dc:&x:!y\n  vars_files: [v.yml]\n  roles: [r]\n  tasks:\n    - block:\n        - command: ls\n          when: a is defined and b | bool\n      rescue:\n        - debug: {msg: \"{{ x | default('y') }}\"}\n    - include_tasks: t.yml\n",
    "{% for x in y | sort %}{{ x.k | regex_replace('a', 'b') }}{% endfor %}{# c #}{% raw %}{{ }}{% endraw %}",
];

/// Mutated inputs per run (each parser sees every one).
const ROUNDS: usize = 3000;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const ALPHABET: &[u8] = b"[]{}():,&!|%#'\"\\=-* \n\tab01.\x7f";

fn mutate(seed: &str, rng: &mut Lcg) -> String {
    let mut b: Vec<u8> = seed.as_bytes().to_vec();
    for _ in 0..(1 + rng.next() % 6) {
        let at = (rng.next() as usize) % (b.len() + 1);
        match rng.next() % 4 {
            0 if at < b.len() => {
                b.remove(at);
            }
            1 => b.insert(at, ALPHABET[(rng.next() as usize) % ALPHABET.len()]),
            2 if at < b.len() => b[at] = ALPHABET[(rng.next() as usize) % ALPHABET.len()],
            _ => {
                let from = (rng.next() as usize) % b.len().max(1);
                let len = (rng.next() as usize) % 16;
                let chunk: Vec<u8> = b.iter().skip(from).take(len).copied().collect();
                for (i, c) in chunk.into_iter().enumerate() {
                    b.insert((at + i).min(b.len()), c);
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Lcg(0x5eed);
    for round in 0..ROUNDS {
        let seed = SEEDS[round % SEEDS.len()];
        let text = mutate(seed, &mut rng);
        let mut inv = AnsibleInventory::default();
        if let Err(e) = ini::parse_into(&text, "m.ini", &mut inv) {
            assert!(e.0.iter().all(|p| p.loc.line >= 1 && p.loc.file == "m.ini"));
        }
        let mut inv = AnsibleInventory::default();
        let _ = yaml_inventory::parse_into(&text, "m.yml", &mut inv);
        let files = BTreeMap::from([
            ("p.yml".to_owned(), text.clone()),
            ("t.yml".to_owned(), text.clone()),
            ("v.yml".to_owned(), "a: 1\n".to_owned()),
            ("roles/r/tasks/main.yml".to_owned(), text.clone()),
        ]);
        if let Err(e) = playbook::load("p.yml", &files) {
            assert!(e.0.iter().all(|p| p.loc.line >= 1), "{e}");
        }
        let _ = jinja_scan::scan_template(&text);
        let _ = jinja_scan::scan_expression(&text);
        let _ = pylit::literal(&text);
        let _ = pylit::shlex_split(&text);
        let _ = pylit::split_args(&text);
        for word in text.split_whitespace().take(5) {
            let _ = hostrange::expand(word);
        }
    }
}

/// Found by the fuzz smoke: a quote before a multi-byte character inside `{{ … }}` left the
/// search for `}}` at a byte inside the character, and slicing the text there panicked.
#[test]
fn a_close_search_inside_a_multibyte_character_does_not_panic() {
    for text in ["{{ '' \u{211}x }}", "{{ \"\" \u{211}\u{211} }}x", "{% if 'a' \u{1F600} %}", "{{ '\u{211}"] {
        let _ = jinja_scan::scan_template(text);
    }
    let crash = "      service: name\u{211}ginx state=restarted\n      changed_when: \"{{ x }}\"\n";
    let files = BTreeMap::from([("p.yml".to_owned(), format!("- hosts: all\n  tasks:\n    - name: x\n{crash}"))]);
    let _ = playbook::load("p.yml", &files);
}
