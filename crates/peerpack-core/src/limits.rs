//! Size limits of the package format.
//!
//! They are part of the protocol: a record or archive that exceeds one is refused by every
//! node, so they are documented in docs/PROTOCOL.md and only ever raised with a new record
//! version.

/// Longest package name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest `description`, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// Longest `license` expression, in characters.
pub const MAX_LICENSE_LEN: usize = 100;
/// Most entries in `authors`.
pub const MAX_AUTHORS: usize = 32;
/// Longest single author, in characters.
pub const MAX_AUTHOR_LEN: usize = 200;
/// Most entries in `categories`.
pub const MAX_CATEGORIES: usize = 5;
/// Most entries in `tags`.
pub const MAX_TAGS: usize = 20;
/// Longest category or tag, in bytes (`[a-z0-9][a-z0-9-]*`).
pub const MAX_KEYWORD_LEN: usize = 32;
/// Longest `homepage`, `repository` or `readme` value, in characters.
pub const MAX_URL_LEN: usize = 512;
/// Most entries in `[dependencies]`.
pub const MAX_DEPENDENCIES: usize = 128;
/// Longest version requirement string, in characters.
pub const MAX_REQ_LEN: usize = 128;
/// Largest encoded package or index record, in bytes (signature included).
pub const MAX_RECORD_SIZE: usize = 64 * 1024;
/// Most versions listed in one package index record.
pub const MAX_INDEX_VERSIONS: usize = 1024;
/// Characters in a yank reason or a deprecation message of an index entry.
pub const MAX_NOTICE_LEN: usize = 512;
/// Default cap on the total size of the files an archive may expand to (4 GiB).
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Default cap on the number of entries (files, directories, links) in an archive.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
/// Longest path inside an archive, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Largest GNU long-name or long-link entry (tar types `L` and `K`) an extractor reads, in
/// bytes. Such an entry holds one path (at most [`MAX_PATH_LEN`] bytes) and a NUL; the rest is
/// slack for other packers.
pub const MAX_LONG_NAME_ENTRY: u64 = 4096;
/// Largest PAX extended header (tar types `x` and `g`) an extractor reads, in bytes.
pub const MAX_PAX_HEADER: u64 = 64 * 1024;
/// Most entries in one curator list (each at most 100 encoded bytes, so a full list stays
/// under [`MAX_RECORD_SIZE`]).
pub const MAX_CURATOR_ENTRIES: usize = 512;
