//! The node's operator on the web page: install and pin from a package's page.
//!
//! A page opened by anyone is read-only. The operator signs in with `peerpack ui`, which asks
//! the API (with the token in `DATA_DIR/api-token`) for a sign-in link: `/ui/login?code=CODE`,
//! where CODE is random, single use, and good for [`CODE_TTL`]. The page that link opens holds
//! a new session secret, which the page's script keeps in the browser's `localStorage` for
//! this origin and sends as `Authorization: Bearer SECRET` with the operator's forms. The
//! access layer takes an open session in place of the API token for these actions (`/ui/…`)
//! only, never for the API (see [`crate::api`]). A session lasts [`SESSION_TTL`] at most.
//!
//! Not a cookie: a browser sends a host's cookies to every port of it, so a cookie for this
//! node on 127.0.0.1 would also go to any other server on 127.0.0.1, another local user's
//! among them, which could then replay it here. `localStorage` is kept per origin (scheme,
//! host and port): no other port's page can read it, and no request carries it by itself.
//!
//! Sessions live in the node's memory: a restart, or `POST /ui/logout`, ends them. At most
//! [`MAX_SESSIONS`] are kept; a new one ends the oldest.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use peerpack_api::{DEFAULT_INSTALL_DIR, LOCK_FILE, Lockfile};

use crate::context::Context;
use crate::error::Error;

/// How long a sign-in link may wait to be followed.
pub const CODE_TTL: Duration = Duration::from_secs(120);
/// How long a session lasts, used or not.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 16;
/// Sign-in codes waiting at most.
const MAX_CODES: usize = 16;

/// Sign-in codes waiting, and the sessions open.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    /// Codes not yet used, with when each was made, oldest first.
    codes: VecDeque<(String, Instant)>,
    /// Session secrets, with when each was opened, oldest first.
    sessions: VecDeque<(String, Instant)>,
}

/// 32 random bytes as hex.
fn secret() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("no randomness for a secret: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compare secrets in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// A new sign-in code.
    pub fn new_code(&self) -> Result<String, Error> {
        let code = secret()?;
        let mut open = peerpack_core::sync::lock(&self.inner);
        open.codes.retain(|(_, at)| at.elapsed() < CODE_TTL);
        while open.codes.len() >= MAX_CODES {
            open.codes.pop_front();
        }
        open.codes.push_back((code.clone(), Instant::now()));
        Ok(code)
    }

    /// Use `code` (once) and open a session; its secret, or `None` when the code is unknown,
    /// used or expired.
    fn sign_in(&self, code: &str) -> Result<Option<String>, Error> {
        let mut open = peerpack_core::sync::lock(&self.inner);
        open.codes.retain(|(_, at)| at.elapsed() < CODE_TTL);
        let Some(at) = open.codes.iter().position(|(c, _)| same(c, code)) else {
            return Ok(None);
        };
        open.codes.remove(at);
        let session = secret()?;
        open.sessions.retain(|(_, at)| at.elapsed() < SESSION_TTL);
        while open.sessions.len() >= MAX_SESSIONS {
            open.sessions.pop_front();
        }
        open.sessions.push_back((session.clone(), Instant::now()));
        Ok(Some(session))
    }

    /// Whether `secret` is an open session.
    pub fn is_open(&self, secret: &str) -> bool {
        // Every entry is compared, so the time taken says nothing about which one matched.
        peerpack_core::sync::lock(&self.inner)
            .sessions
            .iter()
            .fold(false, |found, (s, at)| {
                (same(s, secret) & (at.elapsed() < SESSION_TTL)) | found
            })
    }

    fn close(&self, secret: &str) {
        peerpack_core::sync::lock(&self.inner)
            .sessions
            .retain(|(s, _)| !same(s, secret));
    }
}

/// The value of the cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::trim)
}

/// The bearer credential of a request, if it sends one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether the request comes from the signed-in operator: it carries an open session.
pub fn is_operator(inner: &Context, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|s| inner.web.sessions.is_open(s))
}

/// The query of `/ui/login`.
#[derive(Debug, serde::Deserialize)]
pub struct Login {
    code: String,
}

/// `GET /ui/login?code=CODE`: open a session, and answer a page that hands its secret to the
/// page's script, which keeps it and goes on to the front page.
pub(super) async fn login(
    State(inner): State<Arc<Context>>,
    headers: HeaderMap,
    q: Result<Query<Login>, QueryRejection>,
) -> Response {
    // A browser's prefetch or a link preview must not use the one-time code up.
    if headers
        .get("sec-purpose")
        .or_else(|| headers.get("purpose"))
        .is_some_and(|v| v.as_bytes().windows(8).any(|w| w == b"prefetch"))
    {
        return StatusCode::NO_CONTENT.into_response();
    }
    let Ok(Query(Login { code })) = q else {
        return super::error_page(&Error::BadRequest(
            "a sign-in link carries ?code=…; run `peerpack ui` for one".into(),
        ));
    };
    match inner.web.sessions.sign_in(&code) {
        Ok(Some(session)) => super::html(StatusCode::OK, super::pages::signed_in(&session)),
        Ok(None) => super::error_page(&Error::Forbidden(
            "this sign-in link was used already or has expired; run `peerpack ui` for a new one"
                .into(),
        )),
        Err(e) => super::error_page(&e),
    }
}

/// `POST /ui/logout`: end this session.
pub(super) async fn logout(State(inner): State<Arc<Context>>, headers: HeaderMap) -> Response {
    if let Some(s) = bearer(&headers) {
        inner.web.sessions.close(s);
    }
    super::html(
        StatusCode::OK,
        super::pages::plain_page(
            "Signed out",
            html! { h1 { "Signed out" } p { "This browser no longer acts for the node's operator. " a href="/" { "Front page" } } },
        ),
    )
}

/// The form of `/ui/install`.
#[derive(Debug, serde::Deserialize)]
pub struct InstallForm {
    /// `NAME` or `NAME@REQ`.
    package: String,
    /// The project directory, absolute: the package goes into its `peerpack_packages/`, and
    /// its `peerpack.lock` is read and written, as `peerpack install` run there would.
    project: String,
}

/// The form of `/ui/pin`.
#[derive(Debug, serde::Deserialize)]
pub struct PinForm {
    /// `NAME` or `NAME@VERSION`.
    package: String,
}

/// Refuse a change from anyone but the operator: an open session, or the API token itself.
/// The access layer already demanded one of them; this checks again where it matters most.
fn operator_only(inner: &Context, headers: &HeaderMap) -> Result<(), Error> {
    let token = bearer(headers).is_some_and(|t| same(t, inner.api_token()));
    if token || is_operator(inner, headers) {
        Ok(())
    } else {
        Err(Error::Unauthorized(
            "only the node's operator installs from the page: run `peerpack ui` and follow its link"
                .into(),
        ))
    }
}

/// `POST /ui/install`: install a package into a project, as `peerpack install NAME` run in
/// the project's directory would: into `PROJECT/peerpack_packages/NAME`, with the project's
/// `peerpack.lock` read and written back (atomically, and only when it changed).
pub(super) async fn install(
    State(inner): State<Arc<Context>>,
    headers: HeaderMap,
    form: Result<Form<InstallForm>, FormRejection>,
) -> Response {
    let result = async {
        operator_only(&inner, &headers)?;
        let Form(form) =
            form.map_err(|e| Error::BadRequest(format!("bad form: {}", e.body_text())))?;
        let project = PathBuf::from(form.project.trim());
        if !project.is_absolute() || !project.is_dir() {
            return Err(Error::BadRequest(format!(
                "the project must be an existing directory, named by its absolute path, not {:?}",
                form.project
            )));
        }
        let lock_path = project.join(LOCK_FILE);
        let text = match tokio::fs::read_to_string(&lock_path).await {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::BadRequest(format!(
                    "cannot read {}: {e}",
                    lock_path.display()
                )));
            }
        };
        if let Some(text) = &text {
            let lock = Lockfile::parse(text)
                .map_err(|e| Error::BadRequest(format!("{}: {e}", lock_path.display())))?;
            if let Some(to) = lock.to.as_deref().filter(|t| *t != DEFAULT_INSTALL_DIR) {
                return Err(Error::Conflict(format!(
                    "{} installs into {to}; run `peerpack install {}` in {} instead",
                    lock_path.display(),
                    form.package.trim(),
                    project.display()
                )));
            }
        }
        let request = peerpack_api::InstallRequest {
            packages: vec![form.package.trim().to_owned()],
            to: project.join(DEFAULT_INSTALL_DIR),
            lock: text.clone(),
            ..Default::default()
        };
        let report = inner
            .install(
                request,
                Arc::new(crate::install::InstallProgress::default()),
            )
            .await?;
        let mut lock = Lockfile::parse(&report.lock)
            .map_err(|e| Error::Internal(format!("the new lock does not parse: {e}")))?;
        lock.to = Some(DEFAULT_INSTALL_DIR.to_owned());
        let new = lock.to_text();
        if text.as_deref() != Some(new.as_str()) {
            peerpack_core::fs::atomic_write(&lock_path, new.as_bytes()).map_err(|e| {
                Error::Internal(format!("cannot write {}: {e}", lock_path.display()))
            })?;
        }
        Ok::<_, Error>(super::pages::installed(&report, &lock_path))
    }
    .await;
    super::answer(result)
}

/// `POST /ui/pin`: keep a version's archive (`peerpack pin`).
pub(super) async fn pin(
    State(inner): State<Arc<Context>>,
    headers: HeaderMap,
    form: Result<Form<PinForm>, FormRejection>,
) -> Response {
    let result = async {
        operator_only(&inner, &headers)?;
        let Form(form) =
            form.map_err(|e| Error::BadRequest(format!("bad form: {}", e.body_text())))?;
        let pin = inner.pin(form.package.trim()).await?;
        Ok::<_, Error>(html! {
            h1 { "Pinned" }
            p { "This node keeps the archive of " a href={ "/packages/" (pin.name) } { (pin.name) } " " (pin.version) " until it is unpinned (" code { "peerpack unpin " (pin.name) "@" (pin.version) } ")." }
        })
    }
    .await;
    super::answer(result.map(|main| super::pages::plain_page("Pinned", main)))
}
