//! The peerpack daemon: wires the store and the network together.
//!
//! So far this crate knows where a node keeps its state; the daemon, its services and the
//! HTTP API build on it.
//!
//! # Layout
//! - [`data_dir`]: the data directory: where it is by default and what lives inside it.

pub mod data_dir;

pub use data_dir::DataDir;
