//! People who sign in to the web console: password rules, Argon2id hashes (PHC strings), adding
//! a user with a password, and checking a sign-in against the lock-out rule.
//!
//! Users themselves are older than passwords: an API token creates its user (see
//! [`App::create_token`]). `users add` gives a new or password-less user a password; it never
//! replaces one.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use serde_json::{Value, json};

use crate::app::{App, AppError, Principal, Role, now_ms, rfc3339};
use crate::store::{LockoutRule, PasswordAdded, StoreError};

/// The shortest password `users add` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer passwords are refused: hashing is the costly part of a sign-in, and nobody types more.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a password is not acceptable, in words for the person choosing it.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if password.trim().is_empty() {
        return Err("the password is empty".into());
    }
    if n < MIN_PASSWORD_CHARS {
        return Err(format!("the password is too short: {n} characters, at least {MIN_PASSWORD_CHARS} needed"));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("the password is too long: at most {MAX_PASSWORD_CHARS} characters"));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's first choice).
fn argon2() -> Argon2<'static> {
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, Params::default())
}

/// The PHC string (`$argon2id$v=19$m=…`) of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt: {e}"))?;
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| format!("hashing: {e}"))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A user name as tokens and passwords accept it.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// Runs Argon2 off the async threads (it takes tens of milliseconds of CPU by design).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Upstream(format!("password hashing did not finish: {e}")))
}

/// `users add`: creates `name` with `role` and `password`, or gives an existing password-less
/// user of that role the password. Admins only; audited as `user.add`.
pub async fn add_user(app: &App, by: &Principal, name: &str, role: &str, password: &str) -> Result<Value, AppError> {
    if !by.may(&[]) {
        return Err(AppError::Forbidden(format!("role {} may not add users; only an admin may", by.role.as_str())));
    }
    let role = Role::parse(role).filter(|r| *r != Role::Agent).ok_or_else(|| {
        AppError::BadRequest(format!("unknown role {role:?}; roles are admin, operator, security, planner, auditor"))
    })?;
    if !valid_user_name(name) {
        return Err(AppError::BadRequest(format!("invalid user name {name:?}: 1–64 letters, digits and - _ . @")));
    }
    check_password(password).map_err(AppError::BadRequest)?;
    let pw = password.to_string();
    let hash = blocking(move || hash_password(&pw)).await?.map_err(AppError::BadRequest)?;
    let outcome = app.store.add_password_user(name, role.as_str(), &hash, now_ms()).await.map_err(|e| match e {
        StoreError::RoleMismatch { .. } => AppError::Conflict(e.to_string()),
        e => AppError::Store(e),
    })?;
    let created = match outcome {
        PasswordAdded::Created => true,
        PasswordAdded::PasswordSet => false,
        PasswordAdded::AlreadyHasPassword => {
            // The same password again is a no-op (a testbed brought up again repeats its
            // users); another one is refused: `users add` never replaces a password.
            let stored = app.store.user_password(name).await?.and_then(|(_, h)| h).unwrap_or_default();
            let pw = password.to_string();
            if blocking(move || verify_password(&pw, &stored)).await? {
                return Ok(json!({"name": name, "role": role.as_str(), "created": false, "has_password": true}));
            }
            return Err(AppError::Conflict(format!("user {name} already has another password")));
        }
    };
    app.audit(&by.user, "user.add", Some(name), json!({"role": role.as_str(), "created": created})).await;
    Ok(json!({"name": name, "role": role.as_str(), "created": created, "has_password": true}))
}

/// `users list`: every user with their role, whether they have a password, and any lock.
pub async fn list_users(app: &App, by: &Principal) -> Result<Value, AppError> {
    if !by.may(&[]) {
        return Err(AppError::Forbidden(format!("role {} may not list users; only an admin may", by.role.as_str())));
    }
    let users = app.store.list_users(now_ms()).await?;
    Ok(Value::Array(
        users
            .iter()
            .map(|u| {
                json!({
                    "name": u.name,
                    "role": u.role,
                    "created_at": rfc3339(u.created_at),
                    "has_password": u.has_password,
                    "locked_until": u.locked_until.map(rfc3339),
                })
            })
            .collect(),
    ))
}

/// Why a sign-in was refused. Neither says whether the name exists.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong user name or password")]
    Invalid,
    #[error("locked until {until} after too many failed sign-ins")]
    Locked { until: i64 },
    #[error("store")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// A PHC string checked against when the name is unknown or has no password, so that such a
/// sign-in costs the same time as a real one and its timing tells nothing.
static DECOY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("decoy password never used").unwrap_or_default());

/// Checks a sign-in against the lock-out rule and the stored hash; audits the outcome
/// (`web.signin`, `web.signin_failed`, `web.lockout`, `web.signin_locked`).
pub async fn sign_in(app: &App, name: &str, password: &str) -> Result<Principal, SignInError> {
    let now = now_ms();
    // Names in the audit log are bounded; anything typed may land there.
    let shown: String = name.chars().take(64).collect();
    if let Some(until) = app.store.signin_locked_until(&shown, now).await? {
        app.audit(&shown, "web.signin_locked", Some(&shown), json!({"locked_until": rfc3339(until)})).await;
        return Err(SignInError::Locked { until });
    }
    let stored = if valid_user_name(name) { app.store.user_password(name).await? } else { None };
    let (role, hash) = match stored {
        Some((role, Some(hash))) => (Some(role), hash),
        _ => (None, DECOY.clone()),
    };
    let pw = password.chars().take(MAX_PASSWORD_CHARS).collect::<String>();
    let good = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .map_err(|e| SignInError::Internal(format!("password check did not finish: {e}")))?;
    let role = role.as_deref().and_then(Role::parse).filter(|r| *r != Role::Agent);
    match role {
        Some(role) if good => {
            app.store.clear_signin_failures(name).await?;
            app.audit(name, "web.signin", Some(name), json!({})).await;
            Ok(Principal { user: name.to_string(), role })
        }
        _ => {
            let rule = LockoutRule {
                max_failures: i64::from(app.cfg.web.max_failures),
                lock_ms: i64::try_from(app.cfg.web.lockout.0.as_millis()).unwrap_or(i64::MAX),
            };
            let locked = app.store.record_signin_failure(&shown, now, rule).await?;
            app.audit(&shown, "web.signin_failed", Some(&shown), json!({})).await;
            match locked {
                Some(until) => {
                    app.audit(&shown, "web.lockout", Some(&shown), json!({"locked_until": rfc3339(until)})).await;
                    Err(SignInError::Locked { until })
                }
                None => Err(SignInError::Invalid),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_shorter_than_twelve_or_empty_are_refused() {
        assert!(check_password("").expect_err("refused").contains("empty"));
        assert!(check_password("            ").expect_err("refused").contains("empty"));
        assert!(check_password("short-pw").expect_err("refused").contains("too short: 8 characters, at least 12"));
        // Characters, not bytes: 11 Vietnamese letters are still too short.
        assert!(check_password("ăâđêôơưăâđê").is_err());
        assert!(check_password("đúng-mười-hai").is_ok());
    }

    #[test]
    fn a_hash_is_argon2id_phc_and_verifies_only_its_password() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("correct horse battery", "not a phc string"));
        // Salted: the same password hashes differently each time.
        assert_ne!(h, hash_password("correct horse battery").expect("hash"));
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("op2"));
        assert!(valid_user_name("a.b@c-d_e"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("a b"));
        assert!(!valid_user_name(&"x".repeat(65)));
    }
}
