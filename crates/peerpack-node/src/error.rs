//! Node errors, sorted by what the caller can do about them.
//!
//! An [`Error`] is either something the caller can act on, with a message for the user
//! (a bad request, a conflict, nothing found, an unsafe archive, a refused call, the network
//! unable to do it now), or a fault below the node (the store, the network layer, the disk, a
//! task) carried with its typed cause as [`std::error::Error::source`]. [`Error::kind`] sorts
//! both; it is the one place that decides how an error is answered: the HTTP status in
//! [`crate::api`] and the `code` every client sees come from it.

/// What the caller can do about an error. Decides the HTTP status and the API's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Fix the request (bad manifest, bad address, bad query).
    BadRequest,
    /// The request conflicts with what is stored.
    Conflict,
    /// Nothing known by that name or id.
    NotFound,
    /// The archive is signed and intact, but the extractor refuses it.
    UnsafeArchive,
    /// The call needs the API token.
    Unauthorized,
    /// The API takes no orders from there.
    Forbidden,
    /// The network could not do it now; try again.
    Unavailable,
    /// The caller cancelled it.
    Cancelled,
    /// A fault inside the node; see its log.
    Internal,
}

impl Kind {
    /// The stable machine-readable code the API answers.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Conflict => "conflict",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::UnsafeArchive => "unsafe_archive",
            Self::Unavailable => "unavailable",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }
}

/// An error from a node operation. The message is for the user; [`Error::kind`] says what
/// kind of failure it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is invalid (bad manifest, bad address, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with what is stored (name owned by another key, version already
    /// published with other content).
    #[error("{0}")]
    Conflict(String),
    /// Nothing known by that name or id.
    #[error("{0}")]
    NotFound(String),
    /// An archive that matches its signed content id, but that the extractor refuses: the
    /// publisher published something unsafe.
    #[error("{0}")]
    UnsafeArchive(String),
    /// A call that changes something came without the API token.
    #[error("{0}")]
    Unauthorized(String),
    /// The request comes from where the API does not take orders (a web page, a name that is
    /// not loopback).
    #[error("{0}")]
    Forbidden(String),
    /// The network could not do it now.
    #[error("{0}")]
    Unavailable(String),
    /// The caller cancelled the work.
    #[error("{0}")]
    Cancelled(String),
    /// A fault inside the node that has no typed cause (a broken invariant, a stopped task).
    #[error("{0}")]
    Internal(String),
    /// The store refused a record (bad signature, another key's name, a changed version).
    #[error(transparent)]
    Refused(peerpack_core::record::RecordError),
    /// The store failed.
    #[error(transparent)]
    Store(peerpack_store::Error),
    /// The network layer failed or refused (an address it will not dial is a
    /// [`Kind::BadRequest`]).
    #[error(transparent)]
    Net(#[from] peerpack_net::Error),
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A task the work ran on failed (it panicked or was cancelled).
    #[error("{context} failed: {source}")]
    Task {
        /// Which work.
        context: &'static str,
        /// The cause.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> Kind {
        match self {
            Self::BadRequest(_) => Kind::BadRequest,
            Self::Conflict(_) => Kind::Conflict,
            Self::NotFound(_) => Kind::NotFound,
            Self::UnsafeArchive(_) => Kind::UnsafeArchive,
            Self::Unauthorized(_) => Kind::Unauthorized,
            Self::Forbidden(_) => Kind::Forbidden,
            Self::Unavailable(_) => Kind::Unavailable,
            Self::Cancelled(_) => Kind::Cancelled,
            Self::Internal(_) | Self::Io { .. } | Self::Task { .. } => Kind::Internal,
            Self::Refused(_) => Kind::Conflict,
            Self::Store(_) => Kind::Internal,
            Self::Net(
                peerpack_net::Error::MissingPeerId(_)
                | peerpack_net::Error::AddressNotAllowed { .. }
                | peerpack_net::Error::DialSelf(_),
            ) => Kind::BadRequest,
            Self::Net(_) => Kind::Unavailable,
        }
    }

    /// A stable machine-readable code ([`Kind::code`]).
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// An I/O error, with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A failed task, with which work it ran.
    pub fn task(context: &'static str, source: tokio::task::JoinError) -> Self {
        Self::Task { context, source }
    }
}

/// `e` and its causes on one line (`what: why: deeper why`), each cause once: for messages
/// whose source holds the part the user needs (the OS reason a file cannot be read).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

impl From<peerpack_store::Error> for Error {
    fn from(e: peerpack_store::Error) -> Self {
        match e {
            peerpack_store::Error::Db(peerpack_store::db::Error::Refused(r)) => Self::Refused(r),
            other => Self::Store(other),
        }
    }
}

impl From<peerpack_store::db::Error> for Error {
    fn from(e: peerpack_store::db::Error) -> Self {
        Self::from(peerpack_store::Error::Db(e))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn causes_are_joined_once() {
        let e = peerpack_core::archive::PackError::Io {
            path: "/p/peerpack.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        };
        assert_eq!(with_causes(&e), "/p/peerpack.toml: No such file");
        let twice = Error::io("cannot write /x", std::io::Error::other("denied"));
        assert_eq!(with_causes(&twice), "cannot write /x: denied");
    }

    #[test]
    fn faults_keep_their_cause_and_sort_by_kind() {
        let e = Error::io(
            "cannot write /x",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(e.to_string(), "cannot write /x: denied");
        assert_eq!(e.kind(), Kind::Internal);
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("denied")
        );

        let key = |b| peerpack_core::PublisherKey::from_secret_bytes(&[b; 32]).public();
        let refused = Error::from(peerpack_store::db::Error::Refused(
            peerpack_core::record::RecordError::WrongPublisher {
                name: peerpack_core::PackageName::new("x").unwrap(),
                owner: key(1),
                offered: key(2),
            },
        ));
        assert_eq!(refused.kind(), Kind::Conflict);
        assert!(
            refused.to_string().starts_with("`x` belongs to"),
            "{refused}"
        );
        assert_eq!(refused.code(), "conflict");

        let addr: peerpack_net::p2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert_eq!(
            Error::from(peerpack_net::Error::MissingPeerId(addr)).kind(),
            Kind::BadRequest
        );
        assert_eq!(
            Error::from(peerpack_net::Error::Stopped).kind(),
            Kind::Unavailable
        );
    }
}
