//! The command line: every command, flag and argument, whose doc comments are the `--help`
//! text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// peerpack: a peer-to-peer marketplace for code-generator template packs.
///
/// Packages are directories with a `peerpack.toml` manifest, packed into deterministic
/// archives addressed by their BLAKE3 hash and signed by the publisher's ed25519 key.
#[derive(Debug, Parser)]
#[command(
    name = "peerpack",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit status:\n  0    success\n  1    failed: a local error, a fault in the node, or `verify` found drift\n  2    invalid usage\n  3    bad request: the node refused the input\n  4    not found: no such package, version, peer or pin\n  5    conflict or refused: another key's name, a changed version, an unsafe archive\n  6    unreachable or unavailable: no node answers, or the network could not do it now\n  7    unauthorized or forbidden: the node takes no orders from this caller\n  130  cancelled (Ctrl-C during an install)\nWith --json a failure is {\"error\": {\"code\", \"message\"}} on stdout. Every command: docs/CLI.md."
)]
pub(crate) struct Cli {
    /// Directory holding the node's state: publisher key, database, search index and
    /// archives [default: the platform data directory, e.g. ~/.local/share/peerpack]
    #[arg(long, global = true, env = "PEERPACK_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// URL of the node's API, for the commands that talk to a node [default: read from
    /// DATA_DIR/node.json]
    #[arg(long, global = true, env = "PEERPACK_API", value_name = "URL")]
    pub(crate) api: Option<String>,

    /// Print JSON instead of text. A failure is then `{"error": {"code", "message"}}` on
    /// stdout, and a line of text on stderr.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Say what went on, on stderr: each request to the node with its answer and time, and
    /// every cause of a failure on its own line. -vv adds the HTTP client's own log. For
    /// `peerpack node`, -v logs peerpack's own crates at debug and -vv everything at debug,
    /// unless --log-level is given (like any flag, it wins over the config file).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start a package: write a commented DIR/peerpack.toml.
    ///
    /// The name defaults to the directory's name, lower-cased with other characters turned
    /// into `-`; the author to git's user.name and user.email. An existing peerpack.toml is
    /// never replaced. Then add the template's files, check what ships with
    /// `peerpack pack DIR --list`, and publish with `peerpack publish DIR`.
    #[command(
        after_help = "Example:\n  peerpack init my-template --description \"An axum service with CI\""
    )]
    Init {
        /// The package directory, created if missing.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The package name ([a-z0-9][a-z0-9-]{0,63}).
        #[arg(long)]
        name: Option<String>,
        /// One line about the template.
        #[arg(long)]
        description: Option<String>,
        /// An SPDX license expression.
        #[arg(long, default_value = "MIT")]
        license: String,
        /// "Name <email>" [default: from git config, else $USER].
        #[arg(long)]
        author: Option<String>,
    },
    /// Create the publisher's ed25519 signing key in the data directory.
    ///
    /// The key signs every package you publish; the first key to publish a name owns it.
    /// The file is written with mode 0600. An existing key is never replaced unless --force
    /// is given. (`peerpack node` creates one on first start if there is none.)
    #[command(after_help = "Example:\n  peerpack keygen")]
    Keygen {
        /// Replace an existing key. The old key is kept beside it as
        /// publisher.key.replaced-TIME, but names it published stay its own: a new key cannot
        /// publish them. Refused while a node runs with this data directory.
        #[arg(long)]
        force: bool,
        /// With --force: replace a key that owns names (they are listed otherwise). Export the
        /// old key first with `peerpack key export`.
        #[arg(long, requires = "force")]
        abandon_names: bool,
    },
    /// Export or import the publisher key.
    ///
    /// The publisher key is the only proof that you own your names: keep a copy offline, and
    /// use `key import` to publish from another machine (a CI runner, a new laptop).
    #[command(
        after_help = "Examples:\n  peerpack key export ~/safe/peerpack-publisher.key\n  peerpack key import ~/safe/peerpack-publisher.key"
    )]
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Back up the publisher secret key: the same as `key export FILE`.
    #[command(
        name = "export-key",
        after_help = "Example:\n  peerpack export-key ~/safe/peerpack-publisher.key"
    )]
    ExportKey {
        /// Where to write it (mode 0600, never over an existing file), or `-` for stdout.
        file: PathBuf,
    },
    /// Restore a publisher key from a backup: the same as `key import FILE`. A node started
    /// on a fresh data directory with it publishes on top of the index sequence the network
    /// holds for its names.
    #[command(
        name = "import-key",
        after_help = "Example:\n  peerpack --data-dir /srv/peerpack import-key ~/safe/peerpack-publisher.key"
    )]
    ImportKey(ImportKeyArgs),
    /// Show the publisher key in the data directory: the key that signs what this data
    /// directory's node publishes, and that owns the names it published first.
    #[command(after_help = "Example:\n  peerpack whoami --json")]
    Whoami,
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
    #[command(
        after_help = "Examples:\n  peerpack pack . --list\n  peerpack pack my-template --out /tmp/my-template.tar.zst"
    )]
    Pack {
        /// The package directory (it must contain peerpack.toml).
        dir: PathBuf,
        /// Where to write the archive [default: ./NAME-VERSION.tar.zst].
        #[arg(long, short, value_name = "FILE", conflicts_with = "list")]
        out: Option<PathBuf>,
        /// Print what would ship (path and size of each entry) and write nothing.
        #[arg(long)]
        list: bool,
    },
    /// Run a node in the foreground until SIGINT or SIGTERM.
    ///
    /// The node joins the network through the bootstrap peers, keeps a searchable catalogue of
    /// every package it hears of, serves its own packages, and answers the other commands over
    /// an HTTP API on 127.0.0.1. Once ready it writes DATA_DIR/node.json (peer id, addresses,
    /// API URL), which the other commands read; it removes the file on a clean exit.
    #[command(
        after_help = "Example:\n  peerpack node --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..."
    )]
    Node(NodeArgs),
    /// Show the configuration `peerpack node` would start with, and where each value comes
    /// from.
    ///
    /// Layers, lowest first: built-in defaults; the config file (--config FILE, else
    /// DATA_DIR/config.toml when it exists); environment variables PEERPACK_<SECTION>_<KEY>
    /// (for example PEERPACK_CACHE_QUOTA=5000000, lists comma-separated); the flags given here,
    /// which are those of `peerpack node`. Bootstrap peers, external addresses and curators add
    /// up across layers; every other setting takes the highest layer's value. Nothing is
    /// written and no node is needed. docs/CONFIG.md lists every key.
    #[command(
        after_help = "Examples:\n  peerpack config\n  PEERPACK_CACHE_QUOTA=5000000 peerpack config --upload-limit 1000000\n  peerpack config --json"
    )]
    Config(NodeArgs),
    /// Publish the package in DIR: pack, sign with the node's publisher key, store, put in
    /// the DHT, provide and announce it.
    #[command(
        after_help = "Examples:\n  peerpack publish ./my-template\n  peerpack publish . --wait-replicas 1   (in CI, with a mirror running)"
    )]
    Publish {
        /// The package directory (relative to where you run this command).
        dir: PathBuf,
        /// Publish even files that look like secrets (private keys, credential files). Without
        /// it such a package is refused with the list of those files: a published version can
        /// never be withdrawn.
        #[arg(long)]
        allow_secrets: bool,
        /// Publish even when a dependency cannot be resolved on this node (an unknown name, or
        /// no version that satisfies the requirement). Without it such a package is refused:
        /// a published version can never change.
        #[arg(long)]
        allow_unresolved: bool,
        /// Return only once N other peers provide the archive (a mirror, or peers that
        /// installed it): how a short-lived publisher, such as a CI job, hands its package to
        /// the network before it exits.
        #[arg(long, value_name = "N", default_value_t = 0)]
        wait_replicas: u32,
        /// How long --wait-replicas waits, in seconds; then the command fails (exit 6) and
        /// the package stays published.
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 300,
            requires = "wait_replicas"
        )]
        wait_timeout: u64,
        /// Return only once the package's DHT records are written, and say on how many peers.
        /// Without it the command returns as soon as the package is stored and announced
        /// (which is what makes it searchable), and the node writes the DHT records in the
        /// background.
        #[arg(long)]
        wait_dht: bool,
    },
    /// Search the node's catalogue (every package any reachable peer published).
    #[command(
        after_help = "Examples:\n  peerpack search axum\n  peerpack search --category web --tag rust --limit 5"
    )]
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
        /// Most results (1 to 1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Leave out packages whose known providers all have a reputation below R (0 to 1).
        #[arg(long, value_name = "R", value_parser = score)]
        min_reputation: Option<f64>,
    },
    /// Show every known version of a package and its record details. Asks the DHT when the
    /// local catalogue does not know the name.
    #[command(after_help = "Example:\n  peerpack info rust-cli@^1.2")]
    Info {
        /// NAME, NAME@VERSION, or NAME@REQ (a semver requirement such as ^1.2: the versions
        /// that match).
        package: String,
    },
    /// List connected and known peers with their addresses, agent, latency and reputation.
    #[command(after_help = "Example:\n  peerpack peers --min-reputation 0.5")]
    Peers {
        /// Only peers with at least this score (0 to 1).
        #[arg(long, value_name = "R", value_parser = score)]
        min_reputation: Option<f64>,
    },
    /// Show one peer in full.
    #[command(
        after_help = "Example:\n  peerpack peer 12D3KooWRmMv1pAAvaGLy4Sayd43NCzid6ErcRLSD6T2owYouyuN"
    )]
    Peer {
        /// The peer id.
        peer_id: String,
    },
    /// Ask the DHT directly: who provides an archive, or which keys claim a name.
    ///
    /// Each query runs afresh from the running node, whatever its catalogue knows, stores
    /// nothing, and says how long it took. Use it to see why an install finds no provider, or
    /// who else claims a name.
    #[command(
        after_help = "Examples:\n  peerpack dht providers blake3:4f1c…\n  peerpack dht name rust-cli"
    )]
    Dht {
        #[command(subcommand)]
        action: DhtAction,
    },
    /// List peers blocked for sending invalid data, and until when.
    ///
    /// A peer that scores below 0.15 after at least 5 invalid messages or pieces is
    /// disconnected and refused for an hour; the block survives a restart.
    #[command(after_help = "Example:\n  peerpack blocked --json")]
    Blocked,
    /// Lift a peer's block now and forgive the invalid data it was blocked for.
    #[command(
        after_help = "Example:\n  peerpack unblock 12D3KooWRmMv1pAAvaGLy4Sayd43NCzid6ErcRLSD6T2owYouyuN"
    )]
    Unblock {
        /// The peer id.
        peer_id: String,
    },
    /// Dial more peers now. Each address must end in /p2p/<peer id>.
    #[command(
        after_help = "Example:\n  peerpack bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."
    )]
    Bootstrap {
        /// Addresses, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
        #[arg(required = true, value_name = "MULTIADDR")]
        addrs: Vec<String>,
    },
    /// Show the node's peer id, addresses, peers, catalogue size, routing table and uptime.
    #[command(after_help = "Example:\n  peerpack status --json")]
    Status,
    /// Open the node's web page signed in as its operator, to install and pin from it.
    ///
    /// Asks the running node for a one-time sign-in link (good for 2 minutes, usable once) and
    /// opens it in the default browser, or prints it with --print. Following the link keeps a
    /// session in that browser for the node's page only; the page then shows Install and Pin
    /// on each package. A page opened without it is read-only. Sessions end when the node
    /// restarts or on "Sign out". See docs/WEB.md.
    #[command(after_help = "Examples:\n  peerpack ui\n  peerpack ui --print")]
    Ui {
        /// Print the link instead of opening a browser.
        #[arg(long)]
        print: bool,
    },
    /// Install packages and their dependencies from the peers that hold them.
    ///
    /// Resolves the highest version matching each requirement (semver; default the latest)
    /// and, recursively, the dependencies; downloads missing archives from several peers at
    /// once, checking every 1 MiB piece against the content id; checks each record's signature
    /// and name owner; and extracts each package into DIR/NAME, replacing an older install only
    /// once the new tree is complete. The node then provides the archives it fetched, so
    /// popular packages spread. It also keeps each archive unpacked, so installing the same
    /// version again (here or in another project) copies or clones the files from there, or
    /// hard-links them read-only: `install.link` in the node's config (docs/CONFIG.md).
    ///
    /// ./peerpack.lock records the packages asked for (its roots), the install directory and
    /// the exact version and content id of every package. A version the lock holds never moves
    /// unless `peerpack update` is asked, or a requirement on the command line excludes it;
    /// each move is printed as "updated NAME A → B". With no NAME, installs exactly what
    /// ./peerpack.lock says.
    #[command(
        after_help = "Examples:\n  peerpack install rust-cli@^1.2\n  peerpack install --to vendor rust-cli ci-workflow\n  peerpack install --locked        (in CI: exactly the lock, or fail)\n  peerpack install --repair        (restore trees `verify` finds changed)"
    )]
    Install {
        /// NAME or NAME@REQ, e.g. rust-cli, rust-cli@^1.2, rust-cli@=1.2.0.
        #[arg(value_name = "NAME[@REQ]")]
        packages: Vec<String>,
        /// Directory to install into, each package as DIR/NAME [default: the lock's, else
        /// peerpack_packages]. Recorded in ./peerpack.lock.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
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
        /// Check every installed tree against its archive, and restore those that changed.
        #[arg(long)]
        repair: bool,
        /// Show what would change in the lock, and install nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move locked packages to the highest versions their requirements allow.
    ///
    /// With no NAME, every package in ./peerpack.lock may move; with names, only those (their
    /// dependencies stay unless they must move). Prints each change as "updated NAME A → B"
    /// and rewrites the lock.
    #[command(after_help = "Examples:\n  peerpack update\n  peerpack update ci-workflow --dry-run")]
    Update {
        /// Names of locked packages to update [default: all].
        #[arg(value_name = "NAME")]
        packages: Vec<String>,
        /// Show what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List locked packages for which a newer version is known: the version locked, the
    /// one `update` would pick (wanted) and the latest release.
    #[command(after_help = "Example:\n  peerpack outdated")]
    Outdated,
    /// Remove packages asked for by name from ./peerpack.lock, and delete from the install
    /// directory every tree no remaining package needs.
    ///
    /// Only trees peerpack installed are deleted; anything else at their path is left alone
    /// and named.
    #[command(after_help = "Example:\n  peerpack remove rust-cli")]
    Remove {
        /// Names to remove (each a root of the lock, not only a dependency).
        #[arg(required = true, value_name = "NAME")]
        packages: Vec<String>,
    },
    /// List the packages in ./peerpack.lock: version, whether asked for by name, and whether
    /// its tree is in the install directory. Needs no node.
    #[command(after_help = "Example:\n  peerpack list --json")]
    List,
    /// Check installed trees against their archives: every file's bytes and executable bit,
    /// missing and added files. Exits 1 when anything drifted; `peerpack install --repair`
    /// restores it.
    #[command(after_help = "Example:\n  peerpack verify")]
    Verify {
        /// Only these names [default: every locked package].
        #[arg(value_name = "NAME")]
        packages: Vec<String>,
    },
    /// Yank a version you published: installs skip it from now on, unless a lock file names
    /// it (so projects that locked it keep building). The archive stays available.
    ///
    /// The yank is part of the name's index record, signed with this node's key, put in the
    /// DHT and gossiped. Only the name's owner can yank.
    #[command(
        after_help = "Examples:\n  peerpack yank rust-cli@1.2.0 --reason \"ships a broken workflow\"\n  peerpack yank rust-cli@1.2.0 --undo"
    )]
    Yank {
        /// NAME@VERSION: one exact version.
        #[arg(value_name = "NAME@VERSION")]
        package: String,
        /// Why, shown by `info` (at most 512 characters).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Take the yank back.
        #[arg(long, conflicts_with = "reason")]
        undo: bool,
    },
    /// Deprecate versions you published, with a message that `info` shows and `install`
    /// prints as a warning. They still install.
    #[command(
        after_help = "Examples:\n  peerpack deprecate rust-cli \"use axum-service instead\"\n  peerpack deprecate rust-cli@<1.2 \"1.1 and older miss the CI cache\"\n  peerpack deprecate rust-cli --undo"
    )]
    Deprecate {
        /// NAME (every version) or NAME@REQ (the versions that match).
        #[arg(value_name = "NAME[@REQ]")]
        package: String,
        /// The message (at most 512 characters).
        #[arg(required_unless_present = "undo")]
        message: Option<String>,
        /// Take the deprecation back.
        #[arg(long, conflicts_with = "message")]
        undo: bool,
    },
    /// Pin the owner of a name: only records signed by KEY are installed under NAME here.
    ///
    /// A node decides who owns a name from what it trusts, in this order: a key pinned with
    /// `trust`; else a key that a curator named in the node's config ([trust] curators)
    /// vouches for; else the first key this node saw publish the name. Claims by other keys
    /// are kept and shown by `info`, never used. When a node with no owner yet sees several
    /// keys claim a name at once, the name is contested and nothing installs until you choose.
    /// Records of the previous owner leave the catalogue; KEY's are looked up in the DHT.
    #[command(after_help = "Example:\n  peerpack trust rust-cli ed25519:9f2c...")]
    Trust {
        /// The package name.
        name: String,
        /// The owner's publisher key, ed25519:<64 hex digits> (`peerpack info NAME` lists
        /// the claimants' keys).
        key: String,
    },
    /// Remove the pin on a name's owner. The current owner stays, as if first seen, unless a
    /// trusted curator names another.
    #[command(after_help = "Example:\n  peerpack untrust rust-cli")]
    Untrust {
        /// The package name.
        name: String,
    },
    /// List the owners pinned with `trust`.
    #[command(after_help = "Example:\n  peerpack trusted")]
    Trusted,
    /// Vouch for name owners as a curator: sign a curator list with this node's publisher
    /// key, put it in the DHT and gossip it.
    ///
    /// Nodes whose operators name this key under [trust] curators (or with `node --curator`)
    /// take its word on who owns each listed name, above what they saw first. With no
    /// arguments, shows the current list.
    #[command(
        after_help = "Examples:\n  peerpack curate rust-cli=ed25519:9f2c... axum-service=ed25519:41d0...\n  peerpack curate --remove rust-cli"
    )]
    Curate {
        /// NAME=KEY: vouch that KEY owns NAME (repeatable).
        #[arg(value_name = "NAME=KEY")]
        entries: Vec<String>,
        /// Drop NAME from the list (repeatable).
        #[arg(long, value_name = "NAME")]
        remove: Vec<String>,
    },
    /// Remove cached archives the node does not need, least recently used first.
    ///
    /// Archives this node published, archives installed in a directory that still exists,
    /// and pinned versions are always kept. Of the rest, the least recently used are removed
    /// until they fit the cache quota ([cache] quota in the node's config file, default 1 GiB).
    #[command(after_help = "Example:\n  peerpack gc --dry-run")]
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Mirror a package, or every package an owner key owns: this node fetches and provides
    /// every version now, and each new version as it is announced, within the cache quota
    /// ([cache] quota), and gc keeps them. A package then stays installable while its
    /// publisher is offline.
    #[command(
        after_help = "Examples:\n  peerpack mirror rust-cli\n  peerpack mirror --owner ed25519:9f2c...   (everything that key publishes)"
    )]
    Mirror {
        /// The package name.
        #[arg(required_unless_present = "owner", conflicts_with = "owner")]
        name: Option<String>,
        /// An owner key, ed25519:<64 hex digits>: mirror every name it owns here.
        #[arg(long, value_name = "KEY")]
        owner: Option<String>,
    },
    /// Stop mirroring a name or an owner key; its archives become ordinary cache.
    #[command(after_help = "Example:\n  peerpack unmirror rust-cli")]
    Unmirror {
        /// The name, or the owner key.
        #[arg(value_name = "NAME|KEY")]
        rule: String,
    },
    /// List the mirror rules.
    #[command(after_help = "Example:\n  peerpack mirrors --json")]
    Mirrors,
    /// Pin a package version so that `gc` keeps its archive, fetching it if it is not here.
    #[command(after_help = "Example:\n  peerpack pin rust-cli@1.2.0")]
    Pin {
        /// NAME (its latest known version) or NAME@VERSION.
        #[arg(value_name = "NAME[@VERSION]")]
        package: String,
    },
    /// Remove a pin (NAME@VERSION), or every pin of NAME.
    #[command(after_help = "Example:\n  peerpack unpin rust-cli")]
    Unpin {
        /// NAME or NAME@VERSION.
        #[arg(value_name = "NAME[@VERSION]")]
        package: String,
    },
    /// List pinned package versions.
    #[command(after_help = "Example:\n  peerpack pins")]
    Pins,
    /// Print the shell completion script for SHELL on stdout.
    #[command(
        after_help = "Examples:\n  peerpack completions bash > ~/.local/share/bash-completion/completions/peerpack\n  peerpack completions zsh > \"${fpath[1]}/_peerpack\"\n  peerpack completions fish > ~/.config/fish/completions/peerpack.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  peerpack man > peerpack.1 && man ./peerpack.1")]
    Man,
    /// Start a local network of N nodes in this process, publish the example packs from
    /// different nodes, search from a node that published nothing, and report timings.
    #[command(after_help = "Examples:\n  peerpack demo\n  peerpack demo --nodes 20 --keep")]
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

/// `peerpack key` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyAction {
    /// Write the publisher secret key to FILE (mode 0600; an existing file is never
    /// replaced), or to stdout with `-`. Anyone who has it can publish, yank and deprecate as
    /// you.
    Export {
        /// Where to write it, or `-` for stdout.
        file: PathBuf,
    },
    /// Make the key in FILE (as `key export` writes it) this data directory's publisher key.
    Import(ImportKeyArgs),
    /// Show the publisher key (as `whoami`).
    Show,
}

/// `peerpack dht` queries.
#[derive(Debug, Subcommand)]
pub(crate) enum DhtAction {
    /// The peers the DHT names as providers of an archive (`peerpack info NAME` shows each
    /// version's content id).
    Providers {
        /// The archive's content id, `blake3:` and 64 hex digits.
        content_id: String,
        /// Stop at the first provider found, as an install of a small archive does.
        #[arg(long)]
        first: bool,
    },
    /// Every key's signed index record of a name in the DHT, with the versions it lists and
    /// the peers that served it. More than one key means the name is claimed by several.
    Name {
        /// The package name.
        name: String,
    },
}

/// `key import` and `import-key`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportKeyArgs {
    /// The exported key.
    pub(crate) file: PathBuf,
    /// Replace an existing, different key (kept as publisher.key.replaced-TIME).
    #[arg(long)]
    pub(crate) force: bool,
    /// With --force: replace a key that owns names.
    #[arg(long, requires = "force")]
    pub(crate) abandon_names: bool,
}

/// `peerpack node` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NodeArgs {
    /// Address to listen on (repeatable) [default: the config file's; with none, a free port on
    /// 0.0.0.0 chosen at the first start and kept in DATA_DIR/config.toml].
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,
    /// Peer to join through, with /p2p/<peer id> (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) bootstrap: Vec<String>,
    /// Address the HTTP API listens on [default: 127.0.0.1:0, a free port]. Only loopback
    /// addresses are accepted unless --api-public is given.
    #[arg(long, value_name = "ADDR")]
    pub(crate) api_listen: Option<std::net::SocketAddr>,
    /// Allow --api-listen on a non-loopback address. Anyone who can reach it can then read the node's
    /// state; calls that change something still need the token in DATA_DIR/api-token.
    #[arg(long)]
    pub(crate) api_public: bool,
    /// Configuration file (TOML); flags override it [default: DATA_DIR/config.toml when it
    /// exists].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to advertise besides the listen addresses, e.g. a public address behind NAT
    /// (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) external: Vec<String>,
    /// Which addresses this node may dial: loopback-only, private or any [default:
    /// loopback-only when every listen address is loopback, else any].
    #[arg(long, value_name = "POLICY")]
    pub(crate) policy: Option<String>,
    /// Do not pull whole catalogues from peers (a light node).
    #[arg(long)]
    pub(crate) no_catalogue_sync: bool,
    /// Most bytes per second to serve to peers, all together [default: unlimited].
    #[arg(long, value_name = "BYTES")]
    pub(crate) upload_limit: Option<u64>,
    /// Trust this curator key (ed25519:<hex>) to decide name owners; repeatable, highest
    /// priority first, after those of the config file's [trust] curators.
    #[arg(long, value_name = "KEY")]
    pub(crate) curator: Vec<String>,
    /// Log format on stderr: text (for people) or json (one object per line, for collectors)
    /// [default: text].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub(crate) log_format: Option<String>,
    /// Log filter, as `info`, `debug` or `peerpack_node=debug,info` [default: info].
    /// RUST_LOG, when set, overrides it.
    #[arg(long, value_name = "FILTER")]
    pub(crate) log_level: Option<String>,
}

/// A reputation threshold: a number from 0 to 1.
fn score(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a reputation from 0 to 1")),
    }
}
