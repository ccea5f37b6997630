//! The HTTP API of a peerpack node: its request and response types and a typed client.
//!
//! A program that drives a node needs this crate alone:
//!
//! ```no_run
//! # async fn run() -> Result<(), peerpack_api::ClientError> {
//! use peerpack_api::{Client, DataDir, RuntimeInfo, Search};
//!
//! let dir = DataDir::resolve(None).expect("a home directory");
//! let info = RuntimeInfo::read(&dir).expect("a running node");
//! let client = Client::new(&info.api, dir.read_api_token().as_deref())?;
//! for hit in client.search(&Search { q: "rust".into(), ..Search::default() }).await? {
//!     println!("{} {}", hit.name, hit.version);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The node (`peerpack-node`) answers with these very types, so client and server cannot
//! drift apart; with the `openapi` feature they also describe themselves for the node's
//! OpenAPI document. docs/API.md documents every route.
//!
//! # Layout
//! - [`catalogue`]: search, package information, publish.
//! - [`peers`]: peers, blocks, bootstrap and the node's status.
//! - [`install`]: install (and its progress lines), garbage collection, pins.
//! - [`names`]: pinned owners and curator lists.
//! - [`error`]: the error answer every failed call carries.
//! - [`client`]: [`Client`], a typed async client.
//! - [`local`]: the data directory, and how local clients find a running node in it.
//! - [`lockfile`]: `peerpack.lock`, read by the CLI and the node alike.

pub mod catalogue;
pub mod client;
pub mod error;
pub mod install;
pub mod local;
pub mod lockfile;
pub mod names;
pub mod peers;

pub use catalogue::{
    Amended, ClaimView, DeprecateRequest, Info, PublishRequest, Published, Search, SearchHit,
    VersionInfo, YankRequest,
};
pub use client::{Client, ClientError};
pub use error::{ApiError, ErrorDetail};
pub use install::{
    Change, DEFAULT_INSTALL_DIR, Drift, GcReport, GcRequest, InstallCancelled, InstallLine,
    InstallProgress, InstallQuery, InstallReport, InstallRequest, Installed, LOCK_FILE,
    MirrorReport, MirrorRequest, MirrorView, Mirrored, Pin, PinRequest, RemoveReport,
    RemoveRequest, Removed, Uninstalled, Verified, VerifyReport, VerifyRequest,
};
pub use local::{DataDir, RuntimeInfo};
pub use lockfile::{Locked, Lockfile};
pub use names::{CurateEntry, CurateRequest, CuratorView, TrustRequest, TrustView, Untrusted};
pub use peers::{
    BootstrapRequest, BootstrapView, CacheStats, DhtClaim, DhtName, DhtProviders,
    DhtProvidersQuery, DhtQueryStats, DhtView, Dialled, GossipStats, PeerView, PeersQuery,
    RefusalCount, RoundView, StatusView, UiLink, Unblocked,
};
