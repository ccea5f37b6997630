//! Who may call the API: requests must name a loopback `Host`; calls that change something
//! must come from the same origin and carry the node's API token (see docs/API.md).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use crate::context::Context;
use crate::error::Error;

/// Whether `host` (a `Host` header value or an origin's authority: a name or address with an
/// optional port) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuse what a web page could send. A `Host` that is not a loopback name or address is how
/// DNS rebinding reaches a local server, so it gets 403 on every request. A request that
/// changes something and carries an `Origin` (every browser sends one with such requests) must
/// come from the API's own origin: a cross-origin form or `fetch` gets 403.
///
/// A request that changes something must also carry the data directory's API token, as
/// `Authorization: Bearer TOKEN` or as the cookie `peerpack_token=TOKEN`. On the web page's
/// own actions (`/ui/…`) an open session of the operator, sent as `Authorization: Bearer
/// SESSION` by the page's script, stands for it (see [`crate::web::operator`]). Without
/// either, 401.
pub(super) async fn same_host_only(
    State(inner): State<Arc<Context>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, Error> {
    use axum::http::{Method, header};
    // A refusal of a web page is a page; of the API, its JSON error.
    let path = req.uri().path();
    let page = !path.starts_with("/v1/") && path != "/metrics";
    let refuse = |e: Error| -> Result<Response, Error> {
        if page {
            Ok(crate::web::error_page(&e))
        } else {
            Err(e)
        }
    };
    let headers = req.headers();
    let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or(""));
    if let Some(host) = host
        && !is_loopback_host(host)
    {
        return refuse(Error::Forbidden(format!(
            "the API answers only requests addressed to a loopback host, not {host:?}"
        )));
    }
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    // Browsers say where a request comes from (Fetch Metadata). From another site, or from
    // another port of this one, only a top-level visit of the web page is served: a page
    // elsewhere must not make this node read the DHT, score peers or hand over data through
    // an `<img>`, a `<script>` or a `fetch`, none of which needs the token for a GET.
    if let Some(site) = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"))
        && !matches!(site, "same-origin" | "none")
    {
        let navigate = headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v.as_bytes() == b"navigate");
        if !(reads && navigate && page) {
            return refuse(Error::Forbidden(format!(
                "a {site} request refused: other sites may only link to this node's web page, not use its API"
            )));
        }
    }
    if !reads && let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            (Some(a), None) => is_loopback_host(a),
            (None, _) => false,
        };
        if !same {
            return refuse(Error::Forbidden(format!(
                "cross-origin request from {origin:?} refused: the API takes orders only from its own origin"
            )));
        }
    }
    if !reads {
        let bearer = crate::web::operator::bearer(headers);
        let cookie = crate::web::operator::cookie(headers, "peerpack_token");
        // An open session of the operator's web page stands for the token on the page's own
        // actions (`/ui/…`, see `web::operator`), and nowhere else: not the API.
        let session =
            path.starts_with("/ui/") && crate::web::operator::is_operator(&inner, headers);
        match bearer.or(cookie) {
            _ if session => {}
            None => {
                return refuse(Error::Unauthorized(
                    "this call needs the node's API token: send `Authorization: Bearer TOKEN` with the token in DATA_DIR/api-token (the peerpack CLI does this itself)".into(),
                ));
            }
            Some(t) if !same_secret(t.trim(), inner.api_token()) => {
                return refuse(Error::Unauthorized(
                    "wrong API token: use the one in this node's DATA_DIR/api-token".into(),
                ));
            }
            Some(_) => {}
        }
    }
    let mut resp = next.run(req).await;
    // Nothing here is for other origins to embed or sniff.
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-resource-policy",
        axum::http::HeaderValue::from_static("same-origin"),
    );
    Ok(resp)
}

/// Compare secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:4001",
            "127.8.9.1:80",
            "localhost",
            "LOCALHOST:3000",
            "[::1]",
            "[::1]:4001",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:4001",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:80",
            "[::2]:80",
            "",
            "0.0.0.0:80",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
