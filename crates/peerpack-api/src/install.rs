//! Installing and the archive cache: what `POST /v1/install`, `POST /v1/gc` and `/v1/pins`
//! take and answer, and the lines of a streamed install.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ErrorDetail;

/// The lock file's name, in the directory `peerpack install` runs in.
pub const LOCK_FILE: &str = "peerpack.lock";

/// The default install directory, relative to where `peerpack install` runs.
pub const DEFAULT_INSTALL_DIR: &str = "peerpack_packages";

/// What to install.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallRequest {
    /// `NAME` or `NAME@REQ` (semver requirement; default: the latest).
    #[serde(default)]
    pub packages: Vec<String>,
    /// The directory packages go into, each as `TO/NAME`. Absolute.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: PathBuf,
    /// The current lock file's text, if there is one.
    #[serde(default)]
    pub lock: Option<String>,
    /// Install exactly what `lock` says, or fail.
    #[serde(default)]
    pub locked: bool,
    /// The key to trust as the owner of the one package named (`--owner`): pinned as with
    /// `peerpack trust` before anything is resolved.
    #[serde(default)]
    pub owner: Option<String>,
    /// Replace `TO/NAME` even when it is not a tree peerpack installed for NAME (`--force`).
    /// Without it such a path is an error and left alone. Either way the old tree is removed
    /// only once the new one is in its place.
    #[serde(default)]
    pub force: bool,
    /// Update: let the versions of `packages` (of every locked package when `packages` is
    /// empty) move to the highest that the roots allow. Without it a locked version never
    /// moves unless a requirement named on the command line excludes it.
    #[serde(default)]
    pub update: bool,
    /// Resolve and report the changes, but fetch and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Check every installed tree against its archive and restore the ones that drifted.
    #[serde(default)]
    pub repair: bool,
}

/// One installed package.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Installed {
    /// Package name.
    pub name: String,
    /// Version installed.
    pub version: String,
    /// The archive's content id.
    pub content_id: String,
    /// Where it was extracted.
    pub path: String,
    /// Peers the bytes came from, most first (empty when the archive was already here).
    pub sources: Vec<String>,
    /// Bytes downloaded for it now.
    pub fetched_bytes: u64,
    /// Bytes found in a partial download from an earlier attempt.
    pub resumed_bytes: u64,
    /// The archive was already in this node's store.
    pub cached: bool,
    /// The directory already held exactly this version; nothing was written.
    pub unchanged: bool,
    /// The tree held this version but differed from its archive (`--repair`), and was
    /// restored.
    #[serde(default)]
    pub repaired: bool,
    /// The owner deprecated this version, with this message.
    #[serde(default)]
    pub deprecated: Option<String>,
    /// The owner yanked this version (it was installed because the lock names it), with the
    /// reason.
    #[serde(default)]
    pub yanked: Option<String>,
    /// How the files were written: `unpacked` from the archive, or from the node's unpacked
    /// copy of it `reflinked`, `copied` or `hard-linked` (`install.link`); `null` when nothing
    /// was written.
    #[serde(default)]
    pub placed: Option<String>,
}

/// What an install did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallReport {
    /// The packages, dependencies first (empty on a dry run).
    pub installed: Vec<Installed>,
    /// How the locked set changed: each package added, updated or dropped.
    #[serde(default)]
    pub changes: Vec<Change>,
    /// The new lock file's text.
    pub lock: String,
}

/// One package whose locked version an install, update or remove changed (or, on a dry run,
/// would change).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// Package name.
    pub name: String,
    /// The version locked before (none: added).
    pub from: Option<String>,
    /// The version locked now (none: no longer needed).
    pub to: Option<String>,
    /// The highest release this node knows of the name, whatever the requirements.
    pub latest: Option<String>,
}

/// The body of `POST /v1/remove`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoveRequest {
    /// The names to remove from the lock's roots.
    pub packages: Vec<String>,
    /// The install directory. Absolute.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: PathBuf,
    /// The current lock file's text.
    pub lock: String,
}

/// What `POST /v1/remove` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoveReport {
    /// The packages no longer needed, each with whether its tree was deleted.
    pub removed: Vec<Uninstalled>,
    /// The new lock file's text.
    pub lock: String,
}

/// One package `remove` dropped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Uninstalled {
    /// Package name.
    pub name: String,
    /// The version that was locked.
    pub version: String,
    /// Its tree, `TO/NAME`.
    pub path: String,
    /// The tree was peerpack's and is gone. False when nothing was there, or when the path
    /// holds something peerpack did not install there (left alone).
    pub deleted: bool,
}

/// The body of `POST /v1/verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyRequest {
    /// The install directory. Absolute.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: PathBuf,
    /// The lock file's text: what should be installed.
    pub lock: String,
    /// Only these names (default: every locked package).
    #[serde(default)]
    pub packages: Vec<String>,
}

/// How an installed tree compares with its archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verified {
    /// Package name.
    pub name: String,
    /// The locked version.
    pub version: String,
    /// The tree, `TO/NAME`.
    pub path: String,
    /// `ok`; `drifted` (see `drift`); `missing` (no tree); `foreign` (the path holds
    /// something peerpack did not install for this version).
    pub state: String,
    /// What differs, by path inside the tree.
    pub drift: Vec<Drift>,
}

/// One difference between an installed tree and its archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drift {
    /// The path inside the tree, `/`-separated.
    pub path: String,
    /// `missing`, `modified` (other bytes or link target), `added` (not in the archive),
    /// `mode` (executable bit) or `type` (a file where the archive has a directory or link,
    /// or the other way round).
    pub kind: String,
}

/// What `POST /v1/verify` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReport {
    /// One entry per package checked, in lock order.
    pub packages: Vec<Verified>,
}

impl VerifyReport {
    /// Whether every tree matches its archive.
    pub fn clean(&self) -> bool {
        self.packages.iter().all(|p| p.state == "ok")
    }
}

/// One archive garbage collection removed (or would remove).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Removed {
    /// Its content id.
    pub content_id: String,
    /// The archive's size in bytes.
    pub archive_size: u64,
    /// The package versions it holds, `name@version`.
    pub packages: Vec<String>,
    /// Last used, Unix seconds (0 if never recorded).
    pub last_used: i64,
}

/// What garbage collection did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcReport {
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
    /// The cache quota in bytes.
    pub quota: u64,
    /// Archives removed, least recently used first.
    pub removed: Vec<Removed>,
    /// Bytes freed.
    pub freed: u64,
    /// Archives kept because published here, installed or pinned.
    pub protected: u64,
    /// Bytes of those.
    pub protected_bytes: u64,
    /// Bytes of other archives kept (within the quota).
    pub cached_bytes: u64,
}

/// A pin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pin {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// The query of `POST /v1/install`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct InstallQuery {
    /// `ndjson`: answer `application/x-ndjson`, a progress line every 200 ms, then the result
    /// or the error. Anything else: one JSON answer.
    pub progress: Option<String>,
}

/// Live figures of a streamed install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallProgress {
    /// The install's id, for `DELETE /v1/install/{id}`.
    #[serde(default)]
    pub id: u64,
    /// Packages to install.
    pub packages: u64,
    /// Packages done.
    pub packages_done: u64,
    /// Bytes of archives to download.
    pub bytes_total: u64,
    /// Bytes verified so far.
    pub bytes_done: u64,
    /// The package being downloaded.
    pub current: Option<String>,
    /// How many peers are serving it.
    pub sources: u64,
    /// Milliseconds since the install started.
    pub elapsed_ms: u64,
}

/// One line of `POST /v1/install?progress=ndjson`: progress lines, then the result or the
/// error. On the wire each is an object with one key: `{"progress": …}`, `{"result": …}` or
/// `{"error": …}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallLine {
    /// How far the install is.
    Progress(InstallProgress),
    /// What was installed; the last line.
    Result(InstallReport),
    /// Why the install failed; the last line.
    Error(ErrorDetail),
}

/// The body of `POST /v1/gc` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// The schema keeps the name the OpenAPI document has always used.
#[cfg_attr(feature = "openapi", schema(as = GcBody))]
pub struct GcRequest {
    /// Only report what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// The body of `POST /v1/pins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// The schema keeps the name the OpenAPI document has always used.
#[cfg_attr(feature = "openapi", schema(as = PinBody))]
pub struct PinRequest {
    /// `NAME` (its latest version) or `NAME@VERSION`.
    #[cfg_attr(feature = "openapi", schema(example = "rust-cli@1.2.0"))]
    pub package: String,
}

/// The answer of `DELETE /v1/install/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallCancelled {
    /// The install.
    pub id: u64,
}

/// The body of `POST /v1/mirrors`: exactly one of `name` and `owner`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MirrorRequest {
    /// Mirror every version of this name.
    #[serde(default)]
    pub name: Option<String>,
    /// Mirror every version of every name this key owns here (`ed25519:<hex>`).
    #[serde(default)]
    pub owner: Option<String>,
}

/// A mirror rule: `name` or `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MirrorView {
    /// The name mirrored.
    pub name: Option<String>,
    /// The owner key whose names are mirrored.
    pub owner: Option<String>,
}

/// One version a mirror rule covers, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mirrored {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `fetched` (downloaded now), `held` (already here), `skipped` (it would take the
    /// mirrored archives past the cache quota) or `failed` (see `reason`).
    pub state: String,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
}

/// What `POST /v1/mirrors` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MirrorReport {
    /// The rule.
    pub rule: MirrorView,
    /// False when the rule was there already.
    pub added: bool,
    /// Every version the rule covers now. New versions are fetched as they arrive.
    pub versions: Vec<Mirrored>,
}
