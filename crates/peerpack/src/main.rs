//! The `peerpack` command-line tool.
//!
//! Exit codes (see [`exit`]): 0 on success; 2 for invalid usage; 3 to 7 when the node refused
//! or could not be reached, by kind; 130 for a cancelled install; 1 for any other failure. The
//! reason is printed on stderr as one line starting with `error:`, and with `--json` also on
//! stdout as `{"error": {"code", "message"}}`.

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
use args::{Cli, Command, DhtAction, KeyAction, NodeArgs};
use clap::Parser;
use peerpack_api::{
    BootstrapRequest, Client, CurateEntry, CurateRequest, CuratorView, DataDir, DeprecateRequest,
    Dialled, GcRequest, Info, MirrorRequest, PeerView, PeersQuery, Pin, PinRequest, PublishRequest,
    Search, TrustRequest, YankRequest,
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
    let (json, verbose) = (cli.json, cli.verbose);
    if verbose > 0 && !matches!(cli.command, Command::Node(_)) {
        client_log(verbose);
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (status, code) = exit::classify(&err);
            let message = format!("{err:#}");
            if verbose > 0 {
                // Every cause on a line of its own, outermost first, and how it is classed.
                let mut stderr = std::io::stderr().lock();
                for (i, cause) in err.chain().enumerate() {
                    let _ = if i == 0 {
                        writeln!(stderr, "error: {cause}")
                    } else {
                        writeln!(stderr, "  caused by: {cause}")
                    };
                }
                let _ = writeln!(stderr, "  exit status {status} ({code})");
            }
            // With --json a script reads the error where it reads results; a person still
            // sees the line on stderr.
            // `verify` printed its report, which says what drifted: that is the answer.
            let reported = err.downcast_ref::<install::Drifted>().is_some();
            if json && !reported {
                let value = serde_json::json!({ "error": { "code": code, "message": message } });
                let _ = writeln!(std::io::stdout(), "{value}");
            }
            if verbose == 0 {
                let _ = writeln!(std::io::stderr(), "error: {message}");
            }
            ExitCode::from(status)
        }
    }
}

/// The log of a client command under `-v`: each request to the node and its answer on
/// stderr; `-vv` adds the HTTP client's own events.
fn client_log(verbose: u8) {
    use std::io::IsTerminal;
    let filter = if verbose > 1 {
        "peerpack=debug,peerpack_api=debug,reqwest=debug,hyper_util=debug"
    } else {
        "peerpack=debug,peerpack_api=debug"
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<()> {
    let dir = || data_dir(cli.data_dir.as_deref());
    let (api, json) = (cli.api.clone(), cli.json);
    match cli.command {
        Command::Keygen {
            force,
            abandon_names,
        } => local::keygen(&dir()?, force, abandon_names),
        Command::Key { action } => match action {
            KeyAction::Export { file } => local::key_export(&dir()?, &file),
            KeyAction::Import(a) => local::key_import(&dir()?, &a.file, a.force, a.abandon_names),
            KeyAction::Show => local::whoami(&dir()?, json),
        },
        Command::ExportKey { file } => local::key_export(&dir()?, &file),
        Command::ImportKey(a) => local::key_import(&dir()?, &a.file, a.force, a.abandon_names),
        Command::Whoami => local::whoami(&dir()?, json),
        Command::Init {
            dir,
            name,
            description,
            license,
            author,
        } => local::init(&dir, name, description, license, author),
        Command::Pack { dir, out, list } => {
            if list {
                local::list(&dir, json)
            } else {
                local::pack(&dir, out.as_deref(), json)
            }
        }
        Command::Node(args) => {
            if api.is_some() {
                anyhow::bail!(
                    "--api is the URL client commands use to reach a node; `peerpack node` takes --api-listen ADDR for the address its API listens on"
                );
            }
            let mut args = args;
            // -v means a debug log of peerpack's own crates, unless a level is given.
            if cli.verbose > 0 && args.log_level.is_none() {
                args.log_level = Some(
                    if cli.verbose > 1 {
                        "debug"
                    } else {
                        "info,peerpack=debug,peerpack_node=debug,peerpack_net=debug,peerpack_store=debug"
                    }
                    .to_owned(),
                );
            }
            node::run(dir()?, args).await
        }
        Command::Config(args) => {
            let config = node::resolve(&dir()?, node::args_to_config(args)?, false)?;
            let rows = config.describe();
            if json {
                let map: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|(k, v, o)| {
                        (
                            (*k).to_owned(),
                            serde_json::json!({ "value": v, "source": o }),
                        )
                    })
                    .collect();
                println!("{}", serde_json::Value::Object(map));
            } else {
                let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
                for (k, v, o) in rows {
                    println!("{k:width$} = {v}  # {o}");
                }
            }
            Ok(())
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "peerpack", &mut out);
            write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .context("cannot render the man page")?;
            write_stdout(&out)
        }
        Command::Demo { nodes, keep, packs } => demo::run(nodes, keep, packs).await,
        Command::Publish {
            dir: pkg,
            allow_secrets,
            allow_unresolved,
            wait_replicas,
            wait_timeout,
            wait_dht,
        } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let request = PublishRequest {
                path: client::absolute(&pkg)?,
                allow_secrets,
                allow_unresolved,
                wait_replicas,
                wait_timeout_s: Some(wait_timeout),
                wait_dht,
            };
            publish(&client, request, json).await
        }
        Command::Search {
            query,
            category,
            tags,
            limit,
            min_reputation,
        } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let q = Search {
                q: query.join(" "),
                category,
                tags: (!tags.is_empty()).then(|| tags.join(",")),
                limit: Some(usize::from(limit)),
                min_reputation,
            };
            let hits = client.search(&q).await?;
            print(json, &hits, |h| output::search(h))
        }
        Command::Info { package } => {
            let client = client::find(api.as_deref(), &dir()?)?;
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
            print(json, &info, output::info)
        }
        Command::Peers { min_reputation } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let peers = client.peers(&PeersQuery { min_reputation }).await?;
            print(json, &peers, |p| output::peers(p))
        }
        Command::Peer { peer_id } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let p = client.peer(&peer_id).await?;
            print(json, &p, output::peer)
        }
        Command::Dht { action } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            match action {
                DhtAction::Providers { content_id, first } => {
                    let p = client
                        .dht_providers(&content_id, &peerpack_api::DhtProvidersQuery { first })
                        .await?;
                    print(json, &p, output::dht_providers)
                }
                DhtAction::Name { name } => {
                    let n = client.dht_name(&name).await?;
                    print(json, &n, output::dht_name)
                }
            }
        }
        Command::Blocked => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let peers: Vec<PeerView> = client.blocked().await?;
            print(json, &peers, |ps| {
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
        Command::Unblock { peer_id } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let v = client.unblock(&peer_id).await?;
            print(json, &v, |v| {
                if v.was_blocked {
                    println!("unblocked {peer_id}");
                } else {
                    println!("{peer_id} was not blocked; its record is cleared anyway");
                }
            })
        }
        Command::Bootstrap { addrs } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let dialled = client.bootstrap(&BootstrapRequest { addrs }).await?;
            print(json, &dialled, |ds: &Vec<Dialled>| {
                for d in ds {
                    match &d.error {
                        None => println!("connected to {} at {}", d.peer_id, d.address),
                        Some(e) => println!("could not connect to {}: {e}", d.address),
                    }
                }
            })?;
            if dialled.iter().any(|d| d.connected) {
                Ok(())
            } else {
                Err(exit::unreachable(
                    "no address answered; check that the node there runs and that the address is its current one".into(),
                ))
            }
        }
        Command::Status => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let s = client.status().await?;
            print(json, &s, output::status)
        }
        Command::Ui { print: only_print } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let link = client.ui_link().await?;
            if json {
                return print(json, &link, |_| {});
            }
            if !only_print && open_link(dir()?.root(), &link.url) {
                println!(
                    "opened the web page signed in as operator (if no browser came up, run `peerpack ui --print`)"
                );
            } else {
                println!(
                    "open this link within {} s to sign in as operator (it works once):\n{}",
                    link.expires_in_s, link.url
                );
            }
            Ok(())
        }
        Command::Install {
            packages,
            to,
            locked,
            owner,
            force,
            repair,
            dry_run,
        } => {
            let client = client::find(api.as_deref(), &dir()?)?;
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
            install::run(&client, ask, json).await
        }
        Command::Update { packages, dry_run } => {
            let client = client::find(api.as_deref(), &dir()?)?;
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
            install::run(&client, ask, json).await
        }
        Command::Outdated => {
            let client = client::find(api.as_deref(), &dir()?)?;
            install::outdated(&client, json).await
        }
        Command::Remove { packages } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            install::remove(&client, packages, json).await
        }
        Command::List => install::list(json),
        Command::Verify { packages } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            install::verify(&client, packages, json).await
        }
        Command::Yank {
            package,
            reason,
            undo,
        } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let a = client
                .yank(&YankRequest {
                    package: package.clone(),
                    reason,
                    undo,
                })
                .await?;
            let (verb, unchanged) = if undo {
                ("took back the yank of", "not yanked")
            } else {
                ("yanked", "yanked")
            };
            let nothing = format!("{package} was already {unchanged}");
            print(json, &a, |a| output::amended(a, verb, &nothing))
        }
        Command::Deprecate {
            package,
            message,
            undo,
        } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let a = client
                .deprecate(&DeprecateRequest {
                    package: package.clone(),
                    message: if undo { None } else { message },
                })
                .await?;
            let verb = if undo {
                "took back the deprecation of"
            } else {
                "deprecated"
            };
            let nothing = format!("nothing changed for {package}");
            print(json, &a, |a| output::amended(a, verb, &nothing))
        }
        Command::Trust { name, key } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let t = client.trust(&TrustRequest { name, owner: key }).await?;
            print(json, &t, |t| {
                println!("{} is now owned by {} on this node", t.name, t.owner);
                if t.versions_known == 0 {
                    println!("  no version signed by that key is known yet");
                } else {
                    println!("  {} version(s) known", t.versions_known);
                }
            })
        }
        Command::Untrust { name } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let v = client.untrust(&name).await?;
            print(json, &v, |v| {
                if v.removed {
                    println!("removed the pin on {name}");
                } else {
                    println!("{name} had no pinned owner");
                }
            })
        }
        Command::Trusted => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let ts = client.trusted().await?;
            print(json, &ts, |ts| {
                if ts.is_empty() {
                    println!("no pinned owners; pin one with `peerpack trust NAME KEY`");
                }
                for t in ts {
                    println!("{}  {}", t.name, t.owner);
                }
            })
        }
        Command::Curate { entries, remove } => {
            let client = client::find(api.as_deref(), &dir()?)?;
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
            print(json, &view, output::curator)
        }
        Command::Gc { dry_run } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let report = client.gc(&GcRequest { dry_run }).await?;
            print(json, &report, output::gc)
        }
        Command::Pin { package } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let pins: Vec<Pin> = client.pin(&PinRequest { package }).await?;
            print(json, &pins, |ps| {
                for p in ps {
                    println!("pinned {}@{}; its archive is here", p.name, p.version);
                }
            })
        }
        Command::Unpin { package } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let pins: Vec<Pin> = client.unpin(&package).await?;
            print(json, &pins, |ps| {
                for p in ps {
                    println!("unpinned {}@{}", p.name, p.version);
                }
            })
        }
        Command::Mirror { name, owner } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let report = client.mirror(&MirrorRequest { name, owner }).await?;
            print(json, &report, output::mirror)
        }
        Command::Unmirror { rule } => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let v = client.unmirror(&rule).await?;
            print(json, &v, |_| println!("no longer mirroring {rule}"))
        }
        Command::Mirrors => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let rules = client.mirrors().await?;
            print(json, &rules, |rs| {
                if rs.is_empty() {
                    println!("nothing is mirrored; `peerpack mirror NAME` keeps a package here");
                }
                for r in rs {
                    match (&r.name, &r.owner) {
                        (Some(n), _) => println!("{n}"),
                        (_, Some(k)) => println!("every package of {k}"),
                        _ => {}
                    }
                }
            })
        }
        Command::Pins => {
            let client = client::find(api.as_deref(), &dir()?)?;
            let pins = client.pins().await?;
            print(json, &pins, |ps| {
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

/// Write generated text to stdout; a reader that stopped early (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// Open the one-time sign-in `url` in the desktop's default browser, without putting it on a
/// command line (where other local users could read it in the process list and use it first):
/// the browser opens `DATA_DIR/ui-login.html`, readable by this user only, which forwards to
/// it. Whether a browser opener ran and succeeded.
fn open_link(data_dir: &std::path::Path, url: &str) -> bool {
    use std::io::Write as _;
    // The link comes from the node the CLI talks to: written into a page, it must be a plain
    // loopback http URL, nothing that could close the attribute.
    let plain = url.starts_with("http://127.") || url.starts_with("http://localhost:");
    if !plain
        || !url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/:.?=_-".contains(&b))
    {
        return false;
    }
    let page = data_dir.join("ui-login.html");
    let html = format!(
        "<!DOCTYPE html>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0;url={url}\">\n<title>peerpack</title>\n<p>Signing in to <a href=\"{url}\">the node's web page</a>…</p>\n"
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ui-login");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let written = builder.tempfile_in(data_dir).and_then(|mut tmp| {
        tmp.write_all(html.as_bytes())?;
        tmp.persist(&page).map_err(|e| e.error)?;
        Ok(())
    });
    written.is_ok() && open_browser(&page.to_string_lossy())
}

/// Open `target` (a file) with the desktop's default program; whether it ran and succeeded.
fn open_browser(target: &str) -> bool {
    let opener: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        &["explorer"]
    } else {
        &["xdg-open"]
    };
    std::process::Command::new(opener[0])
        .args(&opener[1..])
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
    if p.announced_to == 0 && p.dht_peers.unwrap_or(0) == 0 {
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
    println!("  size        {} bytes", p.archive_size);
    match p.dht_peers {
        Some(n) => println!(
            "  announced to {} peer(s); stored on {n} DHT peer(s)",
            p.announced_to
        ),
        None => println!(
            "  announced to {} peer(s); DHT records being written in the background",
            p.announced_to
        ),
    }
    if let Some(n) = p.replicas {
        println!("  provided by {n} other peer(s)");
    }
    Ok(())
}

fn data_dir(explicit: Option<&Path>) -> Result<DataDir> {
    Ok(DataDir::resolve(explicit)?)
}
