//! Talking to a running node over its HTTP API.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use peerpack_node::{DataDir, RuntimeInfo};
use serde::de::DeserializeOwned;

/// A client for one node's API.
pub struct Client {
    base: String,
    http: reqwest::Client,
    hint: String,
}

impl Client {
    /// The node named by `--api URL`, else the one whose `node.json` is in the data directory.
    pub fn find(api: Option<&str>, data_dir: &DataDir) -> Result<Self> {
        let (base, hint) = match api {
            Some(url) => (
                url.trim_end_matches('/').to_owned(),
                format!("is a node listening at {url}?"),
            ),
            None => {
                let file = data_dir.runtime_file();
                let info = RuntimeInfo::read(data_dir).ok_or_else(|| {
                    anyhow!(
                        "no node is running with data directory {} (no {}); start one with `peerpack node --data-dir {}`, or pass --api URL",
                        data_dir.root().display(),
                        file.display(),
                        data_dir.root().display()
                    )
                })?;
                let hint = format!(
                    "the node in {} (pid {}) does not answer; if it is gone, delete that file and start it again with `peerpack node`",
                    file.display(),
                    info.pid
                );
                (info.api, hint)
            }
        };
        // Calls that change something need the node's API token: from the environment, else
        // from the data directory (where the node created it).
        let token = std::env::var("PEERPACK_API_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| data_dir.read_api_token());
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .context("PEERPACK_API_TOKEN is not a valid header value")?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .default_headers(headers)
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Self { base, http, hint })
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .context("cannot read the node's answer")?;
        if !status.is_success() {
            bail!("{}", error_message(status, &body));
        }
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "unexpected answer from the node: {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// GET `path` with query parameters.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await
    }

    /// DELETE `path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// POST a JSON body and read the answer as a stream of JSON lines, calling `line` for each
    /// (no overall timeout: an install may take long).
    pub async fn post_lines(
        &self,
        path: &str,
        body: &serde_json::Value,
        mut line: impl FnMut(serde_json::Value) -> Result<()>,
    ) -> Result<()> {
        let mut resp = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(7 * 24 * 3600))
            .json(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            bail!("{}", error_message(status, &body));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.context("the node's answer broke off")? {
            buf.extend_from_slice(&chunk);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let text: Vec<u8> = buf.drain(..=i).collect();
                let v: serde_json::Value = serde_json::from_slice(&text).with_context(|| {
                    format!(
                        "unexpected line from the node: {}",
                        String::from_utf8_lossy(&text)
                    )
                })?;
                line(v)?;
            }
        }
        Ok(())
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow!("cannot reach the node at {}: {}", self.base, self.hint)
        } else {
            anyhow!("request to the node at {} failed: {e}", self.base)
        }
    }

    /// POST a JSON body.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
}

/// An absolute form of a path the user typed (the node does not share our working directory).
pub fn absolute(p: &Path) -> Result<std::path::PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}

/// The one-line reason in a node's error answer (`{"error": {"message": ...}}`), or the status
/// and raw body when the answer is not in that shape.
fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{status}: {}", String::from_utf8_lossy(body)))
}
