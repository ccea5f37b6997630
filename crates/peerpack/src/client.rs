//! Finding the node a command talks to; the talking is `peerpack_api::Client`.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use peerpack_api::{Client, ClientError, DataDir, RuntimeInfo};

/// The node named by `--api URL`, else the one whose `node.json` is in the data directory.
/// Calls that change something carry the node's API token: from `PEERPACK_API_TOKEN`, else
/// from the data directory (where the node created it).
pub fn find(api: Option<&str>, data_dir: &DataDir) -> Result<Client> {
    let token = std::env::var("PEERPACK_API_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| data_dir.read_api_token());
    let token = token.as_deref();
    match api {
        Some(url) => {
            Ok(Client::new(url, token).map_err(|e| explain(e, "--api (or PEERPACK_API)"))?)
        }
        None => {
            let file = data_dir.runtime_file();
            let info = RuntimeInfo::read(data_dir).ok_or_else(|| {
                crate::exit::NoNode(format!(
                    "no node is running with data directory {} (no {}); start one with `peerpack node --data-dir {}`, or pass --api URL",
                    data_dir.root().display(),
                    file.display(),
                    data_dir.root().display()
                ))
            })?;
            let hint = format!(
                "the node in {} (pid {}) does not answer; if it is gone, delete that file and start it again with `peerpack node`",
                file.display(),
                info.pid
            );
            Ok(Client::new(&info.api, token)
                .map_err(|e| explain(e, &format!("the API URL in {}", file.display())))?
                .with_hint(hint))
        }
    }
}

/// Say where a client that could not be built got its bad input: the token comes from
/// `PEERPACK_API_TOKEN` (a token file is checked to be hex), the URL from `url_source`.
fn explain(e: ClientError, url_source: &str) -> anyhow::Error {
    match e {
        ClientError::BadToken(_) => anyhow!("PEERPACK_API_TOKEN is not a valid header value"),
        other => anyhow::Error::new(other).context(url_source.to_owned()),
    }
}

/// An absolute form of a path the user typed (the node does not share our working directory).
pub fn absolute(p: &Path) -> Result<std::path::PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}
