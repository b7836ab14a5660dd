//! `keygen` and `id`: key pairs and the stored identity.

use std::path::PathBuf;

use anyhow::{Context, Result};
use swarmplex::KeyPair;

pub fn keygen(seed: Option<String>) -> Result<()> {
    let kp = match seed {
        Some(s) => crate::common::parse_seed(&s)?,
        None => KeyPair::generate(),
    };
    println!("public key: {}", kp.public_key());
    println!("secret key: {}", hex::encode(kp.secret_key()));
    Ok(())
}

/// `$XDG_CONFIG_HOME/swarmplex/identity`, else `~/.config/swarmplex/identity`.
fn identity_path() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set")?;
    Ok(base.join("swarmplex").join("identity"))
}

/// Loads the stored identity, creating it (mode 0600) on first use.
pub fn load_or_create() -> Result<KeyPair> {
    let path = identity_path()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        return Ok(KeyPair::from_secret_key(&bytes)?);
    }
    let kp = KeyPair::generate();
    std::fs::create_dir_all(path.parent().unwrap())?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    writeln!(f, "{}", hex::encode(kp.secret_key()))?;
    Ok(kp)
}

pub fn show() -> Result<()> {
    let kp = load_or_create()?;
    println!("{}", kp.public_key());
    Ok(())
}
