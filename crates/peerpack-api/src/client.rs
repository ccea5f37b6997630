//! A typed async client for one node's API.
//!
//! Every call answers the response type of its route or a [`ClientError`] that says whether
//! the node could not be reached, refused the call (with its `code` and message), or answered
//! something this client does not understand.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::{
    Amended, ApiError, BootstrapRequest, CurateRequest, CuratorView, DeprecateRequest, DhtName,
    DhtProviders, DhtProvidersQuery, Dialled, GcReport, GcRequest, Info, InstallCancelled,
    InstallLine, InstallProgress, InstallReport, InstallRequest, MirrorReport, MirrorRequest,
    MirrorView, PeerView, PeersQuery, Pin, PinRequest, PublishRequest, Published, RemoveReport,
    RemoveRequest, Search, SearchHit, StatusView, TrustRequest, TrustView, UiLink, Unblocked,
    Untrusted, VerifyReport, VerifyRequest, YankRequest,
};

/// How long an ordinary call may take.
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// How long an install may take (it downloads).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL given for the node is not a URL.
    #[error("{url:?} is not a URL like http://127.0.0.1:7420")]
    BadUrl {
        /// What was given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The token is not a valid header value.
    #[error("the API token is not a valid header value")]
    BadToken(#[source] reqwest::header::InvalidHeaderValue),
    /// The HTTP client could not be built.
    #[error("cannot build an HTTP client")]
    Build(#[source] reqwest::Error),
    /// Nothing answers at the node's address.
    #[error("cannot reach the node at {url}: {hint}")]
    Unreachable {
        /// The node's base URL.
        url: String,
        /// What the user can check.
        hint: String,
        /// The connection error.
        #[source]
        source: reqwest::Error,
    },
    /// The request failed after it was sent (a timeout, a broken connection).
    #[error("request to the node at {url} failed")]
    Request {
        /// The node's base URL.
        url: String,
        /// The error.
        #[source]
        source: reqwest::Error,
    },
    /// The node refused the call: its error answer.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable code (`not_found`, `conflict`, …); empty when the answer was not in the
        /// API's error shape.
        code: String,
        /// What the node says went wrong.
        message: String,
    },
    /// The node answered something that is not the expected type: an older or newer node, or
    /// not a peerpack node at all.
    #[error(
        "unexpected answer from {url} (is it a peerpack node of this version?): {}",
        excerpt(body)
    )]
    Decode {
        /// The node's base URL.
        url: String,
        /// The answer, as text.
        body: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A name, spec or peer id that cannot be part of a URL path (empty, or only dots).
    #[error("{0:?} is not a package name, spec or peer id")]
    BadSegment(String),
    /// The node went away in the middle of a streamed answer.
    #[error(
        "the node at {url} stopped answering in the middle of the install (did it stop or crash?); run the install again: finished downloads are kept and partial ones resume"
    )]
    Gone {
        /// The node's base URL.
        url: String,
    },
}

impl ClientError {
    /// The API's error code when the node refused the call.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client for one node's API.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    hint: String,
}

impl Client {
    /// A client for the node at `base` (`http://127.0.0.1:PORT`). Calls that change something
    /// carry `token` (the node's `DATA_DIR/api-token`) as `Authorization: Bearer`.
    pub fn new(base: &str, token: Option<&str>) -> Result<Self, ClientError> {
        let trimmed = base.trim_end_matches('/');
        let url = Url::parse(trimmed).map_err(|source| ClientError::BadUrl {
            url: base.to_owned(),
            source,
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(ClientError::BadToken)?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .default_headers(headers)
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self {
            base: url,
            hint: format!("is a node listening at {trimmed}?"),
            http,
        })
    }

    /// Replace what an unreachable node's error tells the user to check.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.call(self.request(Method::GET, &["status"])?).await
    }

    /// `GET /v1/search`.
    pub async fn search(&self, query: &Search) -> Result<Vec<SearchHit>, ClientError> {
        self.call(self.request(Method::GET, &["search"])?.query(query))
            .await
    }

    /// `GET /v1/packages/{name}`.
    pub async fn info(&self, name: &str) -> Result<Info, ClientError> {
        self.call(self.request(Method::GET, &["packages", name])?)
            .await
    }

    /// `POST /v1/publish`.
    pub async fn publish(&self, request: &PublishRequest) -> Result<Published, ClientError> {
        // Waiting for replicas takes up to the request's own timeout (at most a day).
        let timeout = match request.wait_replicas {
            0 => TIMEOUT,
            _ => INSTALL_TIMEOUT,
        };
        self.call(
            self.request(Method::POST, &["publish"])?
                .timeout(timeout)
                .json(request),
        )
        .await
    }

    /// `GET /v1/peers`.
    pub async fn peers(&self, query: &PeersQuery) -> Result<Vec<PeerView>, ClientError> {
        self.call(self.request(Method::GET, &["peers"])?.query(query))
            .await
    }

    /// `GET /v1/peers/{peer_id}`.
    pub async fn peer(&self, peer_id: &str) -> Result<PeerView, ClientError> {
        self.call(self.request(Method::GET, &["peers", peer_id])?)
            .await
    }

    /// `GET /v1/dht/providers/{content_id}`.
    pub async fn dht_providers(
        &self,
        content_id: &str,
        query: &DhtProvidersQuery,
    ) -> Result<DhtProviders, ClientError> {
        self.call(
            self.request(Method::GET, &["dht", "providers", content_id])?
                .query(query),
        )
        .await
    }

    /// `GET /v1/dht/names/{name}`.
    pub async fn dht_name(&self, name: &str) -> Result<DhtName, ClientError> {
        self.call(self.request(Method::GET, &["dht", "names", name])?)
            .await
    }

    /// `POST /v1/bootstrap`.
    pub async fn bootstrap(&self, request: &BootstrapRequest) -> Result<Vec<Dialled>, ClientError> {
        self.call(self.request(Method::POST, &["bootstrap"])?.json(request))
            .await
    }

    /// `POST /v1/ui/link`: a one-time sign-in link to the web page.
    pub async fn ui_link(&self) -> Result<UiLink, ClientError> {
        self.call(self.request(Method::POST, &["ui", "link"])?)
            .await
    }

    /// `GET /v1/blocks`.
    pub async fn blocked(&self) -> Result<Vec<PeerView>, ClientError> {
        self.call(self.request(Method::GET, &["blocks"])?).await
    }

    /// `DELETE /v1/blocks/{peer_id}`.
    pub async fn unblock(&self, peer_id: &str) -> Result<Unblocked, ClientError> {
        self.call(self.request(Method::DELETE, &["blocks", peer_id])?)
            .await
    }

    /// `POST /v1/install`, one answer at the end.
    pub async fn install(&self, request: &InstallRequest) -> Result<InstallReport, ClientError> {
        self.call(
            self.request(Method::POST, &["install"])?
                .timeout(INSTALL_TIMEOUT)
                .json(request),
        )
        .await
    }

    /// `POST /v1/install?progress=ndjson`: `progress` is called with each progress line, and
    /// the result line is the answer.
    pub async fn install_with_progress(
        &self,
        request: &InstallRequest,
        mut progress: impl FnMut(&InstallProgress),
    ) -> Result<InstallReport, ClientError> {
        let req = self
            .request(Method::POST, &["install"])?
            .query(&[("progress", "ndjson")])
            .timeout(INSTALL_TIMEOUT)
            .json(request);
        let mut resp = self.send(req).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(refused(status, &body));
        }
        let mut buf = Vec::new();
        loop {
            // A connection that breaks, or ends before the result line, means the node went.
            let gone = || ClientError::Gone {
                url: self.base().to_owned(),
            };
            let chunk = resp.chunk().await.map_err(|_| gone())?;
            let Some(chunk) = chunk else {
                return Err(gone());
            };
            buf.extend_from_slice(&chunk);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let text: Vec<u8> = buf.drain(..=i).collect();
                match decode::<InstallLine>(self.base(), &text)? {
                    InstallLine::Progress(p) => progress(&p),
                    InstallLine::Result(report) => return Ok(report),
                    InstallLine::Error(e) => {
                        return Err(ClientError::Api {
                            status: 0,
                            code: e.code,
                            message: e.message,
                        });
                    }
                }
            }
        }
    }

    /// `DELETE /v1/install/{id}`: cancel a streamed install (its id is in every progress
    /// line). It stops before it changes the target, or finishes placing what it has begun to.
    pub async fn cancel_install(&self, id: u64) -> Result<InstallCancelled, ClientError> {
        self.call(self.request(Method::DELETE, &["install", &id.to_string()])?)
            .await
    }

    /// `GET /v1/mirrors`.
    pub async fn mirrors(&self) -> Result<Vec<MirrorView>, ClientError> {
        self.call(self.request(Method::GET, &["mirrors"])?).await
    }

    /// `POST /v1/mirrors`.
    pub async fn mirror(&self, request: &MirrorRequest) -> Result<MirrorReport, ClientError> {
        self.call(
            self.request(Method::POST, &["mirrors"])?
                .timeout(INSTALL_TIMEOUT)
                .json(request),
        )
        .await
    }

    /// `DELETE /v1/mirrors/{rule}`.
    pub async fn unmirror(&self, rule: &str) -> Result<MirrorView, ClientError> {
        self.call(self.request(Method::DELETE, &["mirrors", rule])?)
            .await
    }

    /// `POST /v1/yank`.
    pub async fn yank(&self, request: &YankRequest) -> Result<Amended, ClientError> {
        self.call(self.request(Method::POST, &["yank"])?.json(request))
            .await
    }

    /// `POST /v1/deprecate`.
    pub async fn deprecate(&self, request: &DeprecateRequest) -> Result<Amended, ClientError> {
        self.call(self.request(Method::POST, &["deprecate"])?.json(request))
            .await
    }

    /// `POST /v1/remove`.
    pub async fn remove(&self, request: &RemoveRequest) -> Result<RemoveReport, ClientError> {
        self.call(self.request(Method::POST, &["remove"])?.json(request))
            .await
    }

    /// `POST /v1/verify`.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyReport, ClientError> {
        self.call(
            self.request(Method::POST, &["verify"])?
                .timeout(INSTALL_TIMEOUT)
                .json(request),
        )
        .await
    }

    /// `POST /v1/gc`.
    pub async fn gc(&self, request: &GcRequest) -> Result<GcReport, ClientError> {
        self.call(self.request(Method::POST, &["gc"])?.json(request))
            .await
    }

    /// `GET /v1/pins`.
    pub async fn pins(&self) -> Result<Vec<Pin>, ClientError> {
        self.call(self.request(Method::GET, &["pins"])?).await
    }

    /// `POST /v1/pins`: the pin added, as a list like `unpin`'s.
    pub async fn pin(&self, request: &PinRequest) -> Result<Vec<Pin>, ClientError> {
        // It may fetch the archive.
        self.call(
            self.request(Method::POST, &["pins"])?
                .timeout(INSTALL_TIMEOUT)
                .json(request),
        )
        .await
    }

    /// `DELETE /v1/pins/{spec}`.
    pub async fn unpin(&self, spec: &str) -> Result<Vec<Pin>, ClientError> {
        self.call(self.request(Method::DELETE, &["pins", spec])?)
            .await
    }

    /// `GET /v1/trust`.
    pub async fn trusted(&self) -> Result<Vec<TrustView>, ClientError> {
        self.call(self.request(Method::GET, &["trust"])?).await
    }

    /// `POST /v1/trust`.
    pub async fn trust(&self, request: &TrustRequest) -> Result<TrustView, ClientError> {
        self.call(self.request(Method::POST, &["trust"])?.json(request))
            .await
    }

    /// `DELETE /v1/trust/{name}`.
    pub async fn untrust(&self, name: &str) -> Result<Untrusted, ClientError> {
        self.call(self.request(Method::DELETE, &["trust", name])?)
            .await
    }

    /// `GET /v1/curate`.
    pub async fn curator_list(&self) -> Result<CuratorView, ClientError> {
        self.call(self.request(Method::GET, &["curate"])?).await
    }

    /// `POST /v1/curate`.
    pub async fn curate(&self, request: &CurateRequest) -> Result<CuratorView, ClientError> {
        self.call(self.request(Method::POST, &["curate"])?.json(request))
            .await
    }

    /// A request to `/v1/<segments…>`, each segment percent-encoded. An empty or dots-only
    /// segment is refused: a URL cannot carry it (it would be a path step), and no name, spec
    /// or peer id is one.
    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder, ClientError> {
        if let Some(bad) = segments
            .iter()
            .find(|s| s.is_empty() || s.bytes().all(|b| b == b'.'))
        {
            return Err(ClientError::BadSegment((*bad).to_owned()));
        }
        let mut url = self.base.clone();
        // `push` percent-encodes each segment (`/ ? # %` and everything outside ASCII).
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        Ok(self.http.request(method, url))
    }

    /// Send `req`, logging (at debug, for `peerpack -v`) what was asked and how it ended.
    async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let (http, request) = req.build_split();
        let request = request.map_err(|e| self.unreachable(e))?;
        let (method, url) = (request.method().clone(), request.url().clone());
        tracing::debug!(%method, %url, "request to the node");
        let started = std::time::Instant::now();
        match http.execute(request).await {
            Ok(resp) => {
                tracing::debug!(
                    %method,
                    %url,
                    status = resp.status().as_u16(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "the node answered"
                );
                Ok(resp)
            }
            Err(e) => {
                tracing::debug!(
                    %method,
                    %url,
                    error = %e,
                    connect = e.is_connect(),
                    timeout = e.is_timeout(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "no answer from the node"
                );
                Err(self.unreachable(e))
            }
        }
    }

    async fn call<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        let resp = self.send(req).await?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|source| ClientError::Request {
            url: self.base().to_owned(),
            source,
        })?;
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        decode(self.base(), &body)
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        if source.is_connect() {
            ClientError::Unreachable {
                url: self.base().to_owned(),
                hint: self.hint.clone(),
                source,
            }
        } else {
            ClientError::Request {
                url: self.base().to_owned(),
                source,
            }
        }
    }
}

fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|source| ClientError::Decode {
        url: url.to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
        source,
    })
}

/// The start of an answer, on one line, for an error message.
fn excerpt(body: &str) -> String {
    const MOST: usize = 120;
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MOST {
        let cut: String = one_line.chars().take(MOST).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// The node's error answer, or the status and raw body when it is not in the API's shape.
fn refused(status: StatusCode, body: &[u8]) -> ClientError {
    tracing::debug!(
        status = status.as_u16(),
        body = %String::from_utf8_lossy(body),
        "the node refused the call"
    );
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => ClientError::Api {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: String::new(),
            message: format!("{status}: {}", excerpt(&String::from_utf8_lossy(body))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_so_input_cannot_reach_another_route() {
        let c = Client::new("http://127.0.0.1:9/", None).unwrap();
        let req = c
            .request(Method::DELETE, &["pins", "../trust/x?y#z"])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            req.url().as_str(),
            "http://127.0.0.1:9/v1/pins/..%2Ftrust%2Fx%3Fy%23z"
        );
        let req = c
            .request(Method::GET, &["status"])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/v1/status");
        for bad in ["..", ".", ""] {
            assert!(matches!(
                c.request(Method::DELETE, &["pins", bad]),
                Err(ClientError::BadSegment(_))
            ));
        }
        for (segment, sent) in [
            ("rust-cli@1.2.0+build.5", "rust-cli@1.2.0+build.5"),
            ("a b/é", "a%20b%2F%C3%A9"),
        ] {
            let req = c
                .request(Method::DELETE, &["pins", segment])
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(req.url().path(), format!("/v1/pins/{sent}"), "{segment:?}");
        }
    }

    #[test]
    fn a_base_with_a_path_keeps_it() {
        let c = Client::new("http://127.0.0.1:9/node/", None).unwrap();
        let req = c
            .request(Method::GET, &["status"])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/node/v1/status");
        assert_eq!(c.base(), "http://127.0.0.1:9/node");
    }

    #[test]
    fn an_error_answer_becomes_its_code_and_message() {
        let e = refused(
            StatusCode::CONFLICT,
            br#"{"error":{"code":"conflict","message":"x is owned by another key"}}"#,
        );
        assert_eq!(e.code(), Some("conflict"));
        assert_eq!(e.to_string(), "x is owned by another key");
        let e = refused(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(e.to_string(), "502 Bad Gateway: <html>");
        let page = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let e = decode::<crate::StatusView>("http://127.0.0.1:80", page.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("is it a peerpack node"), "{text}");
        assert!(text.len() < 260 && !text.contains('\n'), "{text}");
    }

    #[test]
    fn the_search_query_leaves_out_what_is_not_set() {
        let q = Search {
            q: "rust cli".into(),
            limit: Some(5),
            ..Search::default()
        };
        let c = Client::new("http://127.0.0.1:9", None).unwrap();
        let req = c
            .request(Method::GET, &["search"])
            .unwrap()
            .query(&q)
            .build()
            .unwrap();
        assert_eq!(req.url().query(), Some("q=rust+cli&limit=5"));
    }
}
