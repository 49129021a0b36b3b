// The local NVCF's dashboard: polls the local NVCF's /_local/ API once a second and
// draws what NVCF's console would show. Plain JavaScript, no build step, no library;
// every value from the server reaches the page through textContent, never as HTML.
"use strict";

(() => {
  const POLL_MS = 1000;
  const HIDDEN_POLL_MS = 10000;
  const LOG_LIMIT = 1000; // lines fetched when a log view opens
  const LOG_KEEP = 3000; // lines kept in the Logs tab before the oldest are dropped
  const SVG = "http://www.w3.org/2000/svg";

  const ui = {
    selection: null, // {functionId, versionId}
    tab: "invocations",
    now: Date.now(), // the server's clock, from /_local/state
    state: null,
    series: null,
    seriesKey: "",
    seriesAt: 0,
    logs: { key: "", next: null, lines: [], ids: new Set(), busy: false },
    requestLogs: new Map(), // requestId -> {next, lines, ids, busy}
    sidebarKey: "",
    refreshes: 0,
  };

  class AuthError extends Error {}

  // -- helpers ------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, String(value));
    }
    return node;
  }

  async function getJson(path) {
    const response = await fetch(path, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    if (response.status === 401) throw new AuthError("not logged in");
    if (!response.ok) {
      let detail = "";
      try {
        detail = (await response.json()).detail || "";
      } catch (_) {
        // not problem details
      }
      throw new Error(`${path.split("?")[0]} answered ${response.status}${detail ? `: ${detail}` : ""}`);
    }
    return response.json();
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
    }
    return search.toString();
  }

  function clock(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return date.toLocaleTimeString([], { hour12: false });
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 10) return `${value.toFixed(2)} s`;
    if (value < 120) return `${value.toFixed(1)} s`;
    return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  }

  function short(id) {
    return id && id.length > 13 ? `${id.slice(0, 8)}…` : id || "";
  }

  function json(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function setBadge(node, status) {
    node.textContent = status || "–";
    node.dataset.status = status || "";
  }

  function sameKey(node, key) {
    if (node.dataset.key === key) return true;
    node.dataset.key = key;
    return false;
  }

  // -- selection, in the URL's fragment (never the key: that lives in an HttpOnly cookie) -----

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get("function") && params.get("version")) {
      ui.selection = { functionId: params.get("function"), versionId: params.get("version") };
    }
    if (["invocations", "logs", "deployment"].includes(params.get("tab"))) ui.tab = params.get("tab");
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (ui.selection) {
      params.set("function", ui.selection.functionId);
      params.set("version", ui.selection.versionId);
    }
    params.set("tab", ui.tab);
    history.replaceState(null, "", `#${params}`);
  }

  function select(functionId, versionId) {
    ui.selection = { functionId, versionId };
    ui.series = null;
    ui.seriesKey = "";
    ui.requestLogs.clear();
    $("invocations").replaceChildren();
    writeHash();
    render();
    refreshSeries(true).catch(onError);
    resetLogs();
  }

  function selectedVersion() {
    if (!ui.state || !ui.selection) return null;
    return (
      ui.state.functions.find(
        (v) => v.id === ui.selection.functionId && v.versionId === ui.selection.versionId,
      ) || null
    );
  }

  // -- the sidebar: functions, their versions, status and instances ----------------------------

  function instanceCounts(version) {
    const deployment = version.deployment;
    if (!deployment) return null;
    const instances = deployment.instances || [];
    const spec = (deployment.deploymentSpecifications || [])[0] || {};
    return {
      current: instances.filter((i) => i.status === "ACTIVE").length,
      total: instances.length,
      min: spec.minInstances,
      max: spec.maxInstances,
    };
  }

  function renderSidebar() {
    const versions = ui.state.functions;
    const key = JSON.stringify([
      ui.selection,
      versions.map((v) => [v.id, v.versionId, v.name, v.status, instanceCounts(v)]),
    ]);
    const list = $("functions");
    $("no-functions").hidden = versions.length > 0;
    if (key === ui.sidebarKey) return;
    ui.sidebarKey = key;
    const focused = document.activeElement && document.activeElement.dataset.versionId;
    const byFunction = new Map();
    for (const version of versions) {
      if (!byFunction.has(version.id)) byFunction.set(version.id, []);
      byFunction.get(version.id).push(version);
    }
    const items = [];
    for (const [functionId, group] of byFunction) {
      group.sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
      const versionItems = group.map((version) => {
        const counts = instanceCounts(version);
        const current =
          ui.selection &&
          ui.selection.functionId === functionId &&
          ui.selection.versionId === version.versionId;
        const button = el(
          "button",
          {
            type: "button",
            class: "version-link",
            "data-function-id": functionId,
            "data-version-id": version.versionId,
            "data-status": version.status,
            "aria-current": current ? "true" : "false",
            onclick: () => select(functionId, version.versionId),
          },
          el(
            "span",
            { class: "row" },
            el(
              "span",
              {},
              el("span", { class: "visually-hidden", text: "version " }),
              el("code", { text: short(version.versionId), title: version.versionId }),
            ),
            el("span", { class: "badge", "data-status": version.status, text: version.status }),
          ),
          el("span", {
            class: "sub",
            text: counts
              ? `instances ${counts.current}/${counts.total} · min ${counts.min ?? "–"} · max ${counts.max ?? "–"}`
              : "not deployed",
          }),
        );
        return el("li", {}, button);
      });
      items.push(
        el(
          "li",
          { "data-function-id": functionId },
          el("span", { class: "function-name", text: group[0].name }),
          el("code", { class: "function-id", text: functionId, title: functionId }),
          el("ul", { class: "version-list" }, ...versionItems),
        ),
      );
    }
    list.replaceChildren(...items);
    if (focused) {
      const again = list.querySelector(`[data-version-id="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  // -- the selected version: head, tiles, charts -----------------------------------------------

  function renderHead(version) {
    $("version-name").textContent = version.name;
    setBadge($("version-status"), version.status);
    $("version-function-id").textContent = version.id;
    $("version-version-id").textContent = version.versionId;
    const health = $("version-health");
    const info = version.healthInfo;
    health.hidden = !info;
    if (info) {
      health.textContent = [info.error, info.fix].filter(Boolean).join(" — ") || json(info);
    }
  }

  function renderTiles(version) {
    const counts = instanceCounts(version);
    $("tile-instances").textContent = counts
      ? `${counts.current} / ${counts.min ?? "–"} / ${counts.max ?? "–"}`
      : "0 / – / –";
    const points = (ui.series && ui.series.points) || [];
    let total = 0;
    let failures = 0;
    let weighted = 0;
    let weight = 0;
    for (const point of points) {
      total += point.invocations || 0;
      failures += point.failures || 0;
      if (point.inferenceSeconds !== null && point.inferenceSeconds !== undefined) {
        const n = Math.max(point.invocations || 0, 1);
        weighted += point.inferenceSeconds * n;
        weight += n;
      }
    }
    $("tile-invocations").textContent = ui.series ? String(total) : "–";
    $("tile-failures").textContent = ui.series ? String(failures) : "–";
    $("tile-success").textContent = total ? `${(((total - failures) / total) * 100).toFixed(1)} %` : "–";
    $("tile-inference").textContent = weight ? seconds(weighted / weight) : "–";
    const last = points[points.length - 1];
    $("tile-queue").textContent = last ? String(last.queueDepth ?? 0) : "–";
  }

  function niceMax(value, floor) {
    const top = Math.max(value, floor);
    const power = 10 ** Math.floor(Math.log10(top));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * power >= top) return step * power;
    }
    return top;
  }

  const CHARTS = {
    invocations: { kind: "bars", unit: "per interval", floor: 1, sum: true },
    failures: { kind: "bars", unit: "per interval", floor: 1, sum: true, bad: true },
    queueDepth: { kind: "steps", unit: "waiting", floor: 1 },
    inferenceSeconds: { kind: "line", unit: "s", floor: 0.1 },
  };

  function drawChart(svg, field, series, minutes) {
    const spec = CHARTS[field];
    const figure = svg.closest("figure");
    figure.dataset.kind = spec.bad ? "bad" : "";
    const width = Math.max(svg.clientWidth || 260, 120);
    const height = svg.clientHeight || 92;
    const left = 34;
    const right = 6;
    const top = 6;
    const bottom = 16;
    const interval = (series && series.interval) || 5;
    const points = ((series && series.points) || []).map((p) => ({
      t: Date.parse(p.time),
      v: p[field],
    }));
    const end = ui.now;
    const start = end - minutes * 60000;
    const values = points.filter((p) => p.v !== null && p.v !== undefined).map((p) => p.v);
    const max = niceMax(values.length ? Math.max(...values) : 0, spec.floor);
    const x = (t) => left + ((t - start) / (end - start)) * (width - left - right);
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const nodes = [
      svgEl("line", { class: "grid-line", x1: left, x2: width - right, y1: y(max), y2: y(max) }),
      svgEl("line", { class: "grid-line", x1: left, x2: width - right, y1: y(max / 2), y2: y(max / 2) }),
      svgEl("line", { class: "axis", x1: left, x2: width - right, y1: y(0), y2: y(0) }),
      svgEl("text", { class: "label", x: left - 4, y: y(max) + 3, "text-anchor": "end", text: fmtAxis(max) }),
      svgEl("text", { class: "label", x: left - 4, y: y(0) + 3, "text-anchor": "end", text: "0" }),
      svgEl("text", { class: "label", x: left, y: height - 3, text: `−${minutes} min` }),
      svgEl("text", { class: "label", x: width - right, y: height - 3, "text-anchor": "end", text: "now" }),
    ];
    const visible = points.filter((p) => p.t >= start - interval * 1000 && p.t <= end + interval * 1000);
    if (spec.kind === "bars") {
      const barWidth = Math.max(((interval * 1000) / (end - start)) * (width - left - right) - 1, 1);
      for (const p of visible) {
        if (!p.v) continue;
        const bar = svgEl("rect", {
          class: "bar",
          x: Math.max(x(p.t) - barWidth, left),
          y: y(p.v),
          width: barWidth,
          height: y(0) - y(p.v),
        });
        bar.append(svgEl("title", { text: `${clock(new Date(p.t).toISOString())}: ${p.v}` }));
        nodes.push(bar);
      }
    } else {
      let path = "";
      let pen = false;
      let previous = null;
      for (const p of visible) {
        if (p.v === null || p.v === undefined) {
          pen = false;
          continue;
        }
        const px = Math.max(x(p.t), left).toFixed(1);
        const py = y(p.v).toFixed(1);
        if (!pen) path += `M${px},${py}`;
        else if (spec.kind === "steps") path += `H${px}V${py}`;
        else path += `L${px},${py}`;
        pen = true;
        previous = p;
        const dot = svgEl("circle", { class: "dot", cx: px, cy: py, r: spec.kind === "line" ? 2 : 0 });
        dot.append(svgEl("title", { text: `${clock(new Date(p.t).toISOString())}: ${fmtAxis(p.v)}` }));
        nodes.push(dot);
      }
      if (previous && spec.kind === "steps") path += `H${Math.min(x(end), width - right).toFixed(1)}`;
      if (path) nodes.splice(3, 0, svgEl("path", { class: "line", d: path }));
    }
    svg.replaceChildren(...nodes);
    const total = values.reduce((a, b) => a + b, 0);
    const latest = values.length ? values[values.length - 1] : null;
    svg.dataset.points = String(points.length);
    svg.dataset.total = String(spec.kind === "line" ? values.length : total);
    svg.dataset.max = String(values.length ? Math.max(...values) : 0);
    const caption = figure.querySelector("figcaption");
    let now = caption.querySelector(".now");
    if (!now) {
      now = el("span", { class: "now" });
      caption.append(now);
    }
    if (spec.sum) now.textContent = `${total} total`;
    else if (spec.kind === "line") now.textContent = latest === null ? "–" : `last ${seconds(latest)}`;
    else now.textContent = latest === null ? "–" : `now ${latest}`;
    svg.setAttribute(
      "aria-label",
      `${caption.firstChild.textContent} over the last ${minutes} minutes, every ${interval} s: ` +
        (values.length ? `${spec.sum ? `total ${total}, ` : ""}highest ${fmtAxis(Math.max(...values))}` : "no data yet"),
    );
  }

  function fmtAxis(value) {
    if (Number.isInteger(value)) return String(value);
    return value >= 10 ? value.toFixed(0) : value.toFixed(2).replace(/0$/, "");
  }

  function renderCharts() {
    const minutes = Number($("range").value);
    $("interval").textContent = String((ui.series && ui.series.interval) || 5);
    for (const svg of document.querySelectorAll("svg[data-chart]")) {
      drawChart(svg, svg.dataset.chart, ui.series, minutes);
    }
  }

  // -- invocations ------------------------------------------------------------------------------

  function invocationRow(requestId) {
    const progressFill = el("div", { class: "progress-fill", style: "width: 0%" });
    const progressValue = el("span", { class: "progress-value", text: "0 %" });
    const toggle = el("button", {
      type: "button",
      "data-role": "show-logs",
      "aria-expanded": "false",
      text: "Logs",
      onclick: () => toggleRequestLogs(requestId),
    });
    const cells = {
      request: el("td", {}, el("code", { class: "request-id", title: requestId, text: short(requestId) })),
      status: el("td", {}, el("span", { class: "badge", "data-role": "status" })),
      http: el("td", { "data-role": "http" }),
      progress: el(
        "td",
        {},
        el(
          "div",
          {
            class: "progress",
            role: "progressbar",
            "aria-valuemin": "0",
            "aria-valuemax": "100",
            "aria-label": `progress of request ${requestId}`,
            "data-role": "progress",
          },
          el("div", { class: "progress-track" }, progressFill),
          progressValue,
        ),
      ),
      partial: el("td", {}, el("code", { class: "partial", "data-role": "partial" })),
      accepted: el("td", { "data-role": "accepted" }),
      seconds: el("td", { "data-role": "seconds" }),
      result: el("td", { "data-role": "result-cell" }),
      logs: el("td", {}, toggle),
    };
    const row = el("tr", { "data-request-id": requestId }, ...Object.values(cells));
    row.cells_ = cells;
    row.fill_ = progressFill;
    row.value_ = progressValue;
    row.toggle_ = toggle;
    return row;
  }

  function updateInvocationRow(row, inv) {
    const c = row.cells_;
    row.dataset.status = inv.status;
    setBadge(c.status.firstChild, inv.status);
    c.http.textContent = inv.httpStatus === null || inv.httpStatus === undefined ? "–" : String(inv.httpStatus);
    // The bar shows what the container reported; a fulfilled request is complete whatever
    // it reported (most never write a progress file).
    const reported = Math.max(0, Math.min(100, Number(inv.progress) || 0));
    const percent = inv.status === "fulfilled" ? 100 : reported;
    const bar = c.progress.firstChild;
    bar.setAttribute("aria-valuenow", String(percent));
    bar.dataset.value = String(percent);
    bar.dataset.reported = String(reported);
    row.fill_.style.width = `${percent}%`;
    row.value_.textContent = inv.status === "fulfilled" && reported < 100 ? "done" : `${percent} %`;
    const partial = json(inv.partialResponse);
    c.partial.firstChild.textContent = partial || "–";
    c.partial.firstChild.title = partial;
    c.accepted.textContent = clock(inv.acceptedAt);
    c.accepted.title = inv.acceptedAt || "";
    if (inv.seconds !== null && inv.seconds !== undefined) {
      c.seconds.textContent = seconds(inv.seconds);
    } else {
      const elapsed = (ui.now - Date.parse(inv.acceptedAt)) / 1000;
      c.seconds.textContent = Number.isFinite(elapsed) ? `${seconds(Math.max(elapsed, 0))} …` : "…";
    }
    if (!sameKey(c.result, inv.resultUrl || "")) {
      c.result.replaceChildren(
        inv.resultUrl
          ? el("a", { href: inv.resultUrl, "data-role": "result", download: "", text: "Download" })
          : document.createTextNode("–"),
      );
    }
  }

  function renderInvocations(version) {
    const body = $("invocations");
    const mine = (ui.state.invocations || []).filter(
      (inv) => inv.functionId === version.id && inv.versionId === version.versionId,
    );
    const running = mine.filter((inv) => inv.status === "queued" || inv.status === "running").length;
    $("invocation-count").textContent = mine.length ? `(${mine.length}${running ? `, ${running} live` : ""})` : "";
    $("no-invocations").hidden = mine.length > 0;
    const existing = new Map();
    for (const row of body.querySelectorAll("tr[data-request-id]")) existing.set(row.dataset.requestId, row);
    const rows = [];
    for (const inv of mine) {
      const row = existing.get(inv.requestId) || invocationRow(inv.requestId);
      existing.delete(inv.requestId);
      updateInvocationRow(row, inv);
      rows.push(row);
      const logs = ui.requestLogs.get(inv.requestId);
      if (logs) rows.push(logs.row);
    }
    for (const requestId of existing.keys()) ui.requestLogs.delete(requestId);
    // Move only what is out of place, so that a focused button or a selection survives.
    let cursor = body.firstChild;
    for (const row of rows) {
      if (row === cursor) cursor = cursor.nextSibling;
      else body.insertBefore(row, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  function toggleRequestLogs(requestId) {
    const row = $("invocations").querySelector(`tr[data-request-id="${CSS.escape(requestId)}"]`);
    if (ui.requestLogs.has(requestId)) {
      ui.requestLogs.get(requestId).row.remove();
      ui.requestLogs.delete(requestId);
      if (row) row.toggle_.setAttribute("aria-expanded", "false");
      return;
    }
    const pre = el("pre", {
      "data-role": "request-logs",
      "data-request-id": requestId,
      tabindex: "0",
      "aria-label": `log lines of request ${requestId}`,
    });
    const note = el("p", { class: "muted", "data-role": "request-logs-note", text: "Loading log lines…" });
    const logRow = el(
      "tr",
      { class: "invocation-logs", "data-logs-for": requestId },
      el("td", { colspan: "9" }, note, pre),
    );
    const entry = { row: logRow, pre, note, next: null, ids: new Set(), busy: false };
    ui.requestLogs.set(requestId, entry);
    if (row) {
      row.toggle_.setAttribute("aria-expanded", "true");
      row.after(logRow);
    }
    refreshRequestLogs(requestId, entry).catch(onError);
  }

  async function refreshRequestLogs(requestId, entry) {
    if (entry.busy || !ui.selection) return;
    entry.busy = true;
    try {
      const answer = await getJson(
        `/_local/logs?${query({
          functionId: ui.selection.functionId,
          versionId: ui.selection.versionId,
          requestId,
          after: entry.next,
          limit: entry.next === null ? LOG_LIMIT : null,
        })}`,
      );
      for (const line of answer.lines || []) {
        if (entry.ids.has(line.id)) continue;
        entry.ids.add(line.id);
        entry.pre.append(
          el("span", { class: "line", "data-log-id": String(line.id), text: line.text ?? line.message }),
          "\n",
        );
      }
      if (answer.next !== undefined && answer.next !== null) entry.next = answer.next;
      const count = entry.ids.size;
      entry.note.textContent = count
        ? `${count} log line${count === 1 ? "" : "s"} written for request ${requestId}`
        : `No log line names request ${requestId} yet.`;
    } catch (error) {
      if (error instanceof AuthError) throw error;
      entry.note.textContent = `Cannot read the log lines: ${error.message}`;
    } finally {
      entry.busy = false;
    }
  }

  // -- the Logs tab -----------------------------------------------------------------------------

  function logFilters() {
    return {
      functionId: ui.selection && ui.selection.functionId,
      versionId: ui.selection && ui.selection.versionId,
      requestId: $("log-request").value.trim(),
      level: $("log-level").value,
    };
  }

  function resetLogs() {
    ui.logs = { key: "", next: null, lines: [], ids: new Set(), busy: false };
    $("log-rows").replaceChildren();
    $("log-window").textContent = "";
    $("log-count").textContent = "";
    if (ui.tab === "logs") refreshLogs(true).catch(onError);
  }

  function logView() {
    return $("log-view-window").checked ? "window" : "rows";
  }

  function showLogView() {
    const windowView = logView() === "window";
    $("log-rows-box").hidden = windowView;
    $("log-window").hidden = !windowView;
    $("log-copy").hidden = !windowView;
  }

  function logRow(line) {
    const message = el("td", { class: "message" });
    if (line.inference) message.append(el("span", { class: "tag", text: "INFERENCE" }));
    message.append(line.message ?? line.text);
    const request = el("td", {});
    if (line.requestId) {
      request.append(
        el("button", {
          type: "button",
          class: "link-button request-id",
          title: `show only request ${line.requestId}`,
          text: short(line.requestId),
          onclick: () => {
            $("log-request").value = line.requestId;
            resetLogs();
          },
        }),
      );
    }
    return el(
      "tr",
      { "data-log-id": String(line.id), "data-level": line.level || "" },
      el("td", { title: line.time, text: clock(line.time) }),
      el("td", { text: line.instance === null || line.instance === undefined ? "–" : String(line.instance) }),
      el("td", { text: line.level || "" }),
      request,
      message,
    );
  }

  async function refreshLogs(force) {
    if (!ui.selection || ui.logs.busy) return;
    const filters = logFilters();
    const key = JSON.stringify(filters);
    const logs = ui.logs;
    if (logs.key && logs.key !== key) return; // a reset is on its way
    if (!force && logs.key && !$("log-follow").checked) return;
    logs.key = key;
    logs.busy = true;
    const box = $("log-rows-box");
    const pre = $("log-window");
    const stuck = (node) => node.scrollHeight - node.scrollTop - node.clientHeight < 24;
    const follow = { rows: stuck(box), window: stuck(pre) };
    try {
      const answer = await getJson(
        `/_local/logs?${query({
          ...filters,
          after: logs.next,
          limit: logs.next === null ? LOG_LIMIT : null,
        })}`,
      );
      if (ui.logs !== logs) return; // the filters changed while it was asked
      const fresh = (answer.lines || []).filter((line) => !logs.ids.has(line.id));
      const rows = document.createDocumentFragment();
      let text = "";
      for (const line of fresh) {
        logs.ids.add(line.id);
        logs.lines.push(line);
        rows.append(logRow(line));
        text += `${line.text ?? line.message}\n`;
      }
      if (answer.next !== undefined && answer.next !== null) logs.next = answer.next;
      $("log-rows").append(rows);
      if (text) pre.append(text);
      if (logs.lines.length > LOG_KEEP) {
        const drop = logs.lines.length - LOG_KEEP;
        for (const line of logs.lines.splice(0, drop)) logs.ids.delete(line.id);
        const table = $("log-rows");
        for (let i = 0; i < drop && table.firstChild; i += 1) table.firstChild.remove();
        pre.textContent = logs.lines.map((line) => line.text ?? line.message).join("\n") + "\n";
      }
      $("no-logs").hidden = logs.lines.length > 0;
      $("no-logs").textContent = "No log line matches.";
      $("log-count").textContent = `${logs.lines.length} line${logs.lines.length === 1 ? "" : "s"}`;
      if (fresh.length && follow.rows) box.scrollTop = box.scrollHeight;
      if (fresh.length && follow.window) pre.scrollTop = pre.scrollHeight;
    } catch (error) {
      if (error instanceof AuthError) throw error;
      $("no-logs").hidden = false;
      $("no-logs").textContent = `Cannot read the logs: ${error.message}`;
    } finally {
      logs.busy = false;
    }
  }

  async function copyLogs() {
    const pre = $("log-window");
    const button = $("log-copy");
    try {
      await navigator.clipboard.writeText(pre.textContent);
      button.textContent = "Copied";
    } catch (_) {
      // No clipboard permission: select the text, so Ctrl-C copies it.
      const range = document.createRange();
      range.selectNodeContents(pre);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl-C";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 2000);
  }

  // -- the deployment ---------------------------------------------------------------------------

  function healthItem(info, where) {
    if (!info) return null;
    if (typeof info !== "object") return el("li", { text: `${where}: ${info}` });
    const item = el("li", { "data-role": "health" });
    item.append(el("strong", { text: `${where}: ` }), info.error || json(info));
    if (info.fix) item.append(el("br"), el("span", { class: "fix", text: `fix: ${info.fix}` }));
    return item;
  }

  function renderDeployment(version) {
    const deployment = version.deployment;
    $("no-deployment").hidden = Boolean(deployment);
    $("deployment-detail").hidden = !deployment;
    if (!sameKey($("panel-deployment"), JSON.stringify(version))) {
      if (deployment) {
        $("deployment-specs").replaceChildren(
          ...(deployment.deploymentSpecifications || []).map((spec) =>
            el(
              "tr",
              {},
              ...[spec.gpu, spec.instanceType, spec.minInstances, spec.maxInstances, spec.maxRequestConcurrency].map(
                (value) => el("td", { text: value === undefined || value === null ? "–" : String(value) }),
              ),
            ),
          ),
        );
        $("deployment-instances").replaceChildren(
          ...(deployment.instances || []).map((instance) =>
            el(
              "tr",
              { "data-instance": String(instance.instance), "data-status": instance.status },
              el("td", { text: String(instance.instance) }),
              el("td", {}, el("span", { class: "badge", "data-status": instance.status, text: instance.status })),
              el("td", { text: String(instance.inferencePort ?? "–") }),
              el("td", { text: instance.takingWork ? "yes" : "no" }),
              el("td", {
                text: instance.healthInfo
                  ? [instance.healthInfo.error, instance.healthInfo.fix].filter(Boolean).join(" — ") ||
                    json(instance.healthInfo)
                  : instance.status === "ACTIVE"
                    ? "healthy"
                    : "–",
              }),
            ),
          ),
        );
        const health = [];
        if (version.healthInfo) health.push(healthItem(version.healthInfo, "version"));
        for (const info of [].concat(deployment.healthInfo || [])) health.push(healthItem(info, "deployment"));
        for (const instance of deployment.instances || []) {
          if (instance.healthInfo) health.push(healthItem(instance.healthInfo, `instance ${instance.instance}`));
        }
        if (!health.length) health.push(el("li", { class: "muted", text: "No error reported." }));
        $("deployment-health").replaceChildren(...health);
      }
      const skip = new Set(["id", "versionId", "name", "status", "createdAt", "healthInfo", "deployment"]);
      const definition = [];
      for (const [key, value] of Object.entries(version)) {
        if (skip.has(key)) continue;
        definition.push(
          el("dt", { text: key }),
          el("dd", {}, el("code", { text: typeof value === "object" ? JSON.stringify(value) : String(value) })),
        );
      }
      definition.push(el("dt", { text: "createdAt" }), el("dd", { text: version.createdAt || "–" }));
      $("definition").replaceChildren(...definition);
    }
  }

  // -- tabs -------------------------------------------------------------------------------------

  function showTab(name, focus) {
    ui.tab = name;
    for (const tab of document.querySelectorAll('[role="tab"]')) {
      const on = tab.id === `tab-${name}`;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
      $(tab.getAttribute("aria-controls")).hidden = !on;
    }
    writeHash();
    if (name === "logs") refreshLogs(true).catch(onError);
  }

  // -- the loop ---------------------------------------------------------------------------------

  function render() {
    if (!ui.state) return;
    renderSidebar();
    const version = selectedVersion();
    $("no-selection").hidden = Boolean(version);
    $("version-detail").hidden = !version;
    if (!version) return;
    renderHead(version);
    renderTiles(version);
    renderCharts();
    renderInvocations(version);
    renderDeployment(version);
  }

  async function refreshSeries(force) {
    if (!ui.selection) return;
    const minutes = $("range").value;
    const key = JSON.stringify([ui.selection, minutes]);
    const interval = ((ui.series && ui.series.interval) || 5) * 1000;
    if (!force && key === ui.seriesKey && Date.now() - ui.seriesAt < Math.min(interval, 5000)) return;
    ui.seriesAt = Date.now();
    const answer = await getJson(
      `/_local/series?${query({ ...ui.selection, minutes })}`,
    );
    if (JSON.stringify([ui.selection, $("range").value]) !== key) return;
    ui.series = answer;
    ui.seriesKey = key;
    const version = selectedVersion();
    if (version) {
      renderTiles(version);
      renderCharts();
    }
  }

  function setConnection(state, text) {
    const node = $("connection");
    node.dataset.state = state;
    node.replaceChildren(text);
    if (state === "login") {
      node.append(" ", el("a", { href: "/", text: "log in again" }));
    }
  }

  function onError(error) {
    if (error instanceof AuthError) {
      setConnection("login", "the API key is needed:");
    } else {
      setConnection("error", `cannot reach the local NVCF (${error.message})`);
    }
  }

  async function refresh() {
    const state = await getJson("/_local/state");
    ui.state = state;
    ui.now = Date.parse(state.now) || Date.now();
    if (!selectedVersion() && state.functions.length) {
      const first = state.functions[0];
      ui.selection = { functionId: first.id, versionId: first.versionId };
      writeHash();
      ui.seriesKey = "";
    }
    render();
    ui.refreshes += 1;
    document.body.dataset.refreshes = String(ui.refreshes);
    setConnection("live", "live");
    $("updated").textContent = clock(state.now);
    $("updated").dateTime = state.now;
    const work = [refreshSeries(false)];
    if (ui.tab === "logs") work.push(refreshLogs(false));
    for (const [requestId, entry] of ui.requestLogs) work.push(refreshRequestLogs(requestId, entry));
    const results = await Promise.allSettled(work);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  let timer = null;
  let looping = false;

  async function loop() {
    if (looping) return; // the running round schedules the next
    looping = true;
    clearTimeout(timer);
    try {
      await refresh();
    } catch (error) {
      onError(error);
    } finally {
      looping = false;
    }
    // A hidden tab asks less often; showing it again asks at once.
    timer = setTimeout(loop, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  function start() {
    readHash();
    showTab(ui.tab, false);
    showLogView();
    const tabs = [...document.querySelectorAll('[role="tab"]')];
    tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => showTab(tab.id.slice(4), false));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        event.preventDefault();
        showTab(tabs[(index + step + tabs.length) % tabs.length].id.slice(4), true);
      });
    });
    $("range").addEventListener("change", () => refreshSeries(true).catch(onError));
    $("log-level").addEventListener("change", resetLogs);
    let typing = null;
    const filterTyped = () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        if (JSON.stringify(logFilters()) !== ui.logs.key) resetLogs();
      }, 300);
    };
    for (const event of ["input", "change", "search"]) {
      $("log-request").addEventListener(event, filterTyped);
    }
    $("log-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      resetLogs();
    });
    for (const radio of document.querySelectorAll('input[name="log-view"]')) {
      radio.addEventListener("change", showLogView);
    }
    $("log-follow").addEventListener("change", () => refreshLogs(true).catch(onError));
    $("log-copy").addEventListener("click", copyLogs);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) loop();
    });
    window.addEventListener("resize", () => {
      if (selectedVersion()) renderCharts();
    });
    loop();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
