"""The page's own CSS and JavaScript, inlined: the report is one file that works offline.

Kept as Python strings (not package data files) so an installed package always has them.
The script touches only the DOM the renderer wrote; no user data is ever placed in it.
"""

from __future__ import annotations

# Must run before anything else on the page so the self-test sees every script error.
ERROR_TRAP = """
window.__auditErrors = [];
window.addEventListener('error', function (e) {
  window.__auditErrors.push(String(e.message || e.type));
});
window.addEventListener('unhandledrejection', function (e) {
  window.__auditErrors.push('unhandled rejection: ' + String(e.reason));
});
"""

CSS = """
:root {
  --ink: #1d2330; --muted: #5f6b7a; --line: #d8dde5; --paper: #ffffff; --wash: #f5f7fa;
  --error: #c62828; --warning: #c77700; --info: #1565c0;
  --c0: #3366cc; --c1: #dc6e1c; --c2: #2e9e5b; --c3: #9c4fd6; --c4: #c23b6a;
  --c5: #1b9aaa; --c6: #8a6d1d; --c7: #5a6270;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--wash); }
header { background: var(--ink); color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 650; letter-spacing: .2px; }
header .meta { margin: 0; color: #c9d1dc; font-size: 13px; }
main { padding: 18px 28px 40px; max-width: 1500px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; }
.tiles.severities { margin-bottom: 10px; }
button.detector, button.severity { all: unset; cursor: pointer; background: var(--paper);
  border: 1px solid var(--line);
  border-radius: 8px; padding: 10px 14px; min-width: 150px; }
button.severity { min-width: 110px; border-top: 3px solid var(--sev); }
button.detector:hover, button.severity:hover { border-color: var(--muted); }
button.detector[aria-pressed="true"], button.severity[aria-pressed="true"] {
  border-color: var(--ink); box-shadow: 0 0 0 2px var(--ink) inset; }
button.detector .n, button.severity .n { display: block; font-size: 24px; font-weight: 650; }
button.detector .name, button.severity .name {
  font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
.sevs { display: block; font-size: 12px; color: var(--muted); }
.sevs > span + span { margin-left: 8px; }
.sev-dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%;
  margin-right: 3px; }
.sev-error { --sev: var(--error); }
.sev-warning { --sev: var(--warning); }
.sev-info { --sev: var(--info); }
.sev-dot { background: var(--sev); }
.columns { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 16px; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
td.list { font-size: 12.5px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; background: var(--paper);
  border: 1px solid var(--line); }
th, td { text-align: left; padding: 5px 9px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: 12.5px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 8px; background: var(--c0); border-radius: 4px;
  vertical-align: middle; margin-right: 6px; }
nav.toc { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 12px; }
nav.toc a { background: var(--paper); border: 1px solid var(--line); border-radius: 14px;
  padding: 2px 10px;
  color: var(--ink); text-decoration: none; font-size: 12.5px; }
nav.toc a:hover { border-color: var(--muted); }
.field-group { background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
  margin: 0 0 18px; padding: 14px 16px; }
.field-group > header { all: unset; display: flex; flex-wrap: wrap; align-items: baseline;
  gap: 10px;
  margin-bottom: 10px; }
.pill { font-size: 12px; border-radius: 10px; padding: 1px 8px; background: #eef1f5;
  color: var(--muted); }
.pill.sev { background: var(--sev); color: #fff; }
article.story { display: grid; grid-template-columns: fit-content(68%) minmax(300px, 1fr);
  gap: 16px;
  border-top: 1px solid var(--line); padding: 12px 0; }
article.story:first-of-type { border-top: 0; }
@media (max-width: 900px) { article.story { grid-template-columns: 1fr; } }
.timeline { overflow-x: auto; }
.explanation { border-left: 3px solid var(--sev); padding-left: 10px; margin-bottom: 8px; }
.explanation .tag { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px;
  font-weight: 600; color: var(--sev); }
.explanation p.message { margin: 2px 0 0; }
.fact-tag { font-weight: 500; font-family: system-ui, sans-serif; font-size: 11.5px;
  border-radius: 9px; padding: 0 7px; background: #eef1f5; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px;
  margin: 4px 0 0; font-size: 12.5px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.facts-line { font-size: 12px; }
.not-read { font-style: italic; color: var(--muted); }
ol.witnesses { margin: 0; padding-left: 0; list-style: none; font-size: 12.5px; }
ol.witnesses li { padding: 2px 4px; border-radius: 4px; }
ol.witnesses li.lit, ol.witnesses li:hover { background: #fff3c4; }
ol.witnesses .w { font-weight: 650; margin-right: 4px; }
ol.witnesses .struck { text-decoration: line-through; text-decoration-color: var(--error); }
.muted { color: var(--muted); }
details.rest-field { background: var(--paper); border: 1px solid var(--line);
  border-radius: 8px;
  margin-bottom: 8px; padding: 6px 10px; }
details.rest-field summary { cursor: pointer; }
details.more-rows { margin-top: 4px; font-size: 13px; }
details.more-rows summary { cursor: pointer; color: var(--muted); }
details.rest-field table { margin-top: 6px; }
.legend { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; font-size: 12.5px;
  color: var(--muted);
  margin-bottom: 10px; }
.legend svg { vertical-align: middle; }
.hidden-by-filter { display: none !important; }
/* the swimlane */
svg.swimlane { display: block; font-family: system-ui, sans-serif; max-width: 100%;
  height: auto; }
svg.swimlane .band { fill: #fafbfc; } svg.swimlane .band.odd { fill: #f1f4f8; }
svg.swimlane .lane-name { font-size: 12px; font-weight: 600; fill: var(--ink); }
svg.swimlane .guide { stroke: var(--sev, #999); stroke-width: 1; stroke-dasharray: 3 3;
  opacity: .55; }
svg.swimlane .mark { stroke: #fff; stroke-width: 1.5; opacity: .55; }
svg.swimlane .witness .mark { opacity: 1; stroke: var(--ink); stroke-width: 2.5; }
svg.swimlane .label { font: 11px ui-monospace, Menlo, Consolas, monospace;
  text-anchor: middle; fill: var(--muted); }
svg.swimlane .witness .label { fill: var(--ink); font-weight: 600; }
svg.swimlane .label .ver { fill: var(--muted); font-weight: 400; }
svg.swimlane .struck { text-decoration: line-through; fill: var(--error); }
svg.swimlane .badge { font-size: 10px; font-weight: 700; fill: var(--ink); }
svg.swimlane .span { opacity: .22; } svg.swimlane .span.open { opacity: .12; }
svg.swimlane .span-start { stroke-width: 2; }
svg.swimlane .span-label { font-size: 9.5px; fill: var(--ink); }
svg.swimlane .axis line { stroke: #9aa5b3; stroke-width: 1; }
svg.swimlane .axis text { font-size: 10px; fill: var(--muted); text-anchor: middle;
  font-variant-numeric: tabular-nums; }
svg.swimlane .hidden-writes text { font-size: 11px; fill: var(--muted); text-anchor: middle; }
svg.swimlane g.write.lit .mark { stroke: #f2b600; stroke-width: 4; opacity: 1; }
svg .c0 { fill: var(--c0); stroke: var(--c0); } svg .c1 { fill: var(--c1); stroke: var(--c1); }
svg .c2 { fill: var(--c2); stroke: var(--c2); } svg .c3 { fill: var(--c3); stroke: var(--c3); }
svg .c4 { fill: var(--c4); stroke: var(--c4); } svg .c5 { fill: var(--c5); stroke: var(--c5); }
svg .c6 { fill: var(--c6); stroke: var(--c6); } svg .c7 { fill: var(--c7); stroke: var(--c7); }
svg.swimlane .mark.c0, svg.swimlane .mark.c1, svg.swimlane .mark.c2, svg.swimlane .mark.c3,
svg.swimlane .mark.c4, svg.swimlane .mark.c5, svg.swimlane .mark.c6,
  svg.swimlane .mark.c7 { stroke: #fff; }
svg.swimlane .witness .mark { stroke: var(--ink); }
svg.swimlane .key { stroke: none; }
svg.swimlane .span { stroke: none; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""

SCRIPT = """
(function () {
  'use strict';
  var filterable = function () {
    return document.querySelectorAll('div.explanation, tr.finding-row');
  };
  // Click a severity or detector tile to show only its findings; click again to show all.
  // A tile filters by the attribute it carries itself: data-severity or data-detector.
  var keyOf = function (button) {
    return button.hasAttribute('data-severity') ? 'data-severity' : 'data-detector';
  };
  var active = null;
  var buttons = document.querySelectorAll('button.severity, button.detector');
  buttons.forEach(function (button) {
    button.addEventListener('click', function () {
      active = active === button ? null : button;
      buttons.forEach(function (b) { b.setAttribute('aria-pressed', String(b === active)); });
      var key = active === null ? null : keyOf(active);
      var value = active === null ? null : active.getAttribute(key);
      filterable().forEach(function (el) {
        var hide = active !== null && el.getAttribute(key) !== value;
        el.classList.toggle('hidden-by-filter', hide);
      });
      // A story, a field or a list with nothing left to show goes too.
      ['article.story', '.field-group', 'details.rest-field'].forEach(function (sel) {
        document.querySelectorAll(sel).forEach(function (box) {
          var any = box.querySelector(
            'div.explanation:not(.hidden-by-filter), tr.finding-row:not(.hidden-by-filter)');
          box.classList.toggle('hidden-by-filter', !any);
        });
      });
    });
  });
  // Point at a witness in the explanation to light its mark on the timeline, and back.
  // Ids are compared as attribute values, never spliced into a selector.
  document.querySelectorAll('article.story').forEach(function (article) {
    var items = article.querySelectorAll('ol.witnesses li[data-event-id]');
    var marks = article.querySelectorAll('g.write[data-event-id]');
    var light = function (id, on) {
      items.forEach(function (li) {
        if (li.getAttribute('data-event-id') === id) { li.classList.toggle('lit', on); }
      });
      marks.forEach(function (g) {
        if (g.getAttribute('data-event-id') === id) { g.classList.toggle('lit', on); }
      });
    };
    items.forEach(function (li) {
      var id = li.getAttribute('data-event-id');
      li.addEventListener('mouseenter', function () { light(id, true); });
      li.addEventListener('mouseleave', function () { light(id, false); });
    });
    marks.forEach(function (g) {
      var id = g.getAttribute('data-event-id');
      g.addEventListener('mouseenter', function () { light(id, true); });
      g.addEventListener('mouseleave', function () { light(id, false); });
    });
  });
  // `report.html#selftest`: record script errors and the rendered size of every timeline,
  // for a headless browser to read back from the DOM.
  if (location.hash === '#selftest') {
    window.addEventListener('load', function () {
      var sizes = [];
      document.querySelectorAll('svg.swimlane').forEach(function (svg) {
        var box = svg.getBoundingClientRect();
        sizes.push({width: box.width, height: box.height,
                    marks: svg.querySelectorAll('g.write').length});
      });
      // Exercise the controls too: each severity and detector filter, then hovering a
      // witness.
      // (By class, not by layout: measuring rows inside closed <details> forces a layout
      // per row, minutes on a large report.)
      var shown = function () {
        var n = 0;
        document.querySelectorAll('[data-fingerprint]').forEach(function (el) {
          if (!el.closest('.hidden-by-filter')) { n += 1; }
        });
        return n;
      };
      var filters = [];
      buttons.forEach(function (button) {
        button.click();
        var key = keyOf(button);
        filters.push({by: key.replace('data-', ''), value: button.getAttribute(key),
                      shown: shown()});
        button.click();
      });
      var lit = null;
      var item = document.querySelector('ol.witnesses li[data-event-id]');
      if (item) {
        item.dispatchEvent(new MouseEvent('mouseenter'));
        lit = item.closest('article').querySelectorAll('g.write.lit').length;
        item.dispatchEvent(new MouseEvent('mouseleave'));
      }
      var out = document.getElementById('selftest');
      out.textContent = JSON.stringify({
        errors: window.__auditErrors || [],
        timelines: sizes,
        findings: document.querySelectorAll('[data-fingerprint]').length,
        shown: shown(),
        filters: filters,
        lit: lit
      });
      out.setAttribute('data-done', 'true');
    });
  }
})();
"""
