//! Names and owners on a running node: pins (`trust`), this node's own curator list
//! (`curate`), the trusted curators' lists, and the names in dispute that search marks.
//! The rules themselves live in [`peerpack_store::names`].

use std::sync::Arc;

use peerpack_core::{CuratorList, PackageName, PublicKey, VersionReq};
use peerpack_net::protocol::{self, Topic};
use peerpack_store::db::now;
use peerpack_store::{Claim, NameState};

use crate::context::Context;
use crate::error::Error;
use crate::lookup::{self, Lookup};

pub use peerpack_api::{ClaimView, CuratorView, TrustView};

/// A claim as the API shows it.
pub fn claim_view(c: &Claim) -> ClaimView {
    ClaimView {
        publisher: c.publisher.to_string(),
        seq: c.seq,
        versions: c.versions.iter().map(ToString::to_string).collect(),
        peers: c.peers.clone(),
        first_seen: c.first_seen,
        last_seen: c.last_seen,
    }
}

/// The error for installing or showing a contested name: every claimant, and how to choose.
pub fn contested(name: &PackageName, claims: &[Claim]) -> Error {
    let mut text = format!(
        "{name} is contested: {} keys claim it and nothing this node trusts decides between them:",
        claims.len()
    );
    for c in claims {
        let versions: Vec<String> = c.versions.iter().map(ToString::to_string).collect();
        text.push_str(&format!(
            "\n  {} (index seq {}, versions {}; served by {})",
            c.publisher,
            c.seq,
            if versions.is_empty() {
                "none seen".into()
            } else {
                versions.join(", ")
            },
            if c.peers.is_empty() {
                "no peer recorded".into()
            } else {
                c.peers.join(", ")
            }
        ));
    }
    text.push_str(&format!(
        "\nChoose the key you trust: `peerpack install {name} --owner KEY` or `peerpack trust {name} KEY`; or name a curator you trust under [trust] curators."
    ));
    Error::Conflict(text)
}

/// Parse `NAME` or `NAME@REQ`.
pub fn parse_spec(spec: &str) -> Result<(PackageName, Option<VersionReq>), Error> {
    let (name, req) = match spec.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    };
    let name = PackageName::new(name).map_err(|e| Error::BadRequest(format!("{spec:?}: {e}")))?;
    let req = req
        .map(|r| {
            VersionReq::parse(r).map_err(|e| {
                Error::BadRequest(format!(
                    "{spec:?}: {r:?} is not a version requirement ({e}); try NAME@1.2, NAME@^1.2.3 or NAME@=1.2.3"
                ))
            })
        })
        .transpose()?;
    Ok((name, req))
}

pub(crate) fn parse_name(name: &str) -> Result<PackageName, Error> {
    PackageName::new(name).map_err(|e| Error::BadRequest(format!("{name:?}: {e}")))
}

/// Parse a publisher key given by a user.
pub fn parse_key(key: &str) -> Result<PublicKey, Error> {
    key.parse().map_err(|e| {
        Error::BadRequest(format!(
            "{key:?} is not a publisher key ({e}); keys look like ed25519:<64 hex digits>, as `peerpack info NAME` shows them"
        ))
    })
}

impl Context {
    /// Pin `key` as `name`'s owner; then, if the catalogue has none of its versions, ask the
    /// DHT for them.
    #[tracing::instrument(skip(self))]
    pub async fn trust(self: &Arc<Self>, name: &str, key: &str) -> Result<TrustView, Error> {
        let name = parse_name(name)?;
        let key = parse_key(key)?;
        let (n, net) = (name.clone(), self.net.clone());
        self.catalogue
            .with_store(move |s| {
                if s.trust(&n, &key)? {
                    crate::catalogue::replace_dht(&net, s, std::slice::from_ref(&n))?;
                }
                Ok(())
            })
            .await?;
        self.catalogue.refresh_names(vec![name.clone()]).await;
        if !lookup::known(self, &name).await? {
            match lookup::lookup(self, &name).await {
                Ok(Lookup::Found | Lookup::Missing) => {}
                Ok(Lookup::Contested(_)) => {
                    return Err(Error::Internal(format!(
                        "{name} is still contested after pinning its owner"
                    )));
                }
                Err(e) => tracing::info!(%name, error = %e, "no DHT lookup after trust"),
            }
        }
        self.trusted()
            .await?
            .into_iter()
            .find(|t| t.name == name.as_str())
            .ok_or_else(|| Error::Internal(format!("the pin on {name} was not kept")))
    }

    /// Remove the pin on `name`. Returns whether there was one.
    pub async fn untrust(self: &Arc<Self>, name: &str) -> Result<bool, Error> {
        let name = parse_name(name)?;
        let (n, net) = (name.clone(), self.net.clone());
        let removed = self
            .catalogue
            .with_store(move |s| {
                let removed = s.db.untrust(&n)?;
                s.refresh(std::slice::from_ref(&n))?;
                crate::catalogue::replace_dht(&net, s, std::slice::from_ref(&n))?;
                Ok(removed)
            })
            .await?;
        self.catalogue.refresh_names(vec![name]).await;
        Ok(removed)
    }

    /// Every pinned owner, in name order.
    pub async fn trusted(self: &Arc<Self>) -> Result<Vec<TrustView>, Error> {
        self.catalogue
            .with_store(|s| {
                let mut out = Vec::new();
                for (name, owner, at) in s.db.trusted()? {
                    let versions_known =
                        s.db.versions(&name)?
                            .iter()
                            .filter(|r| r.publisher == owner)
                            .count();
                    out.push(TrustView {
                        name: name.to_string(),
                        owner: owner.to_string(),
                        trusted_at: at,
                        versions_known,
                    });
                }
                Ok(out)
            })
            .await
    }

    /// The ownership state of `name` and the claims by other keys.
    pub async fn name_state(
        self: &Arc<Self>,
        name: &PackageName,
    ) -> Result<(NameState, Vec<Claim>), Error> {
        let n = name.clone();
        self.catalogue
            .with_store(move |s| Ok((s.db.name_state(&n)?, s.db.claims(&n)?)))
            .await
    }

    /// This node's own curator list.
    pub async fn own_curator_list(self: &Arc<Self>) -> Result<CuratorView, Error> {
        let me = self.publisher.public();
        let list = self
            .catalogue
            .with_store(move |s| Ok(s.db.curator_list(&me)?))
            .await?;
        Ok(self.curator_view(list.as_ref(), 0))
    }

    fn curator_view(&self, list: Option<&CuratorList>, dht_peers: usize) -> CuratorView {
        let me = self.publisher.public();
        CuratorView {
            curator: me.to_string(),
            seq: list.map_or(0, |l| l.seq),
            entries: list
                .map(|l| {
                    l.entries
                        .iter()
                        .map(|(n, k)| (n.to_string(), k.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            trusted_here: self.curators.contains(&me),
            dht_peers,
        }
    }

    /// Change this node's own curator list (signed with its publisher key): vouch for the
    /// owners in `add`, drop the names in `remove`, then store it, put it in the DHT and
    /// gossip it.
    #[tracing::instrument(skip(self))]
    pub async fn curate(
        self: &Arc<Self>,
        add: Vec<(String, String)>,
        remove: Vec<String>,
    ) -> Result<CuratorView, Error> {
        let mut adds = Vec::with_capacity(add.len());
        for (name, key) in &add {
            adds.push((parse_name(name)?, parse_key(key)?));
        }
        let removes = remove
            .iter()
            .map(|n| parse_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        if adds.is_empty() && removes.is_empty() {
            return Err(Error::BadRequest(
                "give at least one NAME=KEY to vouch for or one NAME to drop".into(),
            ));
        }
        let (key, net) = (self.publisher.clone(), self.net.clone());
        let list = self
            .catalogue
            .with_store(move |s| {
                let old = s.db.curator_list(&key.public())?;
                let mut entries = old.as_ref().map(|l| l.entries.clone()).unwrap_or_default();
                for (name, owner) in adds {
                    entries.insert(name, owner);
                }
                for name in &removes {
                    entries.remove(name);
                }
                // Unix seconds at least, so that a curator whose database was lost does not
                // start again below the list that peers hold.
                let seq = old.map_or(1, |l| l.seq + 1).max(now().max(0) as u64);
                let list = CuratorList::sign(entries, seq, now().max(0) as u64, &key)
                    .map_err(|e| Error::BadRequest(e.to_string()))?;
                let (_, changed) = s.insert_curator_list(&list)?;
                crate::catalogue::replace_dht(&net, s, &changed)?;
                Ok((list, changed))
            })
            .await?;
        let (list, changed) = list;
        self.catalogue.refresh_names(changed.clone()).await;
        if self.curators.contains(&list.curator) {
            lookup::look_up_new_owners(self, changed);
        }
        let bytes = list.encode();
        let (put, announced) = futures::join!(
            self.net
                .put_record(protocol::curator_key(&list.curator), bytes.clone()),
            self.net.announce_on(Topic::Curators, bytes),
        );
        let dht_peers = put.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "DHT put of the curator list failed");
            0
        });
        if let Err(e) = announced {
            tracing::info!(error = %e, "curator list not gossiped; peers will read it from the DHT");
        }
        Ok(self.curator_view(Some(&list), dht_peers))
    }
}
