//! The `peerpack` command-line tool.
//!
//! Exit codes (see [`exit`]): 0 on success; 2 for invalid usage; 3 to 7 when the node refused
//! or could not be reached, by kind; 1 for any other failure. The reason is printed on stderr
//! as one line starting with `error:`, or with `--json` as `{"error": {"code", "message"}}`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

mod args;
mod client;
mod demo;
mod exit;
mod install;
mod local;
mod node;
mod output;

use anyhow::{Context, Result};
use args::{Cli, Command, KeyAction, NodeArgs};
use clap::Parser;
use peerpack_api::{
    BootstrapRequest, Client, CurateEntry, CurateRequest, CuratorView, DataDir, DeprecateRequest,
    Dialled, GcRequest, Info, PeerView, PeersQuery, Pin, PinRequest, PublishRequest, Search,
    TrustRequest, YankRequest,
};

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
    let json = cli.command.json();
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (status, code) = exit::classify(&err);
            let message = format!("{err:#}");
            let line = if json {
                serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
            } else {
                format!("error: {message}")
            };
            let _ = writeln!(std::io::stderr(), "{line}");
            ExitCode::from(status)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let dir = || data_dir(cli.data_dir.as_deref());
    match cli.command {
        Command::Keygen {
            force,
            abandon_names,
        } => local::keygen(&dir()?, force, abandon_names),
        Command::Key { action } => match action {
            KeyAction::Export { file } => local::key_export(&dir()?, &file),
            KeyAction::Import {
                file,
                force,
                abandon_names,
            } => local::key_import(&dir()?, &file, force, abandon_names),
            KeyAction::Show { json } => local::whoami(&dir()?, json),
        },
        Command::Whoami { json } => local::whoami(&dir()?, json),
        Command::Init {
            dir,
            name,
            description,
            license,
            author,
        } => local::init(&dir, name, description, license, author),
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
            allow_unresolved,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let request = PublishRequest {
                path: client::absolute(&pkg)?,
                allow_secrets,
                allow_unresolved,
            };
            publish(&client, request, api.json).await
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
                limit: Some(usize::from(limit)),
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
                // An exact version is itself; anything else is a semver requirement.
                let exact = peerpack_core::Version::parse(&v).ok();
                let req = match exact {
                    Some(_) => None,
                    None => Some(peerpack_core::VersionReq::parse(&v).map_err(|e| {
                        anyhow::anyhow!("{v:?} is not a version or a version requirement ({e}); try {name}@1.2.0 or {name}@^1.2")
                    })?),
                };
                info.versions.retain(|x| {
                    peerpack_core::Version::parse(&x.version).is_ok_and(|x| {
                        exact.as_ref() == Some(&x) || req.as_ref().is_some_and(|r| r.matches(&x))
                    })
                });
                if info.versions.is_empty() {
                    return Err(exit::not_found(format!(
                        "{name} has no version {v}; `peerpack info {name}` lists the versions"
                    )));
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
            repair,
            dry_run,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let ask = install::Ask {
                packages,
                to,
                locked,
                owner,
                force,
                repair,
                update: false,
                dry_run,
            };
            install::run(&client, ask, api.json).await
        }
        Command::Update {
            packages,
            dry_run,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let ask = install::Ask {
                packages,
                to: None,
                locked: false,
                owner: None,
                force: false,
                repair: false,
                update: true,
                dry_run,
            };
            install::run(&client, ask, api.json).await
        }
        Command::Outdated { api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            install::outdated(&client, api.json).await
        }
        Command::Remove { packages, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            install::remove(&client, packages, api.json).await
        }
        Command::List { json } => install::list(json),
        Command::Verify { packages, api } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            install::verify(&client, packages, api.json).await
        }
        Command::Yank {
            package,
            reason,
            undo,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let a = client
                .yank(&YankRequest {
                    package: package.clone(),
                    reason,
                    undo,
                })
                .await?;
            print(api.json, &a, |a| {
                let verb = if undo {
                    "took back the yank of"
                } else {
                    "yanked"
                };
                if a.versions.is_empty() {
                    println!(
                        "{package} was already {}",
                        if undo { "not yanked" } else { "yanked" }
                    );
                } else {
                    println!(
                        "{verb} {} {} (index seq {}, announced to {} peer(s))",
                        a.name,
                        a.versions.join(", "),
                        a.index_seq,
                        a.announced_to
                    );
                }
            })
        }
        Command::Deprecate {
            package,
            message,
            undo,
            api,
        } => {
            let client = client::find(api.api.as_deref(), &dir()?)?;
            let a = client
                .deprecate(&DeprecateRequest {
                    package: package.clone(),
                    message: if undo { None } else { message },
                })
                .await?;
            print(api.json, &a, |a| {
                if a.versions.is_empty() {
                    println!("nothing changed for {package}");
                } else {
                    let verb = if undo {
                        "took back the deprecation of"
                    } else {
                        "deprecated"
                    };
                    println!(
                        "{verb} {} {} (index seq {}, announced to {} peer(s))",
                        a.name,
                        a.versions.join(", "),
                        a.index_seq,
                        a.announced_to
                    );
                }
            })
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

async fn publish(client: &Client, request: PublishRequest, json: bool) -> Result<()> {
    let p = client.publish(&request).await?;
    if json {
        // As a JSON value: keys in the order this command has always printed them.
        println!("{}", serde_json::to_value(&p)?);
        return Ok(());
    }
    if p.announced_to == 0 && p.dht_peers == 0 {
        eprintln!(
            "warning: no peer received it: it is stored on this node only, and reaches others when they connect and sync; `peerpack peers` shows who is connected"
        );
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
