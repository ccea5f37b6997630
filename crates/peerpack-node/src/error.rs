//! Node errors, sorted by what the caller can do about them.

/// An error from a node operation. The variant decides the HTTP status; the message is for
/// the user.
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
    /// A fault inside the node (database, disk, a stopped task).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Conflict(_) => "conflict",
            Self::NotFound(_) => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::Unauthorized(_) => "unauthorized",
            Self::UnsafeArchive(_) => "unsafe_archive",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<peerpack_store::Error> for Error {
    fn from(e: peerpack_store::Error) -> Self {
        match e {
            peerpack_store::Error::Db(peerpack_store::db::Error::Refused(r)) => {
                Self::Conflict(r.to_string())
            }
            other => Self::Internal(format!("{other:#}")),
        }
    }
}

impl From<peerpack_store::db::Error> for Error {
    fn from(e: peerpack_store::db::Error) -> Self {
        Self::from(peerpack_store::Error::Db(e))
    }
}

impl From<peerpack_net::Error> for Error {
    fn from(e: peerpack_net::Error) -> Self {
        match e {
            peerpack_net::Error::MissingPeerId(_)
            | peerpack_net::Error::AddressNotAllowed { .. }
            | peerpack_net::Error::DialSelf(_) => Self::BadRequest(e.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
