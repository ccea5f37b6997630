//! What the API answers: search, package info, peers, status, bootstrap. Each returns the
//! JSON-serialisable view the CLI prints.

use std::sync::Arc;

use peerpack_net::p2p::{Multiaddr, PeerId};
use peerpack_store::db::now;
use peerpack_store::{NameState, SearchQuery};

use crate::context::Context;
use crate::error::Error;
use crate::reputation::Peer;

pub use peerpack_api::{Dialled, Info, PeerView, Search, SearchHit, StatusView, VersionInfo};

fn view(id: &PeerId, p: &Peer) -> PeerView {
    PeerView {
        peer_id: id.to_string(),
        connected: p.connected,
        addresses: p.row.addresses.clone(),
        agent: p.row.agent.clone(),
        protocol_version: p.row.protocol_version.clone(),
        first_seen: p.row.first_seen,
        last_seen: p.row.last_seen,
        last_seen_ago_s: (now() - p.row.last_seen).max(0),
        latency_ms: p.row.ping_ms,
        connections: p.row.connections,
        valid_records: p.row.valid_records,
        invalid_messages: p.row.invalid_messages,
        downloads_ok: p.row.downloads_ok,
        downloads_failed: p.row.downloads_failed,
        bytes_served: p.row.bytes_served,
        response_ms: p.row.response_ms,
        invalid_data: p.row.invalid_data,
        score: p.score(),
        blocked_until: p.row.blocked_until,
    }
}

impl Context {
    /// Search the local catalogue.
    #[tracing::instrument(skip(self), fields(hits))]
    pub async fn search(self: &Arc<Self>, s: Search) -> Result<Vec<SearchHit>, Error> {
        let started = std::time::Instant::now();
        let hits = self.search_untimed(s).await;
        self.metrics.search(started.elapsed());
        if let Ok(h) = &hits {
            tracing::Span::current().record("hits", h.len());
        }
        hits
    }

    /// How many packages `q` matches in all, and the `size` commonest categories and tags
    /// among them (see [`peerpack_store::search::SearchIndex::facets`]).
    pub async fn search_facets(
        self: &Arc<Self>,
        q: peerpack_store::SearchQuery,
        size: usize,
    ) -> Result<peerpack_store::search::Facets, Error> {
        self.catalogue.index_current().await?;
        let index = self.catalogue.index.clone();
        Ok(
            crate::telemetry::blocking("index.facets", move || index.facets(&q, size))
                .await
                .map_err(|e| Error::task("facets task", e))?
                .map_err(peerpack_store::Error::from)?,
        )
    }

    async fn search_untimed(self: &Arc<Self>, s: Search) -> Result<Vec<SearchHit>, Error> {
        let limit = s
            .limit
            .unwrap_or(20)
            .clamp(1, peerpack_store::search::MAX_LIMIT);
        let tags = s
            .tags
            .as_deref()
            .map(|t| {
                t.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let (text, category, no_tags) = (
            s.q.clone(),
            s.category.clone().filter(|c| !c.is_empty()),
            s.tags.as_deref().is_none_or(|t| t.trim().is_empty()),
        );
        let q = SearchQuery {
            text: s.q,
            category: s.category.filter(|c| !c.is_empty()),
            tags,
            // Fetch extra when filtering by reputation, so filtering does not starve the page.
            limit: if s.min_reputation.is_some() {
                limit * 4
            } else {
                limit
            },
        };
        // A search sees every write that returned before it: a package this node just
        // published or looked up is found, even within the index's batching delay.
        self.catalogue.index_current().await?;
        let index = self.catalogue.index.clone();
        let hits = crate::telemetry::blocking("index.search", move || index.search(&q))
            .await
            .map_err(|e| Error::task("search task", e))?
            .map_err(peerpack_store::Error::from)?;
        // Provider lists come from SQLite, one indexed read per hit.
        let ids: Vec<String> = hits.iter().map(|h| h.content_id.clone()).collect();
        let providers: Vec<Vec<String>> = self
            .catalogue
            .with_store(move |st| {
                ids.iter()
                    .map(|id| {
                        let id = id.parse().map_err(|e| Error::Internal(format!("{e}")))?;
                        Ok(st.db.providers(&id)?)
                    })
                    .collect()
            })
            .await?;
        let me = self.peer_id.to_string();
        let mut out = Vec::new();
        // A package whose latest archive was found unsafe is not offered. (No copy of the
        // set: this is the search path.)
        let hits: Vec<_> = self.catalogue.with_unsafe(|hidden| {
            hits.into_iter()
                .zip(providers)
                .filter(|(h, _)| !hidden.contains(&h.content_id))
                .collect()
        });
        for (h, provs) in hits {
            if let Some(min) = s.min_reputation {
                let good = provs.is_empty()
                    || provs
                        .iter()
                        .any(|p| *p == me || self.peers.with(|b| b.score_of(p)) >= min);
                if !good {
                    continue;
                }
            }
            let disputed = self
                .catalogue
                .with_disputes(|d| d.disputed.contains(&h.name));
            let here = h
                .content_id
                .parse()
                .is_ok_and(|id| self.catalogue.blobs.contains(&id));
            let online = self.peers.with(|b| {
                provs
                    .iter()
                    .filter(|p| **p != me)
                    .filter_map(|p| p.parse().ok())
                    .filter(|p| b.get(p).is_some_and(|x| x.connected))
                    .count()
            });
            out.push(SearchHit {
                providers_online: u64::from(here) + online as u64,
                name: h.name,
                version: h.version,
                description: h.description,
                content_id: h.content_id,
                score: h.score,
                contested: false,
                disputed,
            });
            if out.len() == limit {
                break;
            }
        }
        // Contested names have no catalogue entry; list those the words name, marked, so a
        // user learns why they cannot install them.
        if category.is_none() && no_tags {
            let words: Vec<String> = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|w| !w.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            let contested: Vec<String> = self.catalogue.with_disputes(|d| {
                d.contested
                    .iter()
                    .filter(|n| words.is_empty() || words.iter().any(|w| n.contains(w.as_str())))
                    .cloned()
                    .collect()
            });
            for name in contested.into_iter().rev() {
                let exact = words.len() == 1 && words[0] == name;
                let hit = SearchHit {
                    description: format!(
                        "contested: several keys claim {name}; `peerpack info {name}` lists them"
                    ),
                    name,
                    version: String::new(),
                    content_id: String::new(),
                    score: 0.0,
                    contested: true,
                    disputed: false,
                    providers_online: 0,
                };
                if exact {
                    out.insert(0, hit);
                } else if out.len() < limit {
                    out.push(hit);
                }
            }
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Everything known about `name`, asking the DHT when the catalogue does not know it.
    #[tracing::instrument(skip(self))]
    pub async fn info(self: &Arc<Self>, name: &str) -> Result<Info, Error> {
        let name = crate::names::parse_name(name)?;
        let mut source = "local";
        let (state, _) = self.name_state(&name).await?;
        if state != NameState::Contested && !crate::lookup::known(self, &name).await? {
            source = "dht";
            match crate::lookup::lookup(self, &name).await? {
                crate::lookup::Lookup::Found | crate::lookup::Lookup::Contested(_) => {}
                crate::lookup::Lookup::Missing => {
                    return Err(Error::NotFound(format!(
                        "no package named {name} in the local catalogue or the DHT{}",
                        self.catalogue
                            .did_you_mean(name.as_str())
                            .await
                            .map(|h| format!("; {h}"))
                            .unwrap_or_default()
                    )));
                }
            }
        }
        let n = name.clone();
        let (state, claims, index, versions, providers, unsafe_reasons, owner_unsafe) = self
            .catalogue
            .with_store(move |s| {
                let versions = s.versions(&n)?.to_vec();
                let mut providers = Vec::new();
                let mut unsafe_reasons = Vec::new();
                for v in &versions {
                    providers.push(s.db.providers(&v.content_id)?);
                    unsafe_reasons.push(s.db.unsafe_reason(&v.content_id)?);
                }
                let state = s.db.name_state(&n)?;
                let owner_unsafe = match state.owner() {
                    Some(k) => s.db.unsafe_count(&k)?,
                    None => 0,
                };
                Ok((
                    state,
                    s.db.claims(&n)?,
                    s.db.index_record(&n)?,
                    versions,
                    providers,
                    unsafe_reasons,
                    owner_unsafe,
                ))
            })
            .await?;
        let (status, owner, owner_source, curator) = match state {
            NameState::Owned { owner, source } => (
                "owned",
                Some(owner.to_string()),
                Some(source.as_str().to_owned()),
                match source {
                    peerpack_store::OwnerSource::Curator(c) => Some(c.to_string()),
                    _ => None,
                },
            ),
            NameState::Contested => ("contested", None, None, None),
            NameState::Unknown => {
                return Err(Error::NotFound(format!("no package named {name}")));
            }
        };
        if versions.is_empty() && claims.is_empty() {
            return Err(Error::NotFound(format!(
                "no package named {name} in the local catalogue or the DHT"
            )));
        }
        Ok(Info {
            name: name.to_string(),
            status: status.into(),
            owner,
            owner_source,
            curator,
            claims: claims.iter().map(crate::names::claim_view).collect(),
            owner_unsafe_archives: owner_unsafe,
            index_seq: index.as_ref().map(|i| i.seq),
            source: source.into(),
            versions: versions
                .into_iter()
                .zip(providers)
                .zip(unsafe_reasons)
                .map(|((r, providers), unsafe_reason)| VersionInfo {
                    yanked: index
                        .as_ref()
                        .and_then(|i| i.entry(r.version()))
                        .and_then(|e| e.yanked.clone()),
                    deprecated: index
                        .as_ref()
                        .and_then(|i| i.entry(r.version()))
                        .and_then(|e| e.deprecated.clone()),
                    version: r.version().to_string(),
                    content_id: r.content_id.to_string(),
                    archive_size: r.archive_size,
                    published_at: r.published_at,
                    seq: r.seq,
                    record_hash: r.hash().to_string(),
                    description: r.manifest.description.clone(),
                    license: r.manifest.license.clone(),
                    authors: r.manifest.authors.clone(),
                    categories: r.manifest.categories.clone(),
                    tags: r.manifest.tags.clone(),
                    homepage: r.manifest.homepage.clone(),
                    repository: r.manifest.repository.clone(),
                    dependencies: r
                        .manifest
                        .dependencies
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    providers,
                    unsafe_reason,
                })
                .collect(),
        })
    }

    /// Every known peer, best score first.
    pub fn peer_views(&self, min_reputation: Option<f64>) -> Vec<PeerView> {
        let mut peers: Vec<PeerView> = self
            .peers
            .with(|b| b.all().map(|(id, p)| view(id, p)).collect());
        if let Some(min) = min_reputation {
            peers.retain(|p| p.score >= min);
        }
        peers.sort_by(|a, b| {
            b.connected
                .cmp(&a.connected)
                .then(b.score.total_cmp(&a.score))
        });
        peers
    }

    /// One peer.
    pub fn peer_view(&self, peer: &str) -> Result<PeerView, Error> {
        let id: PeerId = peer
            .parse()
            .map_err(|e| Error::BadRequest(format!("{peer:?} is not a peer id: {e}")))?;
        self.peers
            .with(|b| b.get(&id).map(|p| view(&id, p)))
            .ok_or_else(|| Error::NotFound(format!("this node has never met peer {peer}")))
    }

    /// Node status.
    pub async fn status(self: &Arc<Self>) -> Result<StatusView, Error> {
        let net = self.net.status().await?;
        let (catalogue_size, packages, archives) = self
            .catalogue
            .with_store(|s| {
                Ok((
                    s.db.version_count()?,
                    s.db.package_count()?,
                    s.blobs.list().map(|l| l.len() as u64).unwrap_or(0),
                ))
            })
            .await?;
        let (bytes_uploaded, bytes_downloaded, downloads_ok, downloads_failed) =
            self.transfers.counters.snapshot();
        let (upload_rate, download_rate) = self.transfers.counters.rates();
        let (dht_queries, gossip, refusals) = self.metric_figures(&net);
        Ok(StatusView {
            peer_id: self.peer_id.to_string(),
            listen_addrs: self.listen_addrs.iter().map(ToString::to_string).collect(),
            api: self.api_url.clone(),
            publisher: self.publisher.public().to_string(),
            connected_peers: net.connected_peers,
            known_peers: self.peers.with(|b| b.all().count()),
            catalogue_size,
            packages,
            routing_table_size: net.routing_table_size,
            policy: net.policy.to_string(),
            refused_dials: net.refused_dials,
            refused_provider_records: net.refused_provider_records,
            uptime_s: self.started.elapsed().as_secs(),
            archives,
            bytes_uploaded,
            bytes_downloaded,
            downloads_ok,
            downloads_failed,
            bootstrap: self.bootstrap_views(),
            downloading: self
                .transfers
                .downloads
                .snapshot()
                .into_iter()
                .map(|(id, total, done)| (id.to_string(), total, done))
                .collect(),
            record_cache: {
                let c = self.catalogue.records.stats();
                peerpack_api::CacheStats {
                    hits: c.hits,
                    misses: c.misses,
                    entries: c.entries,
                }
            },
            upload_limit: self.transfers.upload.rate(),
            upload_rate,
            download_rate,
            dht_queries,
            gossip,
            refusals,
            blocked_peers: self.peers.with(|b| b.blocked().len()),
            dht: self.dht_view(&net),
        })
    }

    /// What this node keeps in the DHT for others, and its republishing rounds.
    fn dht_view(&self, net: &peerpack_net::Status) -> peerpack_api::DhtView {
        let now = std::time::Instant::now();
        let s = self.republish.snapshot();
        let round = |r: Option<crate::republish::Round>| {
            r.map(|r| peerpack_api::RoundView {
                ago_s: now.saturating_duration_since(r.ended).as_secs(),
                took_ms: u64::try_from(r.took.as_millis()).unwrap_or(u64::MAX),
                done: r.done,
                failed: r.failed,
            })
        };
        let due =
            |t: Option<std::time::Instant>| t.map(|t| t.saturating_duration_since(now).as_secs());
        peerpack_api::DhtView {
            provider_records: net.provider_records,
            max_provider_records: net.max_provider_records,
            provided: net.provided_keys,
            records_round: round(s.records),
            archives_round: round(s.archives),
            next_records_in_s: due(s.next_records),
            next_archives_in_s: due(s.next_archives),
            waiting_for_peer: s.waiting_for_peer,
        }
    }

    /// The key figures of `GET /v1/status` that come from the node's metrics.
    fn metric_figures(
        &self,
        net: &peerpack_net::Status,
    ) -> (
        Vec<peerpack_api::DhtQueryStats>,
        peerpack_api::GossipStats,
        Vec<peerpack_api::RefusalCount>,
    ) {
        let m = self.telemetry.snapshot();
        let dht = ["get", "put", "providers"]
            .into_iter()
            .map(|kind| {
                let ms = |q| {
                    m.quantile("peerpack.dht.query.duration", &[("kind", kind)], q)
                        .map(|s| s * 1e3)
                };
                peerpack_api::DhtQueryStats {
                    kind: kind.to_owned(),
                    results: m
                        .by("peerpack.dht.queries", "result", &[("kind", kind)])
                        .into_iter()
                        .map(|(r, n)| (r, n as u64))
                        .collect(),
                    p50_ms: ms(0.5),
                    p99_ms: ms(0.99),
                }
            })
            .collect();
        let gossip = |result| m.sum("peerpack.gossip.messages", &[("result", result)]) as u64;
        let gossip = peerpack_api::GossipStats {
            accepted: gossip("accept"),
            rejected: gossip("reject"),
            ignored: gossip("ignore"),
        };
        let mut refusals = Vec::new();
        for (what, name, via_key) in [
            ("record", "peerpack.records.refused", "via"),
            ("request", "peerpack.requests.refused", "protocol"),
        ] {
            for p in m.points(name) {
                let attr = |k: &str| p.attribute(k).unwrap_or_default().to_owned();
                if let crate::telemetry::PointValue::Number(n) = p.value {
                    refusals.push(peerpack_api::RefusalCount {
                        what: what.to_owned(),
                        via: attr(via_key),
                        reason: attr("reason"),
                        count: n as u64,
                    });
                }
            }
        }
        if net.refused_dials > 0 {
            refusals.push(peerpack_api::RefusalCount {
                what: "dial".to_owned(),
                via: String::new(),
                reason: "policy".to_owned(),
                count: net.refused_dials,
            });
        }
        if net.refused_provider_records > 0 {
            refusals.push(peerpack_api::RefusalCount {
                what: "provider_record".to_owned(),
                via: "dht".to_owned(),
                reason: "quota".to_owned(),
                count: net.refused_provider_records,
            });
        }
        if net.full_provider_records > 0 {
            refusals.push(peerpack_api::RefusalCount {
                what: "provider_record".to_owned(),
                via: "dht".to_owned(),
                reason: "full".to_owned(),
                count: net.full_provider_records,
            });
        }
        refusals.sort_by(|a, b| (&a.what, &a.via, &a.reason).cmp(&(&b.what, &b.via, &b.reason)));
        (dht, gossip, refusals)
    }

    /// The network handle (for protocol-level callers such as downloaders and tests).
    pub fn net_handle(&self) -> peerpack_net::NetHandle {
        self.net.clone()
    }

    /// Peers blocked now for misbehaving, soonest to end first.
    pub fn blocked_views(&self) -> Vec<PeerView> {
        let mut out: Vec<PeerView> = self.peers.with(|b| {
            b.blocked()
                .into_iter()
                .filter_map(|(id, _)| b.get(&id).map(|p| view(&id, p)))
                .collect()
        });
        out.sort_by_key(|v| v.blocked_until);
        out
    }

    /// Lift `peer`'s block and forgive its invalid messages and data. Returns whether it was
    /// blocked.
    pub async fn unblock(&self, peer: &str) -> Result<bool, Error> {
        let id: PeerId = peer
            .parse()
            .map_err(|e| Error::BadRequest(format!("{peer:?} is not a peer id: {e}")))?;
        let was = self.peers.with(|b| b.unblock(id));
        self.net.unblock(id).await?;
        Ok(was)
    }

    /// Refuse every connection with `peer` from now on.
    pub async fn block_peer(&self, peer: PeerId) -> Result<(), Error> {
        Ok(self.net.block(peer).await?)
    }

    /// Dial more peers. Every address is checked before any is dialled.
    pub async fn bootstrap(self: &Arc<Self>, addrs: &[String]) -> Result<Vec<Dialled>, Error> {
        if addrs.is_empty() {
            return Err(Error::BadRequest(
                "give at least one address to dial".into(),
            ));
        }
        let mut parsed = Vec::with_capacity(addrs.len());
        for a in addrs {
            let m: Multiaddr = a
                .parse()
                .map_err(|e| Error::BadRequest(format!("{a:?} is not a multiaddr: {e}")))?;
            if peerpack_net::peer_id_of(&m).is_none() {
                return Err(Error::BadRequest(
                    peerpack_net::Error::MissingPeerId(m).to_string(),
                ));
            }
            if !self.policy.allows(&m) {
                return Err(Error::BadRequest(
                    peerpack_net::Error::AddressNotAllowed {
                        addr: m,
                        policy: self.policy,
                    }
                    .to_string(),
                ));
            }
            parsed.push(m);
        }
        // Every address at once; each answers when connected, refused or timed out.
        let tries = parsed.into_iter().map(|m| async move {
            let peer = peerpack_net::peer_id_of(&m)
                .map(|p| p.to_string())
                .unwrap_or_default();
            match self
                .net
                .connect(m.clone(), crate::health::DIAL_TIMEOUT)
                .await
            {
                Ok(p) => Ok(Dialled {
                    address: m.to_string(),
                    peer_id: p.to_string(),
                    connected: true,
                    error: None,
                }),
                Err(e @ (peerpack_net::Error::Connect { .. } | peerpack_net::Error::Dial(_))) => {
                    Ok(Dialled {
                        address: m.to_string(),
                        peer_id: peer,
                        connected: false,
                        error: Some(e.to_string()),
                    })
                }
                Err(e) => Err(Error::from(e)),
            }
        });
        futures::future::join_all(tries).await.into_iter().collect()
    }
}
