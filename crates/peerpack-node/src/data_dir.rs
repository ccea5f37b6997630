//! The data directory ([`DataDir`], shared with local clients through `peerpack-api`), and
//! what only a node does with it: create the API token, write `node.json`.

use std::path::Path;

pub use peerpack_api::local::{
    API_TOKEN_FILE, DataDir, ENV_VAR, Error, NODE_KEY_FILE, PUBLISHER_KEY_FILE, RUNTIME_FILE,
    RuntimeInfo, is_api_token,
};

/// The API token that mutating API calls need: read from `api-token`, or created there
/// (32 random bytes as 64 hex digits, mode 0600, written atomically) on first start.
pub fn load_or_create_api_token(dir: &DataDir) -> std::io::Result<String> {
    let path = dir.api_token_file();
    if let Some(token) = dir.read_api_token() {
        restrict(&path)?;
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Written with mode 0600.
    peerpack_core::fs::atomic_write(&path, format!("{token}\n").as_bytes())?;
    restrict(&path)?;
    Ok(token)
}

/// Make `path` readable by its owner only (other local users must not read the token).
#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Write `node.json` atomically.
pub fn write_runtime(info: &RuntimeInfo, dir: &DataDir) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(info).map_err(std::io::Error::other)?;
    peerpack_core::fs::atomic_write(&dir.runtime_file(), (text + "\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_token_is_created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        assert_eq!(d.read_api_token(), None);
        let t = load_or_create_api_token(&d).unwrap();
        assert!(is_api_token(&t), "{t}");
        assert_eq!(load_or_create_api_token(&d).unwrap(), t);
        assert_eq!(d.read_api_token(), Some(t));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.api_token_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
