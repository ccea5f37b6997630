//! How a failed command ends: the exit status, and the error code printed with `--json`.
//! The one place that sorts failures; scripts can tell them apart without reading messages.
//!
//! | status | code | when |
//! |---|---|---|
//! | 1 | `failed` | anything else: a local error (a bad manifest, a file that cannot be written), a fault inside the node (`internal`) |
//! | 2 | | invalid usage (clap prints it) |
//! | 3 | `bad_request` | the node refused the input (a bad name, key, address or body) |
//! | 4 | `not_found` | no such package, version or peer |
//! | 5 | `conflict`, `unsafe_archive` | it conflicts with what the node holds (a name owned by another key, a contested name, a changed version, an unsafe archive) |
//! | 6 | `unreachable`, `unavailable` | no node answers, or the network could not do it now |
//! | 7 | `unauthorized`, `forbidden` | the node does not take orders from this caller |
//! | 130 | `cancelled` | Ctrl-C: the install was cancelled (or left without waiting) |

use peerpack_api::ClientError;

/// The exit status and error code for `err`.
pub fn classify(err: &anyhow::Error) -> (u8, &'static str) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return match e {
                ClientError::Api { code, .. } => match code.as_str() {
                    "bad_request" => (3, "bad_request"),
                    "not_found" => (4, "not_found"),
                    "conflict" => (5, "conflict"),
                    "unsafe_archive" => (5, "unsafe_archive"),
                    "unavailable" => (6, "unavailable"),
                    "unauthorized" => (7, "unauthorized"),
                    "forbidden" => (7, "forbidden"),
                    "cancelled" => (130, "cancelled"),
                    _ => (1, "failed"),
                },
                ClientError::Unreachable { .. }
                | ClientError::Request { .. }
                | ClientError::Gone { .. } => (6, "unreachable"),
                ClientError::BadUrl { .. }
                | ClientError::BadToken(_)
                | ClientError::BadSegment(_) => (3, "bad_request"),
                _ => (1, "failed"),
            };
        }
        if cause.downcast_ref::<NoNode>().is_some() {
            return (6, "unreachable");
        }
        // A config file, environment variable or flag that is not a valid setting.
        if cause
            .downcast_ref::<peerpack_node::config::Error>()
            .is_some()
        {
            return (3, "bad_request");
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return (130, "cancelled");
        }
    }
    (1, "failed")
}

/// The user pressed Ctrl-C and did not wait for the node's answer.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; the node finishes or cancels the install on its own")]
pub struct Interrupted;

/// No node runs with the data directory, and no `--api` names one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoNode(pub String);

/// A refusal the CLI decides itself, as a node's `conflict` (exit 5).
pub fn refused(message: String) -> anyhow::Error {
    ClientError::Api {
        status: 409,
        code: "conflict".to_owned(),
        message,
    }
    .into()
}

/// A failure the CLI finds itself but that means what a node's `unavailable` means: the
/// network could not do it (exit 6).
pub fn unreachable(message: String) -> anyhow::Error {
    ClientError::Api {
        status: 503,
        code: "unavailable".to_owned(),
        message,
    }
    .into()
}

/// A failure the CLI finds itself but that means what a node's `not_found` means.
pub fn not_found(message: String) -> anyhow::Error {
    ClientError::Api {
        status: 404,
        code: "not_found".to_owned(),
        message,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_codes_map_to_distinct_statuses() {
        let api = |code: &str| {
            anyhow::Error::from(ClientError::Api {
                status: 0,
                code: code.to_owned(),
                message: "m".to_owned(),
            })
            .context("while doing something")
        };
        assert_eq!(classify(&api("bad_request")), (3, "bad_request"));
        assert_eq!(classify(&api("not_found")), (4, "not_found"));
        assert_eq!(classify(&api("conflict")), (5, "conflict"));
        assert_eq!(classify(&api("unavailable")), (6, "unavailable"));
        assert_eq!(classify(&api("forbidden")), (7, "forbidden"));
        assert_eq!(classify(&api("internal")), (1, "failed"));
        assert_eq!(classify(&anyhow::anyhow!("local")), (1, "failed"));
        assert_eq!(
            classify(&anyhow::Error::from(NoNode("none".into()))),
            (6, "unreachable")
        );
    }
}
