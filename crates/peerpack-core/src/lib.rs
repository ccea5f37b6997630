//! The peerpack package format and trust model.
//!
//! Everything here is pure: no async runtime, no networking, and no I/O beyond reading a
//! package directory, reading or writing a key file, writing a file atomically and extracting
//! an archive into a directory the caller names. Higher crates (store, net, node) build on these types.
//!
//! # Layout
//! - [`name`]: package names (`[a-z0-9][a-z0-9-]{0,63}`).
//! - [`manifest`]: the `peerpack.toml` manifest, parsed and validated with errors that name the
//!   file and the key.
//! - [`archive`]: the deterministic tar + zstd archive of a package directory, and safe
//!   extraction that never writes outside its target.
//! - [`content_id`]: content ids, the BLAKE3 hash of an archive (`blake3:<hex>`).
//! - [`keys`]: publisher keys (ed25519): generate, save with 0600 permissions, load.
//! - [`record`]: signed package records and signed package index records, their single
//!   canonical encoding and their verification.
//! - [`outline`]: piece-wise verification of an archive against its content id.
//! - [`resolve`]: dependency resolution (highest versions that satisfy every requirement).
//! - [`curator`]: signed curator lists, which vouch for who owns which names.
//! - [`limits`]: every size limit the format enforces, in one place.
//! - [`fs`]: atomic, durable file writes; [`sync`]: a lock that survives a panicking holder.

pub mod archive;
pub mod content_id;
pub mod curator;
mod encoding;
pub mod fs;
pub mod keys;
pub mod limits;
pub mod manifest;
pub mod name;
pub mod outline;
pub mod record;
pub mod resolve;
pub mod sync;

pub use content_id::ContentId;
pub use curator::CuratorList;
pub use encoding::DecodeError;
pub use keys::{PublicKey, PublisherKey};
pub use manifest::Manifest;
pub use name::PackageName;
pub use outline::Outline;
pub use record::{IndexRecord, PackageRecord, RecordHash};
pub use semver::{Version, VersionReq};
