//! Publisher keys (ed25519).
//!
//! A publisher key signs package records and index records. Its secret half lives in a small
//! text file in the data directory, readable by its owner only:
//!
//! ```text
//! peerpack-publisher-key-v1
//! <64 hex digits: the ed25519 secret key>
//! ```

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::Signer;

/// The first line of a key file.
const KEY_FILE_HEADER: &str = "peerpack-publisher-key-v1";
/// The prefix of a public key's text form.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";

/// Errors reading, writing or generating a publisher key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file exists and overwriting was not asked for.
    #[error(
        "a publisher key already exists at {0}; pass --force to replace it (the old key is lost, and with it the ownership of every name it published)"
    )]
    AlreadyExists(PathBuf),
    /// No key file at the path.
    #[error("no publisher key at {0}; create one with `peerpack keygen`")]
    NotFound(PathBuf),
    /// The key file is readable by other users.
    #[error("publisher key {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`", path = .0.display(), mode = .1)]
    Permissions(PathBuf, u32),
    /// The key file is not in the expected format.
    #[error("publisher key {0} is malformed: {1}")]
    Malformed(PathBuf, &'static str),
    /// An I/O error on the key file.
    #[error("publisher key {}", .0.display())]
    Io(PathBuf, #[source] io::Error),
    /// The operating system's random number generator failed.
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
}

/// A publisher's public key. Text form: `ed25519:<64 hex digits>`.
///
/// Holds the 32 compressed bytes, checked to be a valid point when constructed; the point is
/// decompressed again only to verify a signature, which keeps the type small and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// Why bytes or text are not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid public key {0:?}: expected \"ed25519:\" followed by 64 hex digits of a valid ed25519 point"
)]
pub struct PublicKeyError(pub String);

impl PublicKey {
    /// A public key from its 32-byte compressed form; fails for bytes that are not a point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PublicKeyError> {
        match ed25519_dalek::VerifyingKey::from_bytes(bytes) {
            Ok(key) if !key.is_weak() => Ok(Self(*bytes)),
            _ => Err(PublicKeyError(hex::encode(bytes))),
        }
    }

    /// The 32-byte compressed form.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Verify `signature` over `message` (strict: rejects weak keys and malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_KEY_PREFIX}{}", hex::encode(self.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PublicKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PublicKeyError(s.to_owned());
        let hex_part = s.strip_prefix(PUBLIC_KEY_PREFIX).ok_or_else(err)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| err())?;
        Self::from_bytes(&bytes).map_err(|_| err())
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A publisher's signing key (the secret half).
#[derive(Clone)]
pub struct PublisherKey(ed25519_dalek::SigningKey);

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey({})", self.public())
    }
}

impl PublisherKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_secret_bytes(&secret))
    }

    /// A key from its 32 secret bytes (deterministic; for tests and benchmarks).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(secret))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// Write the key to `path` with mode 0600, through a temporary file so a crash never leaves
    /// a half-written key. Refuses to replace an existing key unless `overwrite` is set.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), KeyError> {
        let io_err = |e| KeyError::Io(path.to_owned(), e);
        if !overwrite && path.exists() {
            return Err(KeyError::AlreadyExists(path.to_owned()));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        let contents = format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(self.0.to_bytes()));
        let mut builder = tempfile::Builder::new();
        builder.prefix(".publisher-key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o600));
        }
        let mut tmp = builder.tempfile_in(dir).map_err(io_err)?;
        tmp.write_all(contents.as_bytes()).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        if overwrite {
            tmp.persist(path).map_err(|e| io_err(e.error))?;
        } else {
            tmp.persist_noclobber(path).map_err(|e| {
                if e.error.kind() == io::ErrorKind::AlreadyExists {
                    KeyError::AlreadyExists(path.to_owned())
                } else {
                    io_err(e.error)
                }
            })?;
        }
        // The rename is durable only once the directory is.
        crate::fs::sync_dir(dir).map_err(io_err)?;
        Ok(())
    }

    /// Read a key written by [`PublisherKey::save`]. On Unix, refuses a file that other users
    /// can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound(path.to_owned()));
            }
            Err(e) => return Err(KeyError::Io(path.to_owned(), e)),
        };
        check_permissions(path)?;
        Self::from_text(&text, path)
    }

    /// Read a key file's text (as [`PublisherKey::save`] writes it) without looking at the
    /// file's permissions: for importing a key; `path` names it in errors.
    pub fn from_text(text: &str, path: &Path) -> Result<Self, KeyError> {
        let malformed = |why| KeyError::Malformed(path.to_owned(), why);
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(malformed(
                "the first line is not \"peerpack-publisher-key-v1\"",
            ));
        }
        let hex_line = lines
            .next()
            .ok_or_else(|| malformed("the secret key line is missing"))?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(hex_line.trim(), &mut secret)
            .map_err(|_| malformed("the secret key is not 64 hex digits"))?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(malformed("unexpected text after the secret key"));
        }
        Ok(Self::from_secret_bytes(&secret))
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|e| KeyError::Io(path.to_owned(), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions(path.to_owned(), mode & 0o777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/publisher.key");
        let key = PublisherKey::generate().unwrap();
        key.save(&path, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = PublisherKey::load(&path).unwrap();
        assert_eq!(loaded.public(), key.public());
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        let first = PublisherKey::generate().unwrap();
        first.save(&path, false).unwrap();
        let second = PublisherKey::generate().unwrap();
        assert!(matches!(
            second.save(&path, false),
            Err(KeyError::AlreadyExists(_))
        ));
        assert_eq!(PublisherKey::load(&path).unwrap().public(), first.public());
        second.save(&path, true).unwrap();
        assert_eq!(PublisherKey::load(&path).unwrap().public(), second.public());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_world_readable_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        PublisherKey::generate()
            .unwrap()
            .save(&path, false)
            .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = PublisherKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn malformed_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        assert!(matches!(
            PublisherKey::load(&path),
            Err(KeyError::NotFound(_))
        ));
        PublisherKey::generate()
            .unwrap()
            .save(&path, false)
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace(KEY_FILE_HEADER, "something-else")).unwrap();
        assert!(matches!(
            PublisherKey::load(&path),
            Err(KeyError::Malformed(..))
        ));
    }

    #[test]
    fn public_key_text_round_trip_and_verify() {
        let key = PublisherKey::from_secret_bytes(&[7; 32]);
        let public = key.public();
        assert_eq!(public.to_string().parse::<PublicKey>().unwrap(), public);
        let sig = key.sign(b"msg");
        assert!(public.verify(b"msg", &sig));
        assert!(!public.verify(b"msh", &sig));
        assert!("ed25519:00".parse::<PublicKey>().is_err());
    }
}
