# ruff: noqa: E501  (the page below is HTML, CSS and JavaScript, not Python)
"""``/docs``: the OpenAPI document rendered for a person, with no network access.

One self-contained HTML page: the document is embedded, a small vanilla-JS
renderer lists every operation with its parameters, request body, responses and
schemas.  No CDN, no external stylesheet, font or script.
"""

from __future__ import annotations

import json
from typing import Any

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9cfdb}main{max-width:1100px;margin:0 auto;padding:18px 28px}
nav input{width:100%;padding:8px 10px;font-size:15px;border:1px solid #c9cfdb;border-radius:6px;box-sizing:border-box}
h2{margin:28px 0 8px;font-size:18px;text-transform:capitalize}
details.op{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:6px 0}
details.op>summary{cursor:pointer;padding:8px 12px;list-style:none;display:flex;gap:12px;align-items:baseline}
details.op>summary::-webkit-details-marker{display:none}
.m{font:700 12px/1 ui-monospace,monospace;padding:5px 7px;border-radius:4px;color:#fff;min-width:46px;text-align:center}
.GET{background:#2f6fce}.POST{background:#198754}.PUT{background:#b7791f}.DELETE{background:#c53030}.PATCH{background:#6b46c1}
.p{font-family:ui-monospace,monospace;font-weight:600}.s{color:#5a6475}
.body{padding:4px 16px 14px;border-top:1px solid #eef0f4}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-bottom:1px solid #eef0f4;padding:4px 6px;text-align:left;vertical-align:top}
th{font-size:13px;color:#5a6475;font-weight:600}code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f1f3f7;padding:8px;border-radius:4px;overflow:auto;margin:4px 0}
.st{font-family:ui-monospace,monospace;font-weight:700}.ok{color:#198754}.err{color:#c53030}
.lock{font-size:12px;color:#8a5a00;background:#fff4d6;border-radius:4px;padding:2px 6px}
h4{margin:12px 0 4px;font-size:14px}.req{color:#c53030}
</style>
</head>
<body>
<header><h1 id="title"></h1><p id="sub"></p></header>
<main>
<nav><input id="filter" placeholder="Filter operations (path, summary, tag)" aria-label="Filter"></nav>
<div id="ops"></div>
<h2>Schemas</h2><div id="schemas"></div>
</main>
<script id="spec" type="application/json">__SPEC__</script>
<script>
"use strict";
const spec = JSON.parse(document.getElementById("spec").textContent);
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const refName = (r) => r.split("/").pop();
function typeOf(s) {
  if (!s) return "any";
  if (s.$ref) return refName(s.$ref);
  if (s.anyOf) return s.anyOf.map(typeOf).join(" | ");
  let t = Array.isArray(s.type) ? s.type.join(" | ") : (s.type || "any");
  if (t === "array") t = typeOf(s.items) + "[]";
  if (s.format) t += " (" + s.format + ")";
  if (s.enum) t += ": " + s.enum.filter((v) => v !== null).join(" | ");
  return t;
}
function schemaTable(s) {
  if (!s) return el("span", {class: "s"}, "no body");
  if (s.$ref) return el("span", {}, "see schema ", el("a", {href: "#schema-" + refName(s.$ref)}, refName(s.$ref)));
  if (s.type === "object" || s.properties) {
    const req = new Set(s.required || []);
    const rows = Object.entries(s.properties || {}).map(([name, p]) =>
      el("tr", {}, el("td", {}, el("code", {}, name), req.has(name) ? el("span", {class: "req"}, " *") : ""),
        el("td", {}, el("code", {}, typeOf(p))), el("td", {}, p.description || (p.$ref ? "" : ""))));
    const t = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "description")), ...rows);
    const notes = [];
    if (s.additionalProperties === false) notes.push("unknown fields are refused (400 unknown_field)");
    return el("div", {}, t, notes.length ? el("div", {class: "s"}, notes.join("; ")) : "");
  }
  return el("code", {}, typeOf(s));
}
function operation(path, method, op) {
  const sec = (op.security || spec.security || []).length > 0;
  const head = el("summary", {}, el("span", {class: "m " + method.toUpperCase()}, method.toUpperCase()),
    el("span", {class: "p"}, path), el("span", {class: "s"}, op.summary || ""), sec ? el("span", {class: "lock"}, "bearer") : "");
  const body = el("div", {class: "body"});
  if (op.description) body.append(el("p", {}, op.description));
  if (op["x-action"]) body.append(el("p", {class: "s"}, "Needs permission: ", el("code", {}, op["x-action"])));
  const params = op.parameters || [];
  if (params.length) {
    body.append(el("h4", {}, "Parameters"));
    body.append(el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description")),
      ...params.map((p) => el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? el("span", {class: "req"}, " *") : ""),
        el("td", {}, p.in), el("td", {}, el("code", {}, typeOf(p.schema))), el("td", {}, p.description || "")))));
  }
  if (op.requestBody) {
    const c = op.requestBody.content || {};
    const media = Object.keys(c)[0];
    body.append(el("h4", {}, "Request body (" + media + ")"));
    body.append(schemaTable(c[media] && c[media].schema));
  }
  body.append(el("h4", {}, "Responses"));
  const rows = Object.entries(op.responses || {}).map(([code, r]) => {
    const c = r.content || {};
    const media = Object.keys(c)[0];
    const s = media && c[media].schema;
    return el("tr", {}, el("td", {class: "st " + (code < "400" ? "ok" : "err")}, code), el("td", {}, r.description || ""),
      el("td", {}, media ? el("code", {}, media + (s ? " " + typeOf(s) : "")) : ""));
  });
  body.append(el("table", {}, ...rows));
  const d = el("details", {class: "op", "data-text": (path + " " + (op.summary || "") + " " + (op.tags || []).join(" ")).toLowerCase()}, head, body);
  return d;
}
function render() {
  document.title = spec.info.title;
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("sub").textContent = spec.info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(path, method, op));
    }
  }
  const ops = document.getElementById("ops");
  for (const [tag, list] of byTag) ops.append(el("section", {}, el("h2", {}, tag), ...list));
  const schemas = document.getElementById("schemas");
  for (const [name, s] of Object.entries((spec.components || {}).schemas || {})) {
    schemas.append(el("details", {class: "op", id: "schema-" + name},
      el("summary", {}, el("span", {class: "p"}, name), el("span", {class: "s"}, s.description || "")),
      el("div", {class: "body"}, schemaTable(s), el("pre", {}, JSON.stringify(s, null, 2)))));
  }
  document.getElementById("filter").addEventListener("input", (ev) => {
    const q = ev.target.value.toLowerCase();
    for (const d of document.querySelectorAll("#ops details.op")) d.style.display = d.dataset.text.includes(q) ? "" : "none";
  });
}
render();
</script>
</body>
</html>
"""


def docs_page(document: dict[str, Any]) -> str:
    """The page, with ``document`` embedded (safe inside a ``<script>`` element)."""
    spec = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # "<" only occurs inside JSON strings, where \u003c means the same: no "</script>"
    # or "<!--" can end or confuse the script element.
    spec = spec.replace("<", "\\u003c")
    title = str(document.get("info", {}).get("title", "API"))
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _PAGE.replace("__TITLE__", safe_title).replace("__SPEC__", spec)
