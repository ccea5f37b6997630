// peerpack's web page: progressive enhancement. Every page reads without this script; with
// it, the install command has a copy button, search results come as one types and follow the
// catalogue as packages arrive, the network figures update live, and the signed-in operator
// can install and pin. It writes only text (textContent) and nodes of this node's own pages, parsed from its
// own answers.
"use strict";
(function () {
  // Copy buttons: <button data-copy="ID" hidden> copies the text of element ID.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", () => {
      navigator.clipboard.writeText(source.textContent).then(
        () => {
          button.textContent = "Copied";
          setTimeout(() => { button.textContent = "Copy"; }, 1500);
        },
        () => { button.textContent = "Copy failed"; },
      );
    });
  }

  // The operator's session: a secret the sign-in page hands over, kept for this origin only
  // (localStorage is per scheme, host and port; a cookie would go to every port of the host).
  const KEY = "peerpack-session";
  const handed = document.getElementById("session");
  if (handed && handed.dataset.session) {
    localStorage.setItem(KEY, handed.dataset.session);
    location.replace("/");
    return;
  }
  const session = localStorage.getItem(KEY);
  const operator = document.getElementById("operator");
  if (session && operator) {
    operator.hidden = false;
    const readOnly = document.getElementById("read-only");
    if (readOnly) readOnly.hidden = true;
    // The forms go with the session; the answer, a page of this node, replaces this one's
    // main part.
    for (const form of operator.querySelectorAll("form")) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        for (const b of form.querySelectorAll("button")) b.disabled = true;
        let answer;
        try {
          answer = await fetch(form.action, {
            method: "POST",
            credentials: "omit",
            headers: { "Authorization": "Bearer " + session },
            body: new URLSearchParams(new FormData(form)),
          });
        } catch (e) {
          for (const b of form.querySelectorAll("button")) b.disabled = false;
          return;
        }
        if (answer.status === 401) localStorage.removeItem(KEY);
        if (form.action.endsWith("/ui/logout")) localStorage.removeItem(KEY);
        const page = new DOMParser().parseFromString(await answer.text(), "text/html");
        const fresh = page.querySelector("main");
        const old = document.querySelector("main");
        if (fresh && old) old.replaceWith(document.importNode(fresh, true));
        const title = page.querySelector("title");
        if (title) document.title = title.textContent;
      });
    }
  }

  // The front page's results, fetched again when the search changes or the catalogue does.
  const results = document.getElementById("live-results");
  let refreshing = false;
  let again = false;

  // Fetch this page's address again and put its fresh results in place of the old ones.
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const answer = await fetch(location.href, { credentials: "same-origin" });
      if (!answer.ok) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("live-results");
      const old = document.getElementById("live-results");
      if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    } catch (e) {
      // The node went away; the next change tries again.
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  // Instant results: typing in the search box shows the results for what is typed so far
  // (the address follows, so a reload or a shared link shows the same).
  const box = document.getElementById("q");
  if (box && results) {
    let timer = null;
    box.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const url = new URL(location.href);
        url.searchParams.set("q", box.value);
        history.replaceState(null, "", url);
        refresh();
      }, 150);
    });
  }

  // Live updates: /live sends a `status` event whenever the node's figures change.
  const figures = document.querySelectorAll("[data-live]");
  if ((!figures.length && !results) || !window.EventSource) return;
  let catalogue = null;

  const live = new EventSource("/live");
  live.addEventListener("status", (event) => {
    let status;
    try { status = JSON.parse(event.data); } catch (e) { return; }
    for (const element of figures) {
      const value = status[element.dataset.live];
      if (value !== undefined) element.textContent = String(value);
    }
    if (results) {
      if (catalogue !== null && status.catalogue !== catalogue) refresh();
      catalogue = status.catalogue;
    }
  });
})();
