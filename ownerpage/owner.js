// The owner page: sign in with a bearer token, list, create, renew, rotate
// and revoke license keys, download offline tokens, see a key's instances
// and free their seats. No framework. Everything the API
// returns is inserted with textContent, never parsed as HTML: instance names,
// URLs and metric names come from self-hosted instances and are untrusted.
(function () {
  "use strict";

  var PAGE_SIZE = 50;
  var TOKEN = "licensing.ownerToken";
  var ORG = "licensing.organization";
  var api = (document.querySelector('meta[name="licensing-api"]').content || "/api/v1/licensing").replace(/\/+$/, "");

  function $(id) { return document.getElementById(id); }

  var els = {
    who: $("who"), whoText: $("who-text"), signOut: $("sign-out"),
    error: $("error"), status: $("status"),
    signIn: $("sign-in"), signInForm: $("sign-in-form"), token: $("token"), org: $("org"),
    app: $("app"), createForm: $("create-form"), instanceName: $("instance-name"), create: $("create"),
    expiresOn: $("expires-on"), newKeyRotated: $("new-key-rotated"),
    newKey: $("new-key"), newKeyValue: $("new-key-value"), copy: $("copy"), copyStatus: $("copy-status"), newKeyDone: $("new-key-done"),
    refresh: $("refresh"), tz: $("tz"), empty: $("empty"), keys: $("keys"), more: $("more"),
    template: $("key-template"), instanceTemplate: $("instance-template")
  };

  var cursor = null; // the list's nextCursor, when the server pages
  var orgName = ""; // the signed-in organization's name, from the list of keys
  var queue = Promise.resolve(); // list loads run one after another

  // ---- storage: sessionStorage only (never a URL, a cookie or localStorage)

  function session() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }
  function credentials() {
    var s = session();
    if (!s) { return null; }
    var t = s.getItem(TOKEN);
    return t ? { token: t, org: s.getItem(ORG) || "" } : null;
  }
  function saveCredentials(token, org) {
    var s = session();
    if (!s) { return false; }
    s.setItem(TOKEN, token);
    if (org) { s.setItem(ORG, org); } else { s.removeItem(ORG); }
    return true;
  }
  function forget() {
    orgName = "";
    els.whoText.title = "";
    var s = session();
    if (s) { s.removeItem(TOKEN); s.removeItem(ORG); }
  }

  // ---- messages

  function showError(text) {
    els.error.textContent = text;
    els.error.hidden = !text;
  }
  function say(text) {
    els.status.textContent = text;
  }

  function plural(n, one, many) { return n === 1 ? one : many; }

  // A token and an organization id go in request headers, which a browser
  // builds only from Latin-1 text, and which the server reads as ASCII: so
  // both must be printable ASCII (a token without spaces). badChar names the
  // first character of s outside that set, or returns "".
  var NOT_IN_TOKEN = /[^\x21-\x7e]/u;
  var NOT_IN_ORG = /[^\x20-\x7e]/u;
  function badChar(s, allowed) {
    var m = allowed.exec(s);
    if (!m) { return ""; }
    var hex = m[0].codePointAt(0).toString(16).toUpperCase();
    while (hex.length < 4) { hex = "0" + hex; }
    if (/\s/u.test(m[0])) { return "a space or line break (U+" + hex + ")"; }
    if (/[\p{C}\p{Z}]/u.test(m[0])) { return "an invisible character (U+" + hex + ")"; }
    return "\u201c" + m[0] + "\u201d (U+" + hex + ")";
  }
  function orgProblem(org) {
    var bad = badChar(org, NOT_IN_ORG);
    return bad ? "The organization id cannot contain " + bad + ": an organization id is plain ASCII " +
      "(Latin letters without accents, digits and punctuation). Check it, or leave it empty for your default organization." : "";
  }

  // retryText turns a Retry-After header (seconds or an HTTP date) into words.
  function retryText(value) {
    var seconds = NaN;
    if (value && /^\s*\d+\s*$/.test(value)) {
      seconds = parseInt(value, 10);
    } else if (value) {
      var at = Date.parse(value);
      if (!isNaN(at)) { seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000)); }
    }
    if (isNaN(seconds)) { return "Wait a minute, then try again."; }
    if (seconds <= 1) { return "Try again in a second."; }
    if (seconds < 120) { return "Try again in " + seconds + " seconds."; }
    var minutes = Math.ceil(seconds / 60);
    return "Try again in " + minutes + " minutes (at " + formatTime(new Date(Date.now() + seconds * 1000)) + ").";
  }

  function sentence(text) {
    text = String(text || "").trim();
    if (!text) { return ""; }
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  // describe says in plain words what an API error means for the owner.
  function describe(err, doing) {
    var why = sentence(err.message);
    switch (err.status) {
      case -1:
        return "Something went wrong while " + doing + (why ? ": " + why : ".") + " Reload the page and try again.";
      case 0:
        return "Could not reach the licensing server while " + doing + ". Check your connection and try again.";
      case -2: // the browser refused to build the request: nothing was sent
        if (err.signOut) { return err.message; } // the saved credentials, said in full
        return "This browser refused to send the request while " + doing + (why ? " (" + why.replace(/\.$/, "") + ")" : "") +
          ". Nothing was sent. Reload the page and try again.";
      case 400:
        return "The server did not accept the request while " + doing + ": " + (why || "it was malformed.");
      case 401:
        return "Your token was not accepted (it is missing, wrong or no longer valid). Sign in again.";
      case 403:
        return "Not allowed while " + doing + ": " + (why || "your token may not manage this organization's keys.");
      case -3: // the answer did not come from the licensing API
        return "The page could not reach the licensing API at " + apiURL() + " while " + doing + ": " +
          err.message + " The API is mounted at another path: whoever runs this server sets APIBase " +
          "(ownerpage.Config.APIBase) to that path.";
      case 404:
        return "Not found while " + doing + ": " + (why || "it does not exist.") +
          (/organization/i.test(why) ? " Check the organization id you signed in with." : "");
      case 413:
        return "The request was too large while " + doing + ". Use a shorter instance name.";
      case 429:
        return "Too many requests while " + doing + ". " + retryText(err.retryAfter);
      default:
        if (err.status >= 500) {
          return "The licensing server failed while " + doing + " (status " + err.status + "). Try again later." + (why ? " It said: " + why : "");
        }
        return "Unexpected answer while " + doing + " (status " + err.status + ")." + (why ? " " + why : "");
    }
  }

  // ---- API

  // apiURL is where the page calls the API, as an absolute URL.
  function apiURL() {
    try { return new URL(api || "/", location.href).href.replace(/\/+$/, ""); } catch (e) { return api; }
  }

  // APIError is a failed call; signOut when the saved credentials
  // themselves are the problem.
  function APIError(status, message, retryAfter, signOut) {
    this.status = status;
    this.message = message || "";
    this.retryAfter = retryAfter || "";
    this.signOut = status === 401 || !!signOut;
  }

  // call sends one API request. It rejects with an APIError: the server's
  // status; 0 when the server could not be reached; -1 for an error answer
  // that is not JSON; -2 when the browser refused to build the request
  // (nothing was sent), with signOut set when the saved credentials are the
  // cause; -3 when what answered is not the licensing API (a 404 or 405
  // without the API's JSON error, the API's own 404 for a path it does not
  // have, or a success that is not JSON): APIBase is wrong.
  function call(method, path, body) {
    var c = credentials();
    if (!c) { return Promise.reject(new APIError(401, "")); }
    var problem = orgProblem(c.org);
    if (problem) { return Promise.reject(new APIError(-2, problem + " Sign in again.", "", true)); }
    if (badChar(c.token, NOT_IN_TOKEN)) {
      return Promise.reject(new APIError(-2, "The saved token contains spaces or characters a token cannot have. Sign in again.", "", true));
    }
    var headers = { "Authorization": "Bearer " + c.token, "Accept": "application/json" };
    if (c.org) { headers["X-Organization"] = c.org; }
    var init = { method: method, headers: headers, cache: "no-store", credentials: "omit", redirect: "error", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var req;
    try {
      req = new Request(api + path, init);
    } catch (e) { // fetch would reject with the same TypeError, as it does when the network fails
      return Promise.reject(new APIError(-2, String(e && e.message || e)));
    }
    return fetch(req).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        var apiError = data !== null && typeof data === "object" && typeof data.error === "string";
        if (!res.ok) {
          if ((res.status === 404 || res.status === 405) && (!apiError || data.error === "Not found.")) {
            throw new APIError(-3, method + " " + api + path.replace(/\?.*$/, "") + " answered " + res.status +
              (apiError ? " (a path the API does not have)." : " and not as the API does."));
          }
          var msg = apiError ? data.error : "";
          throw new APIError(res.status, msg, res.headers.get("Retry-After"));
        }
        if (data === null || typeof data !== "object") {
          throw new APIError(-3, method + " " + api + path.replace(/\?.*$/, "") + " answered " + res.status + " with something other than JSON.");
        }
        return data;
      });
    }, function () {
      throw new APIError(0, "");
    });
  }

  // fail shows err; a 401 also signs the owner out.
  function fail(err, doing) {
    if (!(err instanceof APIError)) { err = new APIError(-1, String(err && err.message || err)); }
    showError(describe(err, doing));
    say("");
    if (err.signOut) {
      var c = credentials();
      forget();
      render(true);
      if (c && err.status !== 401) { els.org.value = c.org; } // to correct it
    }
  }

  // ---- rendering

  var timeFormat = (function () {
    try { return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }); } catch (e) { return null; }
  })();

  function formatTime(d) {
    return timeFormat ? timeFormat.format(d) : d.toLocaleString();
  }

  function setTime(dd, iso, never) {
    dd.textContent = "";
    var d = iso ? new Date(iso) : null;
    if (!d || isNaN(d.getTime())) {
      dd.textContent = never;
      dd.classList.add("none");
      return;
    }
    var t = document.createElement("time");
    t.dateTime = iso;
    t.title = iso;
    t.textContent = formatTime(d);
    dd.appendChild(t);
  }

  // safeURL returns the URL when it is absolute http or https, else null.
  function safeURL(s) {
    if (typeof s !== "string") { return null; }
    try {
      var u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") ? u : null;
    } catch (e) {
      return null;
    }
  }

  function setText(dd, value, none) {
    if (typeof value === "string" && value !== "") {
      dd.textContent = value;
      dd.classList.remove("none");
    } else {
      dd.textContent = none;
      dd.classList.add("none");
    }
  }

  function renderMetrics(dd, metrics) {
    dd.textContent = "";
    var names = metrics && typeof metrics === "object" ? Object.keys(metrics).sort() : [];
    if (names.length === 0) {
      dd.textContent = "none reported";
      dd.classList.add("none");
      return;
    }
    var ul = document.createElement("ul");
    ul.className = "metric-list";
    names.forEach(function (name) {
      var li = document.createElement("li");
      var n = document.createElement("span");
      n.className = "metric-name";
      n.textContent = name;
      var v = document.createElement("span");
      v.className = "metric-value";
      var value = metrics[name];
      v.textContent = typeof value === "number" ? value.toLocaleString() : String(value);
      li.appendChild(n);
      li.appendChild(document.createTextNode(": "));
      li.appendChild(v);
      ul.appendChild(li);
    });
    dd.appendChild(ul);
  }

  function renderViolations(dd, violations) {
    dd.textContent = "";
    if (!Array.isArray(violations) || violations.length === 0) {
      dd.textContent = "none";
      dd.classList.add("none");
      return;
    }
    var ul = document.createElement("ul");
    ul.className = "violation-list";
    violations.forEach(function (v) {
      var li = document.createElement("li");
      li.textContent = String(v);
      ul.appendChild(li);
    });
    dd.appendChild(ul);
    dd.classList.add("violated");
  }

  function keyItem(k) {
    var li = els.template.content.firstElementChild.cloneNode(true);
    var q = function (sel) { return li.querySelector(sel); };
    li.dataset.id = String(k.id);
    var masked = String(k.licenseKey || "");
    li.querySelector("article").setAttribute("aria-label", "Key " + masked);
    q(".masked").textContent = masked;
    setActive(li, k);
    setText(q(".instance-name"), k.instanceName, "not named");
    var urlDD = q(".instance-url");
    var u = safeURL(k.instanceUrl);
    if (u) {
      var a = document.createElement("a");
      a.href = u.href;
      a.rel = "noopener noreferrer nofollow";
      a.target = "_blank"; // leaving this tab would end the page's one showing of a new key
      a.textContent = k.instanceUrl;
      urlDD.appendChild(a);
    } else {
      setText(urlDD, k.instanceUrl, "not reported yet");
    }
    setTime(q(".created"), k.createdAt, "unknown");
    setTime(q(".expires"), k.expiresAt, "never");
    setText(q(".rotation"), rotationText(k), "none");
    setTime(q(".activated"), k.activatedAt, "not yet");
    setTime(q(".validated"), k.lastValidatedAt, "never");
    renderMetrics(q(".metrics"), k.instanceMetrics);
    renderViolations(q(".violations"), k.lastViolations);
    bindInstances(li, k);

    q(".download").addEventListener("click", function () { download(li, k, q(".alg").value); });
    q(".revoke").addEventListener("click", function () {
      q(".revoke").hidden = true;
      q(".confirm").hidden = false;
      q(".cancel-revoke").focus();
    });
    q(".cancel-revoke").addEventListener("click", function () {
      q(".confirm").hidden = true;
      q(".revoke").hidden = false;
      q(".revoke").focus();
    });
    q(".confirm-revoke").addEventListener("click", function () { revoke(li, k); });
    q(".renew").addEventListener("click", function () {
      var at = endOfDay(q(".renew-date").value);
      if (!at) {
        showError("Pick the day the key should expire, or choose Never expires.");
        q(".renew-date").focus();
        return;
      }
      renew(li, k, at);
    });
    q(".renew-never").addEventListener("click", function () { renew(li, k, null); });
    q(".rotate").addEventListener("click", function () {
      q(".rotate").hidden = true;
      q(".confirm-rotation").hidden = false;
      q(".overlap").focus();
    });
    q(".cancel-rotate").addEventListener("click", function () {
      q(".confirm-rotation").hidden = true;
      q(".rotate").hidden = false;
      q(".rotate").focus();
    });
    q(".confirm-rotate").addEventListener("click", function () { rotate(li, k, Number(q(".overlap").value)); });
    keyHistory(li, k);
    return li;
  }

  // ---- a key's history (GET /events?keyId=)

  var HISTORY_PAGE = 20;

  // keyHistory loads the key's events, newest first, when its History is
  // first opened, and older ones on request.
  function keyHistory(li, k) {
    var details = li.querySelector(".history");
    var list = li.querySelector(".events");
    var more = li.querySelector(".history-more");
    var status = li.querySelector(".history-status");
    var next = null;
    var loaded = false;
    function page(first) {
      var path = "/events?limit=" + HISTORY_PAGE + "&keyId=" + encodeURIComponent(k.id);
      if (!first && next) { path += "&cursor=" + encodeURIComponent(next); }
      status.textContent = "Loading the history…";
      more.disabled = true;
      return call("GET", path).then(function (data) {
        var events = Array.isArray(data.events) ? data.events : [];
        if (first) { list.textContent = ""; }
        events.forEach(function (e) { list.appendChild(eventItem(e)); });
        next = typeof data.nextCursor === "string" ? data.nextCursor : null;
        more.hidden = !next;
        status.textContent = list.children.length ? "" : "Nothing recorded for this key yet.";
      }).catch(function (err) {
        status.textContent = "";
        fail(err, "load the key's history");
      }).then(function () { more.disabled = false; });
    }
    details.addEventListener("toggle", function () {
      if (details.open && !loaded) {
        loaded = true;
        page(true);
      }
    });
    more.addEventListener("click", function () { page(false); });
  }

  // eventItem is one line of a key's history: when, and what happened.
  function eventItem(e) {
    var li = document.createElement("li");
    li.className = "event";
    li.dataset.type = String(e.type || "");
    var when = document.createElement("span");
    when.className = "event-time";
    setTime(when, e.occurredAt, "unknown time");
    var what = document.createElement("span");
    what.className = "event-text";
    what.textContent = eventText(e);
    li.appendChild(when);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(what);
    return li;
  }

  // eventText says what an event means, in words; types this page does not
  // know are shown as they are.
  function eventText(e) {
    var d = e.data && typeof e.data === "object" ? e.data : {};
    var by = typeof e.actor === "string" && e.actor ? " by " + e.actor : "";
    var day = function (iso) {
      var t = iso ? new Date(iso) : null;
      return t && !isNaN(t.getTime()) ? formatTime(t) : "never";
    };
    var n = function (v) { return typeof v === "number" ? String(v) : "?"; };
    var inst = typeof d.instanceId === "string" && d.instanceId ? " (instance " + d.instanceId + ")" : "";
    switch (e.type) {
      case "key.created": return "Created" + by;
      case "key.revoked": return "Revoked" + by;
      case "key.rotated": return "Rotated" + by + "; replaced by key " + String(d.rotatedTo || "?") + ", stops " + day(d.expiresAt);
      case "key.renewed": return (d.expiresAt ? "Expiry set to " + day(d.expiresAt) : "Set to never expire") + by;
      case "key.token_issued": return "Offline token issued" + by;
      case "key.activated": return "First validated" + inst;
      case "key.shared": return "Used by " + n(d.instanceCount) + " instances" + inst;
      case "key.seat_limit_reached": return "Refused a new instance: all " + n(d.maxInstances) + " seats taken" + inst;
      case "key.expiring": return "Expires soon: " + day(d.expiresAt);
      case "key.expired": return "Refused: expired " + day(d.expiresAt);
      case "key.validation_failed": return d.outcome === "revoked" ? "Used after it was revoked" : "Validation failed: " + String(d.outcome || "?");
      case "instance.released": return "Seat freed" + by + inst;
      default: return String(e.type || "event");
    }
  }

  // ---- instances and seats

  // seatText says how many instances may hold a seat on the key.
  function seatText(k) {
    var n = k.maxInstances;
    if (typeof n === "number" && n > 0) { return "at most " + n + " " + plural(n, "instance", "instances"); }
    return "no limit of its own (the plan's, if any)";
  }

  // bindInstances shows the key's seat limit and lets the owner list its
  // instances and free their seats.
  function bindInstances(li, k) {
    var q = function (sel) { return li.querySelector(sel); };
    q(".seats").textContent = seatText(k);
    var btn = q(".show-instances");
    btn.addEventListener("click", function () {
      var panel = q(".instances-panel");
      if (!panel.hidden) {
        panel.hidden = true;
        btn.textContent = "Show instances";
        btn.setAttribute("aria-expanded", "false");
        return;
      }
      loadInstances(li, k);
    });
  }

  // loadInstances lists the instances that hold a seat on the key, most
  // recently seen first.
  function loadInstances(li, k) {
    var btn = li.querySelector(".show-instances");
    var panel = li.querySelector(".instances-panel");
    var list = li.querySelector(".instances");
    btn.disabled = true;
    say("Loading the key's instances…");
    return call("GET", "/keys/" + encodeURIComponent(k.id) + "/instances").then(function (data) {
      showError("");
      var instances = data && Array.isArray(data.instances) ? data.instances : [];
      list.textContent = "";
      instances.forEach(function (inst) { list.appendChild(instanceItem(li, k, inst)); });
      li.querySelector(".instances-empty").hidden = instances.length > 0;
      panel.hidden = false;
      btn.textContent = "Hide instances";
      btn.setAttribute("aria-expanded", "true");
      say(instances.length + " " + plural(instances.length, "instance holds", "instances hold") + " a seat on key " + String(k.licenseKey) + ".");
    }).catch(function (err) {
      fail(err, "loading the key's instances");
    }).then(function () {
      btn.disabled = false;
    });
  }

  // instanceItem renders one instance; every value is text.
  function instanceItem(li, k, inst) {
    var item = els.instanceTemplate.content.firstElementChild.cloneNode(true);
    var q = function (sel) { return item.querySelector(sel); };
    var id = String(inst.id);
    item.dataset.id = id;
    q(".instance-label").textContent = typeof inst.instanceName === "string" && inst.instanceName ? inst.instanceName : id;
    setText(q(".instance-id"), id, "none");
    setText(q(".instance-url"), inst.instanceUrl, "not reported");
    setTime(q(".first-seen"), inst.firstSeenAt, "unknown");
    setTime(q(".last-seen"), inst.lastSeenAt, "unknown");
    q(".release").setAttribute("aria-label", "Free the seat of instance " + q(".instance-label").textContent);
    q(".release").addEventListener("click", function () { release(li, k, id, item); });
    return item;
  }

  // release frees the instance's seat; it takes one again, if one is free,
  // when it next validates.
  function release(li, k, id, item) {
    var btn = item.querySelector(".release");
    btn.disabled = true;
    say("Freeing the instance's seat…");
    call("DELETE", "/keys/" + encodeURIComponent(k.id) + "/instances/" + encodeURIComponent(id)).then(function () {
      showError("");
      item.remove();
      li.querySelector(".instances-empty").hidden = li.querySelector(".instances").children.length > 0;
      li.querySelector(".show-instances").focus();
      say("Seat of instance " + id + " freed on key " + String(k.licenseKey) + ".");
    }).catch(function (err) {
      btn.disabled = false;
      fail(err, "freeing the instance's seat");
    });
  }

  // expired reports whether the key's expiry has passed, by this browser's clock.
  function expired(k) {
    if (!k.expiresAt) { return false; }
    var d = new Date(k.expiresAt);
    return !isNaN(d.getTime()) && d.getTime() <= Date.now();
  }

  // rotationText says which key replaced this one, or which it replaced.
  function rotationText(k) {
    if (typeof k.rotatedTo === "string" && k.rotatedTo) { return "Replaced by key " + k.rotatedTo; }
    if (typeof k.rotatedFrom === "string" && k.rotatedFrom) { return "Replaces key " + k.rotatedFrom; }
    return "";
  }

  // endOfDay turns a date input's value (YYYY-MM-DD) into the last second of
  // that day in the browser's zone, as the API's time; "" gives null.
  function endOfDay(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!m) { return null; }
    var d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59);
    return isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function setActive(li, k) {
    var active = k.active === true;
    var badge = li.querySelector(".badge");
    var state = !active ? "revoked" : expired(k) ? "expired" : "active";
    badge.textContent = { revoked: "Revoked", expired: "Expired", active: "Active" }[state];
    badge.className = "badge " + state;
    li.classList.toggle("is-revoked", !active);
    li.querySelector(".actions").hidden = !active; // a revoked key has no token and stays revoked
    li.querySelector(".revoke").hidden = false;
    li.querySelector(".confirm").hidden = true;
    li.querySelector(".confirm-rotation").hidden = true;
    li.querySelector(".rotate").hidden = !!k.rotatedTo || state === "expired"; // a key is rotated once; an expired one is renewed first
    li.querySelector(".renew-never").hidden = !!k.rotatedTo; // a replaced key stops by itself (the API refuses never)
  }

  function render(signedOut) {
    var c = signedOut ? null : credentials();
    els.signIn.hidden = !!c;
    els.app.hidden = !c;
    els.who.hidden = !c;
    if (c) {
      els.whoText.textContent = orgName || (c.org ? "Organization " + c.org : "Your default organization");
    } else {
      els.whoText.textContent = "";
      els.keys.textContent = "";
      els.more.hidden = true;
      hideNewKey();
      els.token.value = "";
    }
  }

  // showOrganization names the signed-in organization in the header: its
  // name from the list of keys, else its id (a server that sends neither
  // leaves the header as it is).
  function showOrganization(data) {
    var name = typeof data.organizationName === "string" ? data.organizationName.trim() : "";
    var id = typeof data.organizationId === "string" ? data.organizationId : "";
    orgName = name || (id ? "Organization " + id : "");
    if (orgName) { els.whoText.textContent = orgName; }
    els.whoText.title = id;
  }

  // ---- actions

  // loadKeys loads the first page (reset) or the next one, after any load
  // already running.
  function loadKeys(reset) {
    var run = queue.then(function () { return load(reset); });
    queue = run.catch(function () {}); // one failed load never stops the next
    return run;
  }

  function load(reset) {
    if (!credentials()) { return Promise.resolve(); }
    var path = "/keys?limit=" + PAGE_SIZE;
    if (!reset && cursor) { path += "&cursor=" + encodeURIComponent(cursor); }
    say(reset ? "Loading keys…" : "Loading more keys…");
    els.refresh.disabled = true;
    els.more.disabled = true;
    return call("GET", path).then(function (data) {
      var keys = Array.isArray(data.keys) ? data.keys : [];
      showOrganization(data);
      if (reset) { els.keys.textContent = ""; }
      var seen = {};
      Array.prototype.forEach.call(els.keys.children, function (li) { seen[li.dataset.id] = true; });
      keys.forEach(function (k) {
        if (k && typeof k === "object" && !seen[k.id]) { els.keys.appendChild(keyItem(k)); }
      });
      cursor = typeof data.nextCursor === "string" && data.nextCursor !== "" ? data.nextCursor : null;
      els.more.hidden = !cursor;
      els.empty.hidden = els.keys.children.length > 0;
      var n = els.keys.children.length;
      say(n + " " + plural(n, "key", "keys") + (cursor ? " shown; more can be loaded." : "."));
      showError("");
    }).catch(function (err) {
      fail(err, "loading the keys");
    }).then(function () {
      els.refresh.disabled = false;
      els.more.disabled = false;
    });
  }

  function createKey(ev) {
    ev.preventDefault();
    var name = els.instanceName.value.trim();
    var body = name ? { instanceName: name } : {};
    if (els.expiresOn.value) {
      var at = endOfDay(els.expiresOn.value);
      if (!at || new Date(at).getTime() <= Date.now()) {
        showError("The expiry must be a day in the future, or empty for a key that never expires.");
        els.expiresOn.focus();
        return;
      }
      body.expiresAt = at;
    }
    els.create.disabled = true;
    say("Creating a key…");
    call("POST", "/keys", body).then(function (data) {
      showError("");
      els.instanceName.value = "";
      els.expiresOn.value = "";
      showNewKey(String(data.licenseKey || ""), "");
      return loadKeys(true).then(function () { say("Key created. Copy it now: it is shown only once."); });
    }).catch(function (err) {
      fail(err, "creating a key");
    }).then(function () {
      els.create.disabled = false;
    });
  }

  // showNewKey shows a key once; note says where it came from (a rotation).
  function showNewKey(key, note) {
    els.newKeyRotated.textContent = note;
    els.newKeyRotated.hidden = !note;
    els.newKeyValue.value = key;
    els.copyStatus.textContent = "";
    els.newKey.hidden = false;
    els.newKeyValue.focus();
    els.newKeyValue.select();
  }

  function hideNewKey() {
    els.newKeyRotated.textContent = "";
    els.newKeyRotated.hidden = true;
    els.newKeyValue.value = "";
    els.copyStatus.textContent = "";
    els.newKey.hidden = true;
  }

  function copyKey() {
    var key = els.newKeyValue.value;
    var done = function () { els.copyStatus.textContent = "Copied to the clipboard."; };
    var manual = function () {
      els.newKeyValue.focus();
      els.newKeyValue.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      if (ok) { done(); } else { els.copyStatus.textContent = "Could not copy automatically: the key is selected, press Ctrl+C (⌘C) to copy it."; }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(key).then(done, manual);
    } else {
      manual();
    }
  }

  function revoke(li, k) {
    var btn = li.querySelector(".confirm-revoke");
    btn.disabled = true;
    say("Revoking the key…");
    call("DELETE", "/keys/" + encodeURIComponent(k.id)).then(function () {
      showError("");
      k.active = false;
      setActive(li, k);
      li.querySelector("article").focus();
      say("Key " + String(k.licenseKey) + " revoked.");
    }).catch(function (err) {
      fail(err, "revoking the key");
    }).then(function () {
      btn.disabled = false;
    });
  }

  // renew sets the key's expiry (null: never) and shows the key as answered.
  function renew(li, k, at) {
    var btns = li.querySelectorAll(".renew, .renew-never");
    Array.prototype.forEach.call(btns, function (b) { b.disabled = true; });
    say("Changing the key's expiry…");
    call("PATCH", "/keys/" + encodeURIComponent(k.id), { expiresAt: at }).then(function (data) {
      showError("");
      var item = keyItem(data && typeof data === "object" ? data : k);
      li.replaceWith(item);
      item.querySelector("article").focus();
      var until = at ? new Date(at) : null;
      say("Key " + String(k.licenseKey) + (until ? " now expires " + formatTime(until) + "." : " now never expires."));
    }).catch(function (err) {
      fail(err, "changing the key's expiry");
    }).then(function () {
      Array.prototype.forEach.call(btns, function (b) { b.disabled = false; });
    });
  }

  // rotate replaces the key by a new one, shown once, the old one working
  // for overlapHours more.
  function rotate(li, k, overlapHours) {
    var btn = li.querySelector(".confirm-rotate");
    btn.disabled = true;
    say("Rotating the key…");
    call("POST", "/keys/" + encodeURIComponent(k.id) + "/rotate", { overlapHours: overlapHours }).then(function (data) {
      showError("");
      showNewKey(String(data.licenseKey || ""), "It replaces key " + String(k.licenseKey) + ", which " +
        (overlapHours === 0 ? "stopped working now." : "keeps working for " + overlapHours + " " + plural(overlapHours, "hour", "hours") + " more."));
      return loadKeys(true).then(function () { say("Key rotated. Copy the new key now: it is shown only once."); });
    }).catch(function (err) {
      fail(err, "rotating the key");
    }).then(function () {
      btn.disabled = false;
    });
  }

  function download(li, k, alg) {
    if (alg !== "RS256" && alg !== "EdDSA") { alg = "RS256"; }
    var btn = li.querySelector(".download");
    btn.disabled = true;
    say("Making an offline token…");
    call("POST", "/keys/" + encodeURIComponent(k.id) + "/jwt?alg=" + alg).then(function (data) {
      if (typeof data.jwt !== "string") { throw new APIError(-1, "the server's answer had no token"); }
      showError("");
      var blob = new Blob([data.jwt + "\n"], { type: "application/jwt" });
      var url = URL.createObjectURL(blob);
      var a = document.createElement("a");
      a.href = url;
      a.download = "license-" + String(k.id).replace(/[^0-9a-zA-Z-]/g, "") + "-" + alg + ".jwt";
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      var until = data.expiresAt ? new Date(data.expiresAt) : null;
      say("Offline token (" + alg + ") downloaded" + (until && !isNaN(until.getTime()) ? "; valid until " + formatTime(until) + "." : "."));
    }).catch(function (err) {
      fail(err, "making an offline token");
    }).then(function () {
      btn.disabled = false;
    });
  }

  function signIn(ev) {
    ev.preventDefault();
    var token = els.token.value.trim();
    var org = els.org.value.trim();
    if (!token) {
      showError("Paste your owner token to sign in.");
      els.token.focus();
      return;
    }
    if (badChar(token, NOT_IN_TOKEN)) {
      showError("That token contains spaces or characters a token cannot have. Paste it again.");
      els.token.focus();
      return;
    }
    var problem = orgProblem(org);
    if (problem) {
      showError(problem);
      els.org.focus();
      return;
    }
    if (!saveCredentials(token, org)) {
      showError("This browser does not allow the page to keep the token for this tab (session storage is off), so you cannot sign in.");
      return;
    }
    els.token.value = "";
    showError("");
    render(false);
    loadKeys(true).then(function () {
      if (credentials()) { els.instanceName.focus(); }
    });
  }

  function signOut() {
    forget();
    els.org.value = "";
    showError("");
    say("Signed out.");
    render(true);
    els.token.focus();
  }

  // leave forgets what this page shows only once, when the page is left
  // (another page, reload, tab closed). A browser may keep the page in its
  // back/forward cache even with "Cache-Control: no-store" and show it again
  // on Back: it comes back without the key.
  function leave() {
    hideNewKey();
    say("");
    els.token.value = "";
  }

  // ---- start

  window.addEventListener("pagehide", leave);
  window.addEventListener("pageshow", function (ev) {
    if (!ev.persisted) { return; }
    render(false); // back from the back/forward cache: the list may be old
    if (credentials()) { loadKeys(true); }
  });

  els.signInForm.addEventListener("submit", signIn);
  els.signOut.addEventListener("click", signOut);
  els.createForm.addEventListener("submit", createKey);
  els.copy.addEventListener("click", copyKey);
  els.newKeyDone.addEventListener("click", function () { hideNewKey(); say(""); els.instanceName.focus(); });
  els.refresh.addEventListener("click", function () { loadKeys(true); });
  els.more.addEventListener("click", function () { loadKeys(false); });

  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    els.tz.textContent = "Times are shown in your time zone" + (zone ? " (" + zone + ")" : "") + ".";
  } catch (e) {
    els.tz.textContent = "Times are shown in your time zone.";
  }

  render(false);
  if (credentials()) {
    loadKeys(true);
  } else {
    els.token.focus();
  }
})();
