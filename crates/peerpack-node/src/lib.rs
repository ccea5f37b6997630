//! The peerpack daemon: wires the store and the network together.
//!
//! [`Node::start`] opens the store, starts the libp2p event loop, the node's own tasks and the
//! HTTP API, and dials the bootstrap peers. Everything that arrives from the network is
//! validated here before it is stored ([`ingest`]).
//!
//! # Layout
//! - [`config`]: node configuration (defaults < config file < flags).
//! - [`data_dir`]: the data directory and `node.json`.
//! - [`node`]: the running node and its event and periodic tasks: the only module that
//!   knows every service.
//! - [`context`]: the parts of a running node ([`catalogue`], [`transfer`], the peer book in
//!   [`reputation`], the network handle), shared by the services.
//! - [`catalogue`]: the store and what is kept in memory beside it.
//! - [`supervisor`]: the node's core tasks and spawned work, cancelled on shutdown.
//! - [`ingest`]: validation of gossip, DHT writes, sync pages and what DHT reads found.
//! - [`lookup`]: reading the DHT: a name's records, the trusted curators' lists.
//! - [`publish`]: pack, sign, store, put, provide, announce.
//! - [`sync`]: catalogue sync, both sides.
//! - [`download`]: multi-source verified downloads of archives.
//! - [`transfer`]: upload pacing and serving limits.
//! - [`install`]: resolve, fetch, verify, extract.
//! - [`gc`]: garbage collection of the archive cache, and pins.
//! - [`serve`]: serving ranges of archives to peers (blob exchange).
//! - [`reputation`]: per-peer records and the score.
//! - [`queries`]: search, info, peers, status, bootstrap.
//! - [`api`]: the HTTP API under `/v1`.
//! - [`error`]: node errors and their HTTP mapping.

pub mod amend;
pub mod api;
pub mod catalogue;
pub mod config;
pub mod context;
pub mod data_dir;
pub mod dht_backing;
pub mod download;
pub mod error;
pub mod gc;
pub mod health;
pub mod ingest;
pub mod install;
pub mod lookup;
pub mod mirror;
pub mod names;
pub mod node;
pub mod otlp;
pub mod publish;
pub mod queries;
pub mod republish;
pub mod reputation;
pub mod serve;
pub mod supervisor;
pub mod sync;
pub mod telemetry;
pub mod transfer;
pub mod web;

pub use config::Config;
pub use context::Context;
pub use data_dir::{DataDir, RuntimeInfo};
pub use error::Error;
pub use node::Node;
