//! `peerpack-bench download`: install throughput from 1 and 4 providers on loopback, beside a
//! raw TCP copy and nginx + curl, all measured in the same run.
//!
//! For each archive size:
//! 1. node P0 publishes a package holding that many incompressible bytes;
//! 2. baselines: the archive copied over one TCP connection into a file, `curl` fetching it
//!    from nginx on 127.0.0.1 into a file, and, where it is installed, iroh's `sendme`
//!    (`sendme send` and `sendme receive`, in a network namespace holding only loopback);
//! 3. a downloader node D installs it from P0 alone, unlimited, then with P0 capped at a
//!    quarter of the measured rate;
//! 4. P1..P3 install it too (so four providers hold it), and D installs it from all four,
//!    unlimited, then with each capped at that same quarter rate.
//!
//! Between rounds D's install directory is deleted and `gc` (quota 0) removes the archive, so
//! every round downloads everything. Install time covers resolving, finding providers, the
//! outline, downloading and checking every piece, the fsync, and extracting the files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use peerpack_net::protocol::provider_key;
use peerpack_node::install::{InstallProgress, InstallRequest};
use peerpack_node::{Config, Node};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: u64 = 1024 * 1024;

/// One measured configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Archive size in bytes.
    pub archive_bytes: u64,
    /// What was measured.
    pub method: String,
    /// Median wall time, ms.
    pub median_ms: f64,
    /// Every round, ms.
    pub rounds_ms: Vec<f64>,
    /// Archive bytes per second at the median, MiB/s.
    pub mib_per_s: f64,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The rows.
    pub rows: Vec<Row>,
    /// Ratios the goals are stated in, per size.
    pub goals: Vec<Goal>,
}

/// The goal ratios for one size.
#[derive(Debug, Serialize)]
pub struct Goal {
    /// Archive size in bytes.
    pub archive_bytes: u64,
    /// Single-provider install rate over the nginx + curl rate (goal at least 1.2 at 64 MiB).
    pub single_over_nginx: f64,
    /// Single-provider download rate (into the blob store, every piece checked) over the raw
    /// TCP copy's (goal at least 0.85).
    pub download_over_raw: f64,
    /// Single-provider install rate over `sendme receive`'s, when sendme is installed.
    pub single_over_sendme: Option<f64>,
    /// Four capped providers over one capped provider (goal at least 3.5).
    pub four_capped_over_one_capped: f64,
    /// The cap per provider, bytes per second.
    pub cap_bytes_per_s: u64,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn row(size: u64, method: &str, rounds: Vec<Duration>) -> Row {
    let ms: Vec<f64> = rounds.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let m = median(&ms);
    let r = Row {
        archive_bytes: size,
        method: method.to_owned(),
        median_ms: m,
        rounds_ms: ms,
        mib_per_s: size as f64 / MIB as f64 / (m / 1e3),
    };
    eprintln!(
        "  {:>4} MiB  {:<36} {:>9.1} ms  {:>8.1} MiB/s",
        size / MIB,
        method,
        r.median_ms,
        r.mib_per_s
    );
    r
}

/// A package directory with `bytes` of incompressible data.
pub(crate) fn package(dir: &Path, name: &str, bytes: u64) -> Result<()> {
    std::fs::create_dir_all(dir.join("template"))?;
    std::fs::write(
        dir.join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"benchmark payload\"\nlicense = \"MIT\"\nauthors = [\"bench\"]\n"
        ),
    )?;
    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ bytes;
    let mut data = Vec::with_capacity(bytes as usize);
    while (data.len() as u64) < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(bytes as usize);
    std::fs::write(dir.join("template/payload.bin"), data)?;
    Ok(())
}

async fn install(inner: &Arc<peerpack_node::Context>, name: &str, to: &Path) -> Result<Duration> {
    let start = Instant::now();
    let report = inner
        .install(
            InstallRequest {
                packages: vec![name.to_owned()],
                to: to.to_owned(),
                ..Default::default()
            },
            Arc::new(InstallProgress::default()),
        )
        .await?;
    let took = start.elapsed();
    if report.installed[0].cached {
        bail!("the archive was still in the downloader's store");
    }
    Ok(took)
}

/// Undo an install on the downloader so that the next round downloads everything again.
async fn forget(inner: &Arc<peerpack_node::Context>, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    let r = inner.gc(false).await?;
    if r.removed.is_empty() {
        bail!("gc removed nothing from the downloader");
    }
    Ok(())
}

async fn rounds(
    d: &Arc<peerpack_node::Context>,
    name: &str,
    to: &Path,
    n: usize,
) -> Result<Vec<Duration>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(install(d, name, to).await?);
        forget(d, to).await?;
    }
    Ok(out)
}

async fn raw_tcp(archive: &Path, out: &Path, n: usize) -> Result<Vec<Duration>> {
    let bytes = Arc::new(tokio::fs::read(archive).await?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = {
        let bytes = bytes.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let _ = sock.write_all(&bytes).await;
                });
            }
        })
    };
    let mut times = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let mut sock = tokio::net::TcpStream::connect(addr).await?;
        let mut file = tokio::fs::File::create(out).await?;
        let mut buf = vec![0u8; MIB as usize];
        let mut total = 0u64;
        loop {
            let k = sock.read(&mut buf).await?;
            if k == 0 {
                break;
            }
            file.write_all(&buf[..k]).await?;
            total += k as u64;
        }
        file.flush().await?;
        times.push(start.elapsed());
        if total != bytes.len() as u64 {
            bail!("raw TCP copied {total} of {} bytes", bytes.len());
        }
    }
    server.abort();
    Ok(times)
}

struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(root: &Path, work: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        std::fs::create_dir_all(work)?;
        let conf = work.join("nginx.conf");
        // One process (master_process off), so that stopping it leaves no worker behind. Run
        // as root, nginx would serve as nobody, who cannot read a private temp directory; keep
        // the invoking user.
        let as_root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        std::fs::write(
            &conf,
            format!(
                "{user}daemon off;\nmaster_process off;\nworker_processes 1;\npid {w}/nginx.pid;\nerror_log {w}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
                 client_body_temp_path {w}/body;\n  proxy_temp_path {w}/proxy;\n  fastcgi_temp_path {w}/fastcgi;\n\
                 uwsgi_temp_path {w}/uwsgi;\n  scgi_temp_path {w}/scgi;\n\
                 server {{ listen 127.0.0.1:{port}; root {r}; }}\n}}\n",
                user = if as_root { "user root;\n" } else { "" },
                w = work.display(),
                r = root.display()
            ),
        )?;
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| Command::new(p).arg("-v").output().is_ok())
            .context("nginx is not installed (apt-get install nginx-light); it is the central-registry baseline")?;
        let child = Command::new(nginx)
            .args([
                "-p",
                &work.display().to_string(),
                "-c",
                &conf.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx")?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not start; see {}/error.log", work.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, port })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(port: u16, file: &str, out: &Path, n: usize) -> Result<Vec<Duration>> {
    let url = format!("http://127.0.0.1:{port}/{file}");
    let mut times = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let status = Command::new("curl")
            .args(["-sf", "-o"])
            .arg(out)
            .arg(&url)
            .status()
            .context("curl is not installed")?;
        times.push(start.elapsed());
        if !status.success() {
            bail!("curl {url} failed: {status}");
        }
    }
    Ok(times)
}

/// The `sendme` binary (iroh's file transfer tool, `cargo install sendme --locked`): on the
/// `PATH`, or in cargo's bin directory.
fn sendme_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("sendme"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin").join("sendme")).filter(|p| p.is_file())
    })
}

/// The same file sent with `sendme send` and fetched `n` times with `sendme receive`, each a
/// whole process from spawn to exit, its file written into an empty directory.
///
/// sendme's endpoints are built with iroh's N0 preset, which looks up and publishes addresses
/// through n0's DNS and relay servers. Here the relays are disabled and the ticket carries
/// direct addresses only, and both ends run in a network namespace of their own that holds
/// nothing but a loopback interface (`unshare --net`), so nothing can leave the machine
/// whatever the tool tries. Needs root (or unprivileged user namespaces) and `ip`.
fn sendme(bin: &Path, file: &Path, work: &Path, n: usize) -> Result<Vec<Duration>> {
    std::fs::create_dir_all(work)?;
    let script = r#"set -e
ip link set lo up
sendme="$1"; file="$2"; work="$3"; rounds="$4"
cd "$work"
common="--relay disabled --magic-ipv4-addr 127.0.0.1:0 --no-progress"
"$sendme" send "$file" --ticket-type addresses $common > send.out 2> send.err &
sender=$!
trap 'kill $sender 2>/dev/null || true' EXIT
ticket=""
for _ in $(seq 1 600); do
  ticket=$(grep -o 'sendme receive [^ ]*' send.out | head -n1 | cut -d' ' -f3 || true)
  [ -n "$ticket" ] && break
  kill -0 $sender 2>/dev/null || { cat send.err >&2; echo "sendme send exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ticket" ] || { echo "sendme send printed no ticket within 60 s" >&2; exit 1; }
for r in $(seq 1 "$rounds"); do
  rm -rf recv && mkdir recv && cd recv
  t0=$(date +%s%N)
  "$sendme" receive "$ticket" $common > ../recv.out 2> ../recv.err || { cat ../recv.err >&2; exit 1; }
  t1=$(date +%s%N)
  cd ..
  echo "round $((t1 - t0))"
done
"#;
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", script, "sh"])
        .arg(bin)
        .arg(file)
        .arg(work)
        .arg(n.to_string())
        .stdin(Stdio::null())
        .output()
        .context("cannot run unshare (util-linux)")?;
    if !out.status.success() {
        bail!(
            "sendme in a private network namespace failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let times: Vec<Duration> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("round "))
        .filter_map(|ns| ns.trim().parse::<u64>().ok())
        .map(Duration::from_nanos)
        .collect();
    let received = work.join("recv").join(file.file_name().unwrap_or_default());
    let size = std::fs::metadata(&received).map(|m| m.len()).unwrap_or(0);
    anyhow::ensure!(
        times.len() == n && size == std::fs::metadata(file)?.len(),
        "sendme received {size} bytes in {} rounds of {n}",
        times.len()
    );
    let _ = std::fs::remove_dir_all(work);
    Ok(times)
}

async fn wait_providers(
    d: &Arc<peerpack_node::Context>,
    id: peerpack_core::ContentId,
    n: usize,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let found = d
            .net_handle()
            .get_providers(provider_key(&id), Duration::from_secs(5))
            .await
            .unwrap_or_default();
        if found.len() >= n {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the downloader sees {} of {n} providers", found.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn one_size(size_mib: u64, rounds_n: usize, work: &Path) -> Result<(Vec<Row>, Goal)> {
    let size = size_mib * MIB;
    // Large archives take seconds a round; three rounds give a median.
    let rounds_n = if size_mib >= 512 {
        rounds_n.min(3)
    } else {
        rounds_n
    };
    let dir = work.join(format!("size-{size_mib}"));
    std::fs::create_dir_all(&dir)?;
    let mut nodes = Vec::new();
    for i in 0..5 {
        let d = dir.join(format!("node{i}"));
        let mut config = Config::loopback(&d);
        // The downloader keeps no cache: gc empties it between rounds.
        if i == 4 {
            config.cache_quota = 0;
        }
        nodes.push(Node::start(config).await?);
    }
    let (providers, d) = nodes.split_at(4);
    let d = d[0].inner().clone();
    for p in &providers[1..] {
        p.inner()
            .bootstrap(&[providers[0].listen_addrs()[0].to_string()])
            .await?;
    }
    d.bootstrap(&[providers[0].listen_addrs()[0].to_string()])
        .await?;

    let name = format!("bench-{size_mib}m");
    let pkg = dir.join("package");
    package(&pkg, &name, size)?;
    let published = peerpack_node::publish::publish(providers[0].inner(), pkg.clone()).await?;
    let archive_size = published.archive_size;
    let archive = providers[0]
        .data_dir()
        .root()
        .join("blobs")
        .join(&published.content_id.to_hex()[..2])
        .join(published.content_id.to_hex());
    let start = Instant::now();
    while d.info(&name).await.is_err() {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the downloader never learned {name}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let to = dir.join("installed");
    let mut rows = Vec::new();

    // Baselines, on the very same bytes.
    let out = dir.join("baseline.out");
    let raw = row(
        archive_size,
        "raw TCP copy to a file",
        raw_tcp(&archive, &out, rounds_n).await?,
    );
    rows.push(raw.clone());
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::copy(&archive, www.join("archive.tar.zst"))?;
    let nginx = Nginx::start(&www, &dir.join("nginx"))?;
    let nginx_row = row(
        archive_size,
        "nginx + curl to a file",
        curl(nginx.port, "archive.tar.zst", &out, rounds_n)?,
    );
    rows.push(nginx_row.clone());
    drop(nginx);
    let _ = std::fs::remove_file(&out);
    let sendme_row = match sendme_bin() {
        Some(bin) => match sendme(
            &bin,
            &www.join("archive.tar.zst"),
            &dir.join("sendme"),
            rounds_n,
        ) {
            Ok(times) => {
                let r = row(archive_size, "sendme receive to a file", times);
                rows.push(r.clone());
                Some(r)
            }
            Err(e) => {
                eprintln!("  sendme baseline skipped: {e:#}");
                None
            }
        },
        None => {
            eprintln!(
                "  sendme baseline skipped: sendme is not installed (cargo install sendme --locked)"
            );
            None
        }
    };
    let _ = std::fs::remove_dir_all(&www);

    // One provider: the download alone (into the blob store, every piece checked, fsynced),
    // then whole installs.
    let mut fetches = Vec::new();
    for _ in 0..rounds_n {
        let start = Instant::now();
        peerpack_node::download::fetch(&d, published.content_id, archive_size, Arc::default())
            .await?;
        fetches.push(start.elapsed());
        forget(&d, &to).await?;
    }
    let download = row(archive_size, "peerpack download only, 1 provider", fetches);
    rows.push(download.clone());
    let single = row(
        archive_size,
        "peerpack install, 1 provider",
        rounds(&d, &name, &to, rounds_n).await?,
    );
    rows.push(single.clone());
    let cap = (single.mib_per_s * MIB as f64 / 4.0) as u64;
    providers[0].inner().set_upload_limit(Some(cap));
    let one_capped = row(
        archive_size,
        "peerpack install, 1 provider capped",
        rounds(&d, &name, &to, rounds_n.min(3)).await?,
    );
    rows.push(one_capped.clone());
    providers[0].inner().set_upload_limit(None);

    // Four providers.
    for p in &providers[1..] {
        install(p.inner(), &name, &dir.join(format!("p-{}", p.peer_id()))).await?;
    }
    for p in &providers[1..] {
        d.bootstrap(&[p.listen_addrs()[0].to_string()]).await?;
    }
    wait_providers(&d, published.content_id, 4).await?;
    rows.push(row(
        archive_size,
        "peerpack install, 4 providers",
        rounds(&d, &name, &to, rounds_n).await?,
    ));
    for p in providers {
        p.inner().set_upload_limit(Some(cap));
    }
    let four_capped = row(
        archive_size,
        "peerpack install, 4 providers capped",
        rounds(&d, &name, &to, rounds_n.min(3)).await?,
    );
    rows.push(four_capped.clone());

    for n in nodes {
        n.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        rows,
        Goal {
            archive_bytes: archive_size,
            single_over_nginx: single.mib_per_s / nginx_row.mib_per_s,
            download_over_raw: download.mib_per_s / raw.mib_per_s,
            single_over_sendme: sendme_row.map(|r| single.mib_per_s / r.mib_per_s),
            four_capped_over_one_capped: four_capped.mib_per_s / one_capped.mib_per_s,
            cap_bytes_per_s: cap,
        },
    ))
}

/// Run the benchmark for each size in MiB.
pub async fn run(
    sizes_mib: &[u64],
    rounds_n: usize,
    json: Option<&Path>,
    work: Option<PathBuf>,
) -> Result<()> {
    let tmp = match work {
        Some(w) => {
            std::fs::create_dir_all(&w)?;
            tempfile::tempdir_in(w)?
        }
        None => tempfile::tempdir()?,
    };
    let mut report = Report {
        rows: Vec::new(),
        goals: Vec::new(),
    };
    for &size in sizes_mib {
        eprintln!("{size} MiB archive:");
        let (rows, goal) = one_size(size, rounds_n.max(1), tmp.path()).await?;
        eprintln!(
            "  single provider / nginx = {:.2}; download / raw TCP = {:.2}; 4 capped / 1 capped = {:.2} (cap {:.1} MiB/s)",
            goal.single_over_nginx,
            goal.download_over_raw,
            goal.four_capped_over_one_capped,
            goal.cap_bytes_per_s as f64 / MIB as f64
        );
        report.rows.extend(rows);
        report.goals.push(goal);
    }
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = json {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{text}");
    Ok(())
}
