//! `mangrove users add|list`: people who sign in to the web console. The password is read from
//! standard input, never from the command line (argv is visible to every local user).

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::cli::{emit, rows_of, s, table};
use crate::client::Client;

#[derive(Debug, clap::Subcommand)]
pub enum UsersCmd {
    /// Add a user with a password read from stdin (first line; at least 12 characters), or
    /// give a user made with `token create` a password.
    Add {
        name: String,
        /// admin, operator, security, planner or auditor.
        #[arg(long)]
        role: String,
    },
    /// Every user: role, whether they have a password, lock-out.
    List,
}

pub fn run(cmd: UsersCmd, c: &Client, json_out: bool) -> Result<()> {
    match cmd {
        UsersCmd::Add { name, role } => {
            let password = read_password(std::io::stdin().lock())?;
            let v = add(c, &name, &role, &password)?;
            emit(json_out, &v, |v| {
                let what = if v["created"] == json!(true) { "added" } else { "gave a password to" };
                format!("{what} user {} (role {})\n", s(&v["name"]), s(&v["role"]))
            });
            Ok(())
        }
        UsersCmd::List => {
            let v = c.get("/api/v1/users")?;
            emit(json_out, &v, |v| {
                let rows = rows_of(v, |u| {
                    vec![
                        s(&u["name"]),
                        s(&u["role"]),
                        if u["has_password"] == json!(true) { "yes".into() } else { "no".into() },
                        s(&u["locked_until"]),
                        s(&u["created_at"]),
                    ]
                });
                table(&["NAME", "ROLE", "PASSWORD", "LOCKED UNTIL", "CREATED"], &rows)
            });
            Ok(())
        }
    }
}

/// Adds `name` with `role` and `password` through the API (`POST /api/v1/users`); the path
/// both `users add` and the testbed's users take.
pub fn add(c: &Client, name: &str, role: &str, password: &str) -> Result<serde_json::Value> {
    if let Err(why) = crate::users::check_password(password) {
        bail!("users add {name}: {why} (the password is the first line of stdin)");
    }
    c.post("/api/v1/users", &json!({"name": name, "role": role, "password": password}))
}

/// The first line of `input`, without its line ending.
fn read_password(mut input: impl BufRead) -> Result<String> {
    let mut line = String::new();
    input.read_line(&mut line).context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        assert_eq!(read_password(&b"pa ss word 123\r\nnext\n"[..]).expect("read"), "pa ss word 123");
        assert_eq!(read_password(&b""[..]).expect("read"), "");
    }
}
