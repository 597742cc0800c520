//! The HS256 secret: configured, or generated once into the data folder and
//! kept, so tokens issued by `clearance token issue` stay valid across restarts.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore;

const SECRET_FILE: &str = "jwt-secret";

/// Returns the configured secret, else the one in the data folder, creating
/// it (readable by its owner only) on first use.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> std::io::Result<String> {
    if let Some(secret) = configured {
        return Ok(secret.to_owned());
    }
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(secret) if !secret.trim().is_empty() => return Ok(secret.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(None, dir.path()).unwrap();
        let second = load_or_create_secret(None, dir.path()).unwrap();
        assert_eq!(first, second);
        assert!(first.len() >= 32);
        assert_eq!(
            load_or_create_secret(Some("configured-secret"), dir.path()).unwrap(),
            "configured-secret"
        );
    }
}
