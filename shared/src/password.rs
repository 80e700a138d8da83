//! Agents' passwords: argon2id with OWASP's recommended parameters (19 MiB of memory, 2 passes,
//! 1 lane), stored as PHC strings that carry their own salt and parameters.

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use crate::secret::Secret;

/// Shorter passwords are refused when they are set; the admin tool generates longer ones.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// argon2 hashes whatever it is given; a megabyte-long "password" should not cost more.
pub const MAX_PASSWORD_CHARS: usize = 256;

const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long")]
    Length,
    #[error("could not draw a salt")]
    Random(#[from] getrandom::Error),
    #[error("could not hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

fn argon2() -> Argon2<'static> {
    // Constant, valid parameters: `Params::new` cannot fail on them, and the default is the same.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<Secret, PasswordError> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(PasswordError::Length);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    let hash = argon2().hash_password(password.as_bytes(), &salt).map_err(PasswordError::Hash)?;
    Ok(Secret::new(hash.to_string()))
}

/// Whether `password` matches `hash`. A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &Secret) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    PasswordHash::new(hash.expose()).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash made with `hash_password` and the same parameters, of a password nobody knows.
const NOBODY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$SgLMOk6W3gOWf6jvhSvKIw$WSTlj/1fzBn/FZLIeld+7M0hG0R20QLw5i+PU6xmz98";

/// Takes as long as checking a real password: for an agent id that does not exist or is
/// disabled, so that the time of the answer does not tell those apart from a wrong password.
pub fn spend_a_password_check(password: &str) {
    std::hint::black_box(verify_password(password, &Secret::new(NOBODY)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.expose());
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("", &hash));
        let again = hash_password("correct horse battery").unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
    }

    #[test]
    fn refuses_passwords_of_the_wrong_length() {
        assert!(matches!(hash_password("too short"), Err(PasswordError::Length)));
        assert!(matches!(hash_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)), Err(PasswordError::Length)));
        assert!(hash_password(&"é".repeat(MIN_PASSWORD_CHARS)).is_ok(), "characters, not bytes");
    }

    #[test]
    fn malformed_hashes_and_nobody_match_nothing() {
        assert!(!verify_password("anything at all", &Secret::new("not a hash")));
        assert!(!verify_password("anything at all", &Secret::new("")));
        // The stand-in costs what a real check costs: same algorithm, version and parameters.
        let real = hash_password("correct horse battery").unwrap();
        let parameters = |hash: &str| hash.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(parameters(NOBODY), parameters(real.expose()));
    }
}
