//! The `peerpack` command-line tool.
//!
//! Exit codes: 0 on success, 1 when the command failed (the reason is printed on stderr as
//! one line starting with `error:`), 2 for invalid usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod client;
mod demo;
mod install;
mod local;
mod node;
mod output;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use peerpack_api::{
    BootstrapRequest, Client, CurateEntry, CurateRequest, CuratorView, DataDir, Dialled, GcRequest,
    Info, PeerView, PeersQuery, Pin, PinRequest, PublishRequest, Search, TrustRequest,
};

/// peerpack: a peer-to-peer marketplace for code-generator template packs.
///
/// Packages are directories with a `peerpack.toml` manifest, packed into deterministic
/// archives addressed by their BLAKE3 hash and signed by the publisher's ed25519 key.
#[derive(Debug, Parser)]
#[command(
    name = "peerpack",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Directory holding the node's state: publisher key, database, search index and
    /// archives [default: the platform data directory, e.g. ~/.local/share/peerpack]
    #[arg(long, global = true, env = "PEERPACK_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// How a client command finds its node.
#[derive(Debug, clap::Args)]
struct Api {
    /// URL of the node's API [default: read from DATA_DIR/node.json]
    #[arg(long, env = "PEERPACK_API", value_name = "URL")]
    api: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the publisher's ed25519 signing key in the data directory.
    ///
    /// The key signs every package you publish; the first key to publish a name owns it.
    /// The file is written with mode 0600. An existing key is never replaced unless --force
    /// is given. (`peerpack node` creates one on first start if there is none.)
    Keygen {
        /// Replace an existing key. The old key is lost, and with it the ownership of every
        /// name it published.
        #[arg(long)]
        force: bool,
    },
    /// Validate a package directory and write its deterministic archive.
    ///
    /// Reads DIR/peerpack.toml, checks it, and writes a tar + zstd archive whose bytes depend
    /// only on the files' paths, contents and executable bits (not on mtimes, owners or the
    /// order files were created in). Prints the content id (blake3:<hex>) and size: the same
    /// content id `publish` computes for DIR.
    ///
    /// Left out: .git, .hg, .svn, .DS_Store; by default also .env, .env.*, node_modules/ and
    /// archives in DIR itself (/*.tar.zst); and whatever DIR/.peerpackignore names (gitignore
    /// syntax; a `!pattern` line takes a default back). `--list` shows what ships.
    Pack {
        /// The package directory (it must contain peerpack.toml).
        dir: PathBuf,
        /// Where to write the archive [default: ./NAME-VERSION.tar.zst].
        #[arg(long, short, value_name = "FILE", conflicts_with = "list")]
        out: Option<PathBuf>,
        /// Print what would ship (path and size of each entry) and write nothing.
        #[arg(long)]
        list: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a node in the foreground until SIGINT or SIGTERM.
    ///
    /// The node joins the network through the bootstrap peers, keeps a searchable catalogue of
    /// every package it hears of, serves its own packages, and answers the other commands over
    /// an HTTP API on 127.0.0.1. Once ready it writes DATA_DIR/node.json (peer id, addresses,
    /// API URL), which the other commands read; it removes the file on a clean exit.
    Node(NodeArgs),
    /// Publish the package in DIR: pack, sign with the node's publisher key, store, put in
    /// the DHT, provide and announce it.
    Publish {
        /// The package directory (relative to where you run this command).
        dir: PathBuf,
        /// Publish even files that look like secrets (private keys, credential files). Without
        /// it such a package is refused with the list of those files: a published version can
        /// never be withdrawn.
        #[arg(long)]
        allow_secrets: bool,
        #[command(flatten)]
        api: Api,
    },
    /// Search the node's catalogue (every package any reachable peer published).
    Search {
        /// Words to look for in names, descriptions, tags, categories and authors; every word
        /// must match. Empty lists everything (then filters decide).
        query: Vec<String>,
        /// Only packages in this category.
        #[arg(long, value_name = "C")]
        category: Option<String>,
        /// Only packages with this tag (repeatable: all must match).
        #[arg(long = "tag", value_name = "T")]
        tags: Vec<String>,
        /// Most results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Leave out packages whose known providers all have a reputation below R (0 to 1).
        #[arg(long, value_name = "R")]
        min_reputation: Option<f64>,
        #[command(flatten)]
        api: Api,
    },
    /// Show every known version of a package and its record details. Asks the DHT when the
    /// local catalogue does not know the name.
    Info {
        /// NAME or NAME@VERSION.
        package: String,
        #[command(flatten)]
        api: Api,
    },
    /// List connected and known peers with their addresses, agent, latency and reputation.
    Peers {
        /// Only peers with at least this score (0 to 1).
        #[arg(long, value_name = "R")]
        min_reputation: Option<f64>,
        #[command(flatten)]
        api: Api,
    },
    /// Show one peer in full.
    Peer {
        /// The peer id.
        peer_id: String,
        #[command(flatten)]
        api: Api,
    },
    /// List peers blocked for sending invalid data, and until when.
    ///
    /// A peer that scores below 0.15 after at least 5 invalid messages or pieces is
    /// disconnected and refused for an hour; the block survives a restart.
    Blocked {
        #[command(flatten)]
        api: Api,
    },
    /// Lift a peer's block now and forgive the invalid data it was blocked for.
    Unblock {
        /// The peer id.
        peer_id: String,
        #[command(flatten)]
        api: Api,
    },
    /// Dial more peers now. Each address must end in /p2p/<peer id>.
    Bootstrap {
        /// Addresses, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
        #[arg(required = true, value_name = "MULTIADDR")]
        addrs: Vec<String>,
        #[command(flatten)]
        api: Api,
    },
    /// Show the node's peer id, addresses, peers, catalogue size, routing table and uptime.
    Status {
        #[command(flatten)]
        api: Api,
    },
    /// Install packages and their dependencies from the peers that hold them.
    ///
    /// Resolves the highest version matching each requirement (semver; default the latest)
    /// and, recursively, the dependencies; downloads missing archives from several peers at
    /// once, checking every 1 MiB piece against the content id; checks each record's signature
    /// and name owner; and extracts each package into DIR/NAME, replacing an older install only
    /// once the new tree is complete. Writes ./peerpack.lock with the exact versions and
    /// content ids. With no NAME, installs what ./peerpack.lock says. The node then provides
    /// the archives it fetched, so popular packages spread.
    Install {
        /// NAME or NAME@REQ, e.g. rust-cli, rust-cli@^1.2, rust-cli@=1.2.0.
        #[arg(value_name = "NAME[@REQ]")]
        packages: Vec<String>,
        /// Directory to install into, each package as DIR/NAME.
        #[arg(long, value_name = "DIR", default_value = peerpack_api::DEFAULT_INSTALL_DIR)]
        to: PathBuf,
        /// Install exactly the versions and archives ./peerpack.lock names, or fail.
        #[arg(long)]
        locked: bool,
        /// Trust KEY as the owner of the one package named, as `peerpack trust NAME KEY`
        /// does, then install it: how to choose between the claimants of a contested name.
        #[arg(long, value_name = "KEY")]
        owner: Option<String>,
        /// Replace DIR/NAME even when peerpack did not install that package there (a directory
        /// of your own, or another package's install). Without --force such a path is an
        /// error and left untouched. Either way the old tree is removed only once the new one
        /// is complete and in its place.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        api: Api,
    },
    /// Pin the owner of a name: only records signed by KEY are installed under NAME here.
    ///
    /// A node decides who owns a name from what it trusts, in this order: a key pinned with
    /// `trust`; else a key that a curator named in the node's config ([trust] curators)
    /// vouches for; else the first key this node saw publish the name. Claims by other keys
    /// are kept and shown by `info`, never used. When a node with no owner yet sees several
    /// keys claim a name at once, the name is contested and nothing installs until you choose.
    /// Records of the previous owner leave the catalogue; KEY's are looked up in the DHT.
    Trust {
        /// The package name.
        name: String,
        /// The owner's publisher key, ed25519:<64 hex digits> (`peerpack info NAME` lists
        /// the claimants' keys).
        key: String,
        #[command(flatten)]
        api: Api,
    },
    /// Remove the pin on a name's owner. The current owner stays, as if first seen, unless a
    /// trusted curator names another.
    Untrust {
        /// The package name.
        name: String,
        #[command(flatten)]
        api: Api,
    },
    /// List the owners pinned with `trust`.
    Trusted {
        #[command(flatten)]
        api: Api,
    },
    /// Vouch for name owners as a curator: sign a curator list with this node's publisher
    /// key, put it in the DHT and gossip it.
    ///
    /// Nodes whose operators name this key under [trust] curators (or with `node --curator`)
    /// take its word on who owns each listed name, above what they saw first. With no
    /// arguments, shows the current list.
    Curate {
        /// NAME=KEY: vouch that KEY owns NAME (repeatable).
        #[arg(value_name = "NAME=KEY")]
        entries: Vec<String>,
        /// Drop NAME from the list (repeatable).
        #[arg(long, value_name = "NAME")]
        remove: Vec<String>,
        #[command(flatten)]
        api: Api,
    },
    /// Remove cached archives the node does not need, least recently used first.
    ///
    /// Archives this node published, archives installed in a directory that still exists,
    /// and pinned versions are always kept. Of the rest, the least recently used are removed
    /// until they fit the cache quota ([cache] quota in the node's config file, default 1 GiB).
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        api: Api,
    },
    /// Pin a package version so that `gc` keeps its archive.
    Pin {
        /// NAME (its latest known version) or NAME@VERSION.
        #[arg(value_name = "NAME[@VERSION]")]
        package: String,
        #[command(flatten)]
        api: Api,
    },
    /// Remove a pin (NAME@VERSION), or every pin of NAME.
    Unpin {
        /// NAME or NAME@VERSION.
        #[arg(value_name = "NAME[@VERSION]")]
        package: String,
        #[command(flatten)]
        api: Api,
    },
    /// List pinned package versions.
    Pins {
        #[command(flatten)]
        api: Api,
    },
    /// Start a local network of N nodes in this process, publish the example packs from
    /// different nodes, search from a node that published nothing, and report timings.
    Demo {
        /// Number of nodes (at least 2).
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Keep the network running afterwards (until Ctrl-C) and print how to reach it.
        #[arg(long)]
        keep: bool,
        /// Directory of packs to publish [default: examples/packs].
        #[arg(long, value_name = "DIR")]
        packs: Option<PathBuf>,
    },
}

/// `peerpack node` flags.
#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// Address to listen on (repeatable) [default: /ip4/0.0.0.0/tcp/0].
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// Peer to join through, with /p2p/<peer id> (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// Address for the HTTP API [default: 127.0.0.1:0, a free port]. Only loopback addresses
    /// are accepted unless --api-public is given.
    #[arg(long, value_name = "ADDR")]
    api: Option<std::net::SocketAddr>,
    /// Allow --api on a non-loopback address. Anyone who can reach it can then read the node's
    /// state; calls that change something still need the token in DATA_DIR/api-token.
    #[arg(long)]
    api_public: bool,
    /// Configuration file (TOML); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to advertise besides the listen addresses, e.g. a public address behind NAT
    /// (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    external: Vec<String>,
    /// Which addresses this node may dial: loopback-only, private or any [default:
    /// loopback-only when every listen address is loopback, else any].
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// Do not pull whole catalogues from peers (a light node).
    #[arg(long)]
    no_catalogue_sync: bool,
    /// Most bytes per second to serve to peers, all together [default: unlimited].
    #[arg(long, value_name = "BYTES")]
    upload_limit: Option<u64>,
    /// Trust this curator key (ed25519:<hex>) to decide name owners; repeatable, highest
    /// priority first, after those of the config file's [trust] curators.
    #[arg(long, value_name = "KEY")]
    curator: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let dir = || data_dir(cli.data_dir.as_deref());
    match cli.command {
        Command::Keygen { force } => local::keygen(&dir()?, force),
        Command::Pack {
            dir,
            out,
            list,
            json,
        } => {
            if list {
                local::list(&dir, json)
            } else {
                local::pack(&dir, out.as_deref(), json)
            }
        }
        Command::Node(args) => node::run(dir()?, node::args_to_config(args)?).await,
        Command::Demo { nodes, keep, packs } => demo::run(nodes, keep, packs).await,
        Command::Publish {
            dir: pkg,
            allow_secrets,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            publish(&client, &pkg, allow_secrets, api.json).await
        }
        Command::Search {
            query,
            category,
            tags,
            limit,
            min_reputation,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let q = Search {
                q: query.join(" "),
                category,
                tags: (!tags.is_empty()).then(|| tags.join(",")),
                limit: Some(limit),
                min_reputation,
            };
            let hits = client.search(&q).await?;
            print(api.json, &hits, |h| output::search(h))
        }
        Command::Info { package, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let (name, version) = match package.split_once('@') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (package.clone(), None),
            };
            let mut info: Info = client.info(&name).await?;
            if let Some(v) = version {
                info.versions.retain(|x| x.version == v);
                if info.versions.is_empty() {
                    anyhow::bail!(
                        "{name} has no version {v}; `peerpack info {name}` lists the versions"
                    );
                }
            }
            print(api.json, &info, output::info)
        }
        Command::Peers {
            min_reputation,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let peers = client.peers(&PeersQuery { min_reputation }).await?;
            print(api.json, &peers, |p| output::peers(p))
        }
        Command::Peer { peer_id, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let p = client.peer(&peer_id).await?;
            print(api.json, &p, output::peer)
        }
        Command::Blocked { api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let peers: Vec<PeerView> = client.blocked().await?;
            print(api.json, &peers, |ps| {
                if ps.is_empty() {
                    println!("no peer is blocked");
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                for p in ps {
                    println!(
                        "{}  blocked for {} more s  ({} invalid messages, {} invalid data)",
                        p.peer_id,
                        (p.blocked_until - now).max(0),
                        p.invalid_messages,
                        p.invalid_data
                    );
                }
            })
        }
        Command::Unblock { peer_id, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let v = client.unblock(&peer_id).await?;
            print(api.json, &v, |v| {
                if v.was_blocked {
                    println!("unblocked {peer_id}");
                } else {
                    println!("{peer_id} was not blocked; its record is cleared anyway");
                }
            })
        }
        Command::Bootstrap { addrs, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let dialled = client.bootstrap(&BootstrapRequest { addrs }).await?;
            print(api.json, &dialled, |ds: &Vec<Dialled>| {
                for d in ds {
                    println!("dialling {} at {}", d.peer_id, d.address);
                }
            })
        }
        Command::Status { api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let s = client.status().await?;
            print(api.json, &s, output::status)
        }
        Command::Install {
            packages,
            to,
            locked,
            owner,
            force,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            install::run(&client, packages, &to, locked, owner, force, api.json).await
        }
        Command::Trust { name, key, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let t = client.trust(&TrustRequest { name, owner: key }).await?;
            print(api.json, &t, |t| {
                println!("{} is now owned by {} on this node", t.name, t.owner);
                if t.versions_known == 0 {
                    println!("  no version signed by that key is known yet");
                } else {
                    println!("  {} version(s) known", t.versions_known);
                }
            })
        }
        Command::Untrust { name, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let v = client.untrust(&name).await?;
            print(api.json, &v, |v| {
                if v.removed {
                    println!("removed the pin on {name}");
                } else {
                    println!("{name} had no pinned owner");
                }
            })
        }
        Command::Trusted { api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let ts = client.trusted().await?;
            print(api.json, &ts, |ts| {
                if ts.is_empty() {
                    println!("no pinned owners; pin one with `peerpack trust NAME KEY`");
                }
                for t in ts {
                    println!("{}  {}", t.name, t.owner);
                }
            })
        }
        Command::Curate {
            entries,
            remove,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let view: CuratorView = if entries.is_empty() && remove.is_empty() {
                client.curator_list().await?
            } else {
                let mut add = Vec::new();
                for e in &entries {
                    let (n, k) = e.split_once('=').with_context(|| {
                        format!("{e:?}: expected NAME=KEY, e.g. rust-cli=ed25519:<hex>")
                    })?;
                    add.push(CurateEntry {
                        name: n.to_owned(),
                        owner: k.to_owned(),
                    });
                }
                client.curate(&CurateRequest { add, remove }).await?
            };
            print(api.json, &view, output::curator)
        }
        Command::Gc { dry_run, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let report = client.gc(&GcRequest { dry_run }).await?;
            print(api.json, &report, output::gc)
        }
        Command::Pin { package, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let pin = client.pin(&PinRequest { package }).await?;
            print(api.json, &pin, |p| {
                println!("pinned {}@{}", p.name, p.version)
            })
        }
        Command::Unpin { package, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let pins: Vec<Pin> = client.unpin(&package).await?;
            print(api.json, &pins, |ps| {
                for p in ps {
                    println!("unpinned {}@{}", p.name, p.version);
                }
            })
        }
        Command::Pins { api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let pins = client.pins().await?;
            print(api.json, &pins, |ps| {
                if ps.is_empty() {
                    println!("no pins");
                }
                for p in ps {
                    println!("{}@{}", p.name, p.version);
                }
            })
        }
    }
}

/// Print `value` as JSON or with `human`.
fn print<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        human(value);
    }
    Ok(())
}

async fn publish(client: &Client, pkg: &Path, allow_secrets: bool, json: bool) -> Result<()> {
    let path = client::absolute(pkg)?;
    let p = client
        .publish(&PublishRequest {
            path,
            allow_secrets,
        })
        .await?;
    if json {
        // As a JSON value: keys in the order this command has always printed them.
        println!("{}", serde_json::to_value(&p)?);
        return Ok(());
    }
    let verb = if p.republished {
        "re-announced"
    } else {
        "published"
    };
    println!("{verb} {} {}", p.name, p.version);
    println!("  content id  {}", p.content_id);
    println!("  size        {} bytes", p.size);
    println!(
        "  announced to {} peer(s); stored on {} DHT peer(s)",
        p.announced_to, p.dht_peers
    );
    Ok(())
}

fn data_dir(explicit: Option<&Path>) -> Result<DataDir> {
    Ok(DataDir::resolve(explicit)?)
}
