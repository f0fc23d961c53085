// DVCR console: cluster and project images, live through server-sent
// events, and the garbage collection panel. Plain DOM, no framework and no
// external resource: the console is one binary on a loopback port.
"use strict";

const $ = (sel) => document.querySelector(sel);
const kindNames = { cvi: "ClusterVirtualImage", vi: "VirtualImage" };
// A DNS-1123 subdomain, what the API server requires of these names.
const nameRE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const state = {
  tab: "cvi", namespace: "", csrf: "", access: {}, rows: new Map(),
  stream: null, filter: "", details: null, createSource: "", upload: null, confirm: null,
};

// ---- API ----

async function api(method, path, body) {
  const opts = { method, headers: { "X-DVCR-CSRF": state.csrf }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    const msg = data && data.error ? data.error : `${resp.status} ${resp.statusText}: ${text}`;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function query(kind) {
  return kind === "vi" ? `?namespace=${encodeURIComponent(state.namespace)}` : "";
}

// ---- formatting ----

function age(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function percent(progress) {
  const n = parseFloat(progress || "");
  return Number.isFinite(n) ? Math.min(100, Math.max(0, n)) : null;
}

function bytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function phaseBadge(phase) {
  return el("span", { class: `phase ${phase || ""}` }, phase || "—");
}

function progressBar(row) {
  const p = percent(row.progress);
  const fill = el("div", { class: "fill" + (row.phase === "Ready" ? " done" : "") });
  fill.style.width = `${p ?? 0}%`;
  const label = p === null ? "" : row.progress;
  const speed = row.phase === "Provisioning" && row.speed ? el("span", { class: "speed muted" }, row.speed) : "";
  return el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": p ?? undefined, "aria-label": `Progress of ${row.name}` },
    el("div", { class: "track" }, fill), el("span", { class: "pct progress" }, label), speed);
}

// ---- images table ----

function renderTable() {
  const tbody = $("#images tbody");
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.name : null;
  const rows = [...state.rows.values()]
    .filter((r) => !state.filter || r.name.includes(state.filter))
    .sort((a, b) => (a.namespace || "").localeCompare(b.namespace || "") || a.name.localeCompare(b.name));
  tbody.replaceChildren(...rows.map(rowElement));
  const empty = $("#empty");
  empty.hidden = rows.length > 0;
  if (!rows.length) {
    empty.textContent = state.rows.size
      ? "No image matches the filter."
      : state.tab === "cvi" ? "No cluster images yet. Create one with “Create image”." : "No images in this project yet.";
  }
  if (focused) {
    const again = tbody.querySelector(`tr[data-name="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function rowElement(r) {
  const title = el("div", { class: "name" }, r.name);
  const sub = el("div", { class: "sub", title: r.sourceRef || "" }, [r.namespace, r.source, r.sourceRef].filter(Boolean).join(" · "));
  const phase = r.deleting ? "Terminating" : r.phase;
  const tr = el("tr", { tabindex: "0", "data-name": r.name, "data-phase": phase || "", "aria-label": `${r.name}, ${phase || "no phase yet"}` },
    el("td", {}, title, sub),
    el("td", {}, phaseBadge(phase)),
    el("td", { class: "opt" }, r.cdrom === undefined || r.cdrom === null ? "" : r.cdrom ? "yes" : "no"),
    el("td", {}, progressBar(r)),
    el("td", {}, r.stored || ""),
    el("td", { class: "opt" }, r.unpacked || ""),
    el("td", { class: "opt" }, r.format || ""),
    el("td", { title: new Date(r.created).toLocaleString() }, age(r.created)));
  if (phase === "Ready") {
    const link = el("a", { class: "download", href: downloadURL(state.tab, r.name, r.namespace), download: true, "data-download": r.name,
      title: "Download the disk file as stored", "aria-label": `Download ${r.name}` }, "Download");
    title.append(link);
    if (rawConvertible.has(r.format)) {
      title.append(el("a", { class: "download-raw", href: downloadURL(state.tab, r.name, r.namespace, true), download: true, "data-download-raw": r.name,
        title: rawTitle, "aria-label": `Download ${r.name} as a raw disk` }, "Download raw"));
    }
    for (const a of title.querySelectorAll("a")) {
      a.addEventListener("click", (e) => e.stopPropagation());
      a.addEventListener("keydown", (e) => e.stopPropagation());
    }
  }
  tr.addEventListener("click", () => openDetails(r.name, r.namespace));
  tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openDetails(r.name, r.namespace); } });
  return tr;
}

function setLive(text, cls) {
  const live = $("#live");
  live.textContent = text;
  live.className = `live ${cls}`;
}

function startStream() {
  if (state.stream) state.stream.close();
  state.rows.clear();
  renderTable();
  if (state.tab === "vi" && !state.namespace) {
    $("#empty").textContent = "Choose a project.";
    return;
  }
  const es = new EventSource(`/api/watch/${state.tab}${query(state.tab)}`);
  state.stream = es;
  es.addEventListener("list", (e) => {
    state.rows = new Map(JSON.parse(e.data).map((r) => [r.uid, r]));
    $("#problem").hidden = true;
    setLive("live", "on");
    renderTable();
  });
  es.addEventListener("upsert", (e) => {
    const r = JSON.parse(e.data);
    state.rows.set(r.uid, r);
    renderTable();
    refreshDetails(r);
  });
  es.addEventListener("delete", (e) => {
    const r = JSON.parse(e.data);
    state.rows.delete(r.uid);
    renderTable();
  });
  es.addEventListener("problem", (e) => {
    const p = $("#problem");
    p.textContent = JSON.parse(e.data).error;
    p.hidden = false;
    setLive("API server unreachable", "off");
  });
  es.onerror = () => setLive("reconnecting…", "off");
}

// ---- tabs and namespace ----

async function selectTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  $("#images-view").hidden = tab === "gc";
  $("#gc-view").hidden = tab !== "gc";
  if (tab === "gc") {
    if (state.stream) { state.stream.close(); state.stream = null; }
    setLive("", "");
    return loadGC();
  }
  $("#images-title").textContent = tab === "cvi" ? "Cluster images" : "Project images";
  $("#ns-field").hidden = tab !== "vi";
  await loadAccess();
  startStream();
}

async function loadNamespaces() {
  const ns = await api("GET", "/api/namespaces");
  const select = $("#ns-select"), input = $("#ns-input");
  if (ns.error) { // may not list namespaces: type one
    select.hidden = true;
    input.hidden = false;
    input.title = ns.error;
    return;
  }
  select.replaceChildren(el("option", { value: "" }, "— choose —"), ...ns.items.map((n) => el("option", { value: n }, n)));
  if (ns.items.includes("default")) { select.value = "default"; state.namespace = "default"; }
}

async function loadAccess() {
  try {
    state.access = await api("GET", `/api/access${state.namespace ? `?namespace=${encodeURIComponent(state.namespace)}` : ""}`);
  } catch (_) {
    state.access = {};
  }
  // Buttons stay usable: RBAC may allow more than the review tells (e.g.
  // through a webhook authorizer); the API server's answer is what counts.
  const may = state.tab === "cvi" ? state.access.createCVI : state.access.createVI;
  $("#create-button").title = may ? "" : "The API server says you may not create these images; it will refuse.";
}

// ---- create ----

function openMenu(open) {
  $("#create-menu").hidden = !open;
  $("#create-button").setAttribute("aria-expanded", String(open));
  if (open) $("#create-menu button").focus();
}

function openCreate(source) {
  openMenu(false);
  state.createSource = source;
  const titles = { HTTP: "Create image from an HTTP link", ContainerImage: "Create image from a container image", Upload: "Upload an image from this computer" };
  $("#create-title").textContent = titles[source];
  $("#create-scope").textContent = state.tab === "cvi"
    ? "A ClusterVirtualImage, usable in every project."
    : `A VirtualImage in project “${state.namespace}”.`;
  $("#create-url-field").hidden = source !== "HTTP";
  $("#create-image-field").hidden = source !== "ContainerImage";
  $("#create-file-field").hidden = source !== "Upload";
  $("#create-submit").textContent = source === "Upload" ? "Create and upload" : "Create";
  $("#create-submit").disabled = false;
  $("#create-form").reset();
  $("#create-error").hidden = true;
  $("#upload-box").hidden = true;
  $("#create-name").removeAttribute("aria-invalid");
  $("#create-dialog").showModal();
  $("#create-name").focus();
}

function showCreateError(msg) {
  const e = $("#create-error");
  e.textContent = msg;
  e.hidden = false;
}

function validateCreate() {
  const name = $("#create-name").value.trim();
  let msg = "";
  if (!name) msg = "Name is required.";
  else if (name.length > 253) msg = "Name is longer than 253 characters.";
  else if (!nameRE.test(name)) msg = `Name “${name}” is not valid: use lowercase letters, digits, “-” and “.”, starting and ending with a letter or digit.`;
  else if (state.createSource === "HTTP" && !/^https?:\/\/\S+$/.test($("#create-url").value.trim())) msg = "URL must start with http:// or https://.";
  else if (state.createSource === "ContainerImage" && !$("#create-image").value.trim()) msg = "Container image is required (e.g. registry.example.com/images/ubuntu:24.04).";
  else if (state.createSource === "Upload" && !$("#create-file").files.length) msg = "Choose a file to upload.";
  $("#create-name").setAttribute("aria-invalid", String(msg.startsWith("Name")));
  return msg;
}

async function submitCreate(e) {
  e.preventDefault();
  const invalid = validateCreate();
  if (invalid) return showCreateError(invalid);
  $("#create-error").hidden = true;
  $("#create-submit").disabled = true;
  const kind = state.tab;
  const body = {
    name: $("#create-name").value.trim(), namespace: kind === "vi" ? state.namespace : "",
    source: state.createSource, url: $("#create-url").value.trim(), image: $("#create-image").value.trim(),
  };
  try {
    await api("POST", `/api/images/${kind}`, body);
  } catch (err) {
    $("#create-submit").disabled = false;
    return showCreateError(err.message);
  }
  if (state.createSource !== "Upload") {
    $("#create-dialog").close();
    return;
  }
  try {
    await uploadFile(kind, body.name, body.namespace, $("#create-file").files[0]);
    $("#create-dialog").close();
  } catch (err) {
    showCreateError(`${err.message}\nThe image ${body.name} exists and waits for its upload; delete it or upload again with curl -T to its upload URL (see its details).`);
  }
}

// waitUploadURL waits until the new image publishes its upload URL.
async function waitUploadURL(kind, name, namespace) {
  const deadline = Date.now() + 120000;
  $("#upload-text").textContent = "Waiting for the upload URL…";
  while (Date.now() < deadline) {
    const d = await api("GET", `/api/images/${kind}/${encodeURIComponent(name)}${kind === "vi" ? `?namespace=${encodeURIComponent(namespace)}` : ""}`);
    if (d.uploadURLs && (d.uploadURLs.external || d.uploadURLs.inCluster)) return;
    if (d.phase === "Failed") throw new Error(`The image failed before the upload: ${(d.conditions || []).map((c) => c.message).join("; ")}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("The image published no upload URL within 2 minutes (is DVCR's provisioning controller running?).");
}

// uploadFile sends the file as the body of one request: the browser reads
// it from disk as it goes, so a 10 GiB file never sits in memory.
async function uploadFile(kind, name, namespace, file) {
  $("#upload-box").hidden = false;
  await waitUploadURL(kind, name, namespace);
  const started = Date.now();
  await new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    state.upload = xhr;
    xhr.open("PUT", `/api/upload/${kind}/${encodeURIComponent(name)}${kind === "vi" ? `?namespace=${encodeURIComponent(namespace)}` : ""}`);
    xhr.setRequestHeader("X-DVCR-CSRF", state.csrf);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable) return;
      const p = (ev.loaded / ev.total) * 100;
      $("#upload-progress").value = p;
      const rate = ev.loaded / Math.max(0.001, (Date.now() - started) / 1000);
      $("#upload-text").textContent = `${p.toFixed(0)}% · ${bytes(ev.loaded)} of ${bytes(ev.total)} · ${bytes(rate)}/s`;
    };
    xhr.onload = () => {
      state.upload = null;
      let res = {};
      try { res = JSON.parse(xhr.responseText); } catch (_) { /* keep empty */ }
      if (xhr.status !== 200) return reject(new Error(res.error || `Upload failed: HTTP ${xhr.status}`));
      if (res.status < 200 || res.status > 299) return reject(new Error(`The upload endpoint answered ${res.status}: ${res.message}`));
      $("#upload-text").textContent = "Uploaded; DVCR checks and stores the image.";
      resolve();
    };
    xhr.onerror = () => { state.upload = null; reject(new Error("The upload was interrupted (connection lost).")); };
    xhr.onabort = () => { state.upload = null; reject(new Error("The upload was cancelled.")); };
    xhr.send(file);
  });
}

// ---- details and delete ----

// downloadURL streams the image's disk file as stored, or with raw as a raw
// disk; the browser saves it under the name the server gives
// (Content-Disposition) and shows its progress (Content-Length).
function downloadURL(kind, name, namespace, raw) {
  const params = new URLSearchParams();
  if (kind === "vi") params.set("namespace", namespace || "");
  if (raw) params.set("format", "raw");
  const q = params.toString();
  return `/api/download/${kind}/${encodeURIComponent(name)}${q ? `?${q}` : ""}`;
}

// rawConvertible are the stored formats "Download raw" converts (as dvcr
// export --format raw does); a raw image's Download already is raw.
const rawConvertible = new Set(["qcow2", "vmdk", "vdi"]);
const rawTitle = "Convert to a sparse raw disk (like qemu-img convert -O raw) and download it. " +
  "The console converts the whole image first, so the browser shows the download only after a while.";

async function openDetails(name, namespace) {
  state.details = { name, namespace: namespace || "", kind: state.tab };
  $("#details-error").hidden = true;
  await loadDetails();
  if (!$("#details-dialog").open) $("#details-dialog").showModal();
  $("#details-close").focus();
}

function refreshDetails(row) {
  const d = state.details;
  if (d && $("#details-dialog").open && d.name === row.name && d.namespace === (row.namespace || "")) loadDetails();
}

async function loadDetails() {
  const d = state.details;
  let info;
  try {
    info = await api("GET", `/api/images/${d.kind}/${encodeURIComponent(d.name)}${d.kind === "vi" ? `?namespace=${encodeURIComponent(d.namespace)}` : ""}`);
  } catch (err) {
    $("#details-error").textContent = err.message;
    $("#details-error").hidden = false;
    return;
  }
  $("#details-title").textContent = `${kindNames[d.kind]} ${d.namespace ? d.namespace + "/" : ""}${d.name}`;
  const download = $("#details-download");
  download.hidden = info.phase !== "Ready" || !!info.deleting;
  download.href = downloadURL(d.kind, d.name, d.namespace);
  const raw = $("#details-download-raw");
  raw.hidden = download.hidden || !rawConvertible.has(info.format);
  raw.href = downloadURL(d.kind, d.name, d.namespace, true);
  raw.title = rawTitle;
  const items = [
    ["Phase", phaseBadge(info.phase)], ["Progress", info.progress || ""], ["Source", `${info.source || ""} ${info.sourceRef || ""}`],
    ["Format", info.format || ""], ["Stored", info.stored || ""], ["Unpacked", info.unpacked || ""],
    ["CDROM", info.cdrom === undefined ? "" : info.cdrom ? "yes" : "no"], ["Speed", info.speed || ""],
    ["Registry URL", info.registryURL ? el("code", {}, info.registryURL) : ""],
    ["Upload URL (external)", info.uploadURLs && info.uploadURLs.external ? el("code", {}, info.uploadURLs.external) : ""],
    ["Upload URL (in cluster)", info.uploadURLs && info.uploadURLs.inCluster ? el("code", {}, info.uploadURLs.inCluster) : ""],
    ["Created", new Date(info.created).toLocaleString()],
  ].filter(([, v]) => v !== "" && v !== " ");
  $("#details-summary").replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#details-conditions tbody").replaceChildren(...(info.conditions || []).map((c) =>
    el("tr", {}, el("td", {}, c.type), el("td", {}, c.status), el("td", {}, c.reason), el("td", { class: "wrap" }, c.message))));
  const events = info.events.map((ev) => el("tr", {}, el("td", {}, ev.type), el("td", {}, ev.reason), el("td", { class: "wrap" }, ev.message), el("td", {}, age(ev.last))));
  if (info.eventsError) events.push(el("tr", {}, el("td", { colspan: "4", class: "wrap muted" }, `Events not shown: ${info.eventsError}`)));
  $("#details-events tbody").replaceChildren(...events);
}

// confirm asks in the confirmation dialog; resolves to true when the user
// chose the action. act runs on confirmation and may throw: its message is
// shown in the dialog, which stays open.
function confirmAction(title, text, label, act) {
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-delete").textContent = label;
  $("#confirm-error").hidden = true;
  state.confirm = act;
  $("#confirm-dialog").showModal();
  $("#confirm-cancel").focus();
}

async function onConfirm(e) {
  e.preventDefault();
  try {
    await state.confirm();
  } catch (err) {
    $("#confirm-error").textContent = err.message;
    $("#confirm-error").hidden = false;
    return;
  }
  $("#confirm-dialog").close();
}

function confirmDelete() {
  const d = state.details;
  const what = `${kindNames[d.kind]} “${d.namespace ? d.namespace + "/" : ""}${d.name}”`;
  confirmAction(`Delete ${d.name}?`,
    `Delete ${what}? Its disk image leaves the registry at the next garbage collection; virtual machines that still use it will not start.`,
    "Delete", async () => {
      await api("DELETE", `/api/images/${d.kind}/${encodeURIComponent(d.name)}${d.kind === "vi" ? `?namespace=${encodeURIComponent(d.namespace)}` : ""}`);
      $("#details-dialog").close();
    });
}

// ---- garbage collection ----

async function loadGC() {
  const problem = $("#gc-problem");
  problem.hidden = true;
  await loadAccess();
  $("#gc-run").disabled = !state.access.runGC;
  $("#gc-run").title = state.access.runGC ? "" : "Running garbage collection takes the right to exec into DVCR's pods.";
  let panel;
  try {
    panel = await api("GET", "/api/gc");
  } catch (err) {
    problem.textContent = err.message;
    problem.hidden = false;
    $("#gc-check").disabled = true;
    $("#gc-run").disabled = true;
    return;
  }
  $("#gc-server").textContent = panel.server
    ? `Registry ${panel.server.readOnly ? "read-only" : "writable"}${panel.server.gcRunning ? ", a run is in progress" : ""}.`
    : `The registry does not answer on its admin socket: ${panel.serverError}`;
  $("#gc-results tbody").replaceChildren(...panel.results.map((r) => el("tr", {},
    el("td", {}, new Date(r.startedAt).toLocaleString()), el("td", {}, r.trigger), el("td", {}, phaseBadge(r.result === "success" ? "Ready" : "Failed")),
    el("td", {}, `${((new Date(r.finishedAt) - new Date(r.startedAt)) / 1000).toFixed(1)} s`),
    el("td", { class: "opt" }, `${(r.readOnlySeconds || 0).toFixed(1)} s`), el("td", {}, String((r.deleted || []).length)),
    el("td", {}, bytes(Math.max(0, r.freed))), el("td", { class: "opt wrap" }, r.error || r.message))));
  for (const b of $("#gc-results tbody").querySelectorAll(".phase")) b.textContent = b.classList.contains("Ready") ? "success" : "fail";
  if (!panel.results.length) $("#gc-results tbody").append(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No runs recorded yet.")));
}

async function gcCheck() {
  $("#gc-check-box").hidden = false;
  $("#gc-usage").textContent = "Listing the registry and the cluster…";
  try {
    const r = await api("GET", "/api/gc/check");
    const u = r.usage;
    $("#gc-usage").textContent = `${r.eligible.length} image(s) would be deleted.` + (u ? ` Volume: ${bytes(u.used)} used of ${bytes(u.total)}, ${bytes(u.available)} available.` : "");
    $("#gc-eligible tbody").replaceChildren(...r.eligible.map((i) => el("tr", {}, el("td", {}, i.kind), el("td", {}, i.namespace || ""), el("td", {}, i.name), el("td", { class: "wrap" }, i.reason))));
  } catch (err) {
    $("#gc-usage").textContent = err.message;
  }
}

async function gcRun() {
  const log = $("#gc-log");
  $("#gc-run-box").hidden = false;
  $("#gc-run").disabled = true;
  log.textContent = "Starting…\n";
  try {
    const resp = await fetch("/api/gc/run", { method: "POST", headers: { "X-DVCR-CSRF": state.csrf } });
    if (!resp.ok) {
      const data = await resp.json().catch(() => ({}));
      throw new Error(data.error || `HTTP ${resp.status}`);
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const ev = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (ev.progress) log.textContent += ev.progress + "\n";
        if (ev.error) log.textContent += "Failed: " + ev.error + "\n";
        else if (ev.result) log.textContent += (ev.result.message || "Done.") + "\n";
        log.scrollTop = log.scrollHeight;
      }
    }
  } catch (err) {
    log.textContent += err.message + "\n";
  }
  await loadGC();
  if (!$("#gc-check-box").hidden) await gcCheck(); // what it listed is gone now
}

// ---- wiring ----

function wire() {
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  $("#create-button").addEventListener("click", () => openMenu($("#create-menu").hidden));
  for (const b of document.querySelectorAll("#create-menu button")) b.addEventListener("click", () => openCreate(b.dataset.source));
  $("#create-menu").addEventListener("keydown", (e) => {
    const items = [...document.querySelectorAll("#create-menu button")];
    const i = items.indexOf(document.activeElement);
    if (e.key === "ArrowDown") { e.preventDefault(); items[(i + 1) % items.length].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); items[(i + items.length - 1) % items.length].focus(); }
    if (e.key === "Escape") { openMenu(false); $("#create-button").focus(); }
  });
  document.addEventListener("click", (e) => { if (!e.target.closest(".menu")) openMenu(false); });
  $("#create-form").addEventListener("submit", submitCreate);
  $("#create-name").addEventListener("input", () => { $("#create-error").hidden = true; $("#create-name").removeAttribute("aria-invalid"); });
  $("#create-cancel").addEventListener("click", () => { if (state.upload) state.upload.abort(); $("#create-dialog").close(); });
  $("#details-close").addEventListener("click", () => $("#details-dialog").close());
  $("#details-delete").addEventListener("click", confirmDelete);
  $("#confirm-delete").addEventListener("click", onConfirm);
  $("#filter").addEventListener("input", (e) => { state.filter = e.target.value.trim(); renderTable(); });
  $("#ns-select").addEventListener("change", (e) => { state.namespace = e.target.value; selectTab("vi"); });
  $("#ns-input").addEventListener("change", (e) => { state.namespace = e.target.value.trim(); selectTab("vi"); });
  $("#gc-check").addEventListener("click", gcCheck);
  $("#gc-run").addEventListener("click", () => confirmAction("Run garbage collection now?",
    "The registry refuses writes while the collector decides what goes (imports and uploads wait), then frees the space of deleted images.",
    "Run now", async () => { gcRun(); }));
  setInterval(() => { if (state.tab !== "gc") renderTable(); }, 10000); // ages
}

async function main() {
  wire();
  try {
    const s = await api("GET", "/api/session");
    state.csrf = s.csrf;
    $("#user").textContent = s.user ? `Signed in as ${s.user}` : `Identity unknown: ${s.userError}`;
  } catch (err) {
    $("#problem").textContent = err.message;
    $("#problem").hidden = false;
    return;
  }
  await loadNamespaces().catch(() => {});
  await selectTab("cvi");
}

main();
