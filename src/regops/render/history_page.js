// The history page's program (render/html.py inlines it; the CSP allows it by its hash).
// Every string it shows came from git or a registry and is hostile: the DOM is built with
// textContent, dataset and title only, never innerHTML. Data layout: render/html.py.
(function () {
  'use strict';
  var meta = JSON.parse(document.getElementById('regops-meta').textContent);
  var S = meta.s; // strings shared by many rows: actors, authors, statuses
  var FLAG = {ROLLBACK: 1, COPY: 2, DRIFT: 4, PENDING: 8, AT: 16, OVERRIDE: 32};
  var t0 = meta.start, t1 = meta.now;
  if (meta.at && meta.at.t !== null) { t0 = Math.min(t0, meta.at.t); t1 = Math.max(t1, meta.at.t); }
  if (t1 <= t0) { t1 = t0 + 86400; }
  var pad = (t1 - t0) * 0.01; t0 -= pad; t1 += pad;

  function pct(t) { return ((t - t0) / (t1 - t0) * 100) + '%'; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function str(i) { return i === null || i === undefined ? '' : String(S[i]); }
  function iso(t) { return t === null || t === undefined ? '' : new Date(t * 1000).toISOString().slice(0, 19) + 'Z'; }
  function day(t) { return new Date(t * 1000).toISOString().slice(0, 10); }
  function vlabel(v) { return v && v.indexOf('@') < 0 ? 'v' + v : String(v); }
  function laneLabel(lane) { return (lane[0] === 'alias' ? '@' : 'stage ') + lane[1]; }
  // A tenure: [version, start, end, commit, end commit, status, applied at, actor, flags,
  // notes, gate numbers ([short, full] each)]
  function status(t) { return str(t[5]); }
  function appliedAt(t) { return t[6] !== null ? t[6] : (status(t) === 'applied' ? iso(t[1]) : ''); }
  function notes(t) { return t[9] || []; }
  function numbers(t) { return t[10] || []; }
  // A pending change of the current plan: [version, what, blocked, why blocked, gate numbers, action]
  function pendingText(p, lane) {
    return [(p[2] ? 'BLOCKED: ' : 'pending in the current plan: ') + laneLabel(lane) + ': ' + p[1]]
      .concat(p[3]).concat(p[4].map(function (n) { return 'gate numbers: ' + n; })).join('\n');
  }
  // A commit: [sha, PR, author, subject, committed (epoch), reverts]
  function who(t, c) { return (status(t) === 'applied' && t[7] !== null) ? str(t[7]) : str((c[t[3]] || [])[2]); }
  function pr(cm) { return cm[1] === null || cm[1] === undefined ? '' : '#' + cm[1]; }

  document.getElementById('title').textContent = 'Who held each stage and alias: ' + meta.state_dir;
  var sum = [meta.models.length + ' models', 'from ' + day(meta.start) + ' to now (' + meta.generated + ')'];
  if (meta.since !== null) { sum.push('since ' + iso(meta.since)); }
  sum.push(meta.registry.read ? 'registry read: ' + meta.registry.uri
    : 'registry not read (' + meta.registry.error + '): bars start at commit times');
  if (meta.at) {
    sum.push('highlighted: the state at ' + meta.at.iso + (meta.at.commit
      ? ' (desired state from ' + meta.at.commit.slice(0, 7) + (meta.at.pr ? ' PR #' + meta.at.pr : '') + ')'
      : ' (no state commit yet)'));
  }
  if (meta.plan) {
    sum.push(meta.plan.error !== null ? 'current plan not shown (' + meta.plan.error + ')'
      : 'current plan: ' + meta.plan.changes + ' pending changes, ' + meta.plan.blocked + ' blocked'
        + (meta.plan.errors.length ? ' (' + meta.plan.errors.join('; ') + ')' : ''));
  }
  if (meta.truncated) { sum.push(meta.truncated); }
  document.getElementById('summary').textContent = sum.join(' \u00b7 ');
  var legend = document.getElementById('legend');
  [['Production', 'var(--prod)'], ['Staging / other stage', 'var(--stage)'], ['Archived', 'var(--arch)'],
    ['alias', 'var(--alias)'], ['--at', 'var(--at)']].forEach(function (k) {
    var s = el('span', 'key'); var sw = el('span', 'sw'); sw.style.background = k[1];
    s.appendChild(sw); s.appendChild(document.createTextNode(k[0])); legend.appendChild(s);
  });
  legend.appendChild(el('span', 'key',
    '\u21ba rollback  \u21c4 copy from another environment  \u26a0 drift  \u2691 override  hatched: not applied yet  | now'));
  legend.appendChild(el('span', 'key', '\u25c7 pending in the current plan  \u2298 blocked by a gate'));

  function axis() {
    var row = el('div', 'axis'); row.appendChild(el('div', 'lname', ''));
    var tr = el('div', 'track'); var span = t1 - t0, step = 86400;
    var steps = [3600, 86400, 7 * 86400, 30 * 86400, 91 * 86400, 365 * 86400];
    for (var i = 0; i < steps.length; i++) { step = steps[i]; if (span / step <= 12) { break; } }
    for (var t = Math.ceil(t0 / step) * step; t < t1; t += step) {
      var k = el('span', 'tick', step < 86400 ? iso(t).slice(11, 16) : day(t));
      k.style.left = pct(t); tr.appendChild(k);
    }
    row.appendChild(tr); return row;
  }
  function lines(track) {
    var n = el('div', 'now'); n.style.left = pct(meta.now); n.title = 'now ' + meta.generated; track.appendChild(n);
    if (meta.at && meta.at.t !== null) {
      var a = el('div', 'atline'); a.style.left = pct(meta.at.t); a.title = '--at ' + meta.at.iso; track.appendChild(a);
    }
  }
  function describe(t, c, lane) {
    var cm = c[t[3]] || [];
    return [vlabel(t[0]) + ' ' + laneLabel(lane),
      'from ' + iso(t[1]) + ' to ' + (t[2] === null ? 'now' : iso(t[2])),
      'commit ' + String(cm[0] || '').slice(0, 12) + (pr(cm) ? ' PR ' + pr(cm) : '') + ' by ' + str(cm[2]) + ': ' + cm[3],
      'status ' + status(t) + (appliedAt(t) ? ' at ' + appliedAt(t) : '') + (t[7] !== null ? ' by ' + str(t[7]) : '')
    ].concat(numbers(t).map(function (n) { return 'gate numbers: ' + n[1]; })).concat(notes(t)).join('\n');
  }
  var MARKS = [[FLAG.ROLLBACK, 'rollback', '\u21ba'], [FLAG.COPY, 'copy', '\u21c4'], [FLAG.DRIFT, 'drift', '\u26a0'],
    [FLAG.OVERRIDE, 'override', '\u2691']];
  function drawLanes(box, data) {
    var c = data.c; box.appendChild(axis());
    data.l.forEach(function (lane) {
      var row = el('div', 'lane'); row.dataset.kind = lane[0]; row.dataset.name = lane[1];
      row.appendChild(el('div', 'lname', laneLabel(lane)));
      var tr = el('div', 'track'); var ends = [];
      lane[2].forEach(function (t) {
        var s = Math.max(t[1], t0), e = t[2] === null ? meta.now : t[2];
        var r = 0; while (r < ends.length && ends[r] > s) { r++; } // first free row
        ends[r] = Math.max(e, s + 1);
        var cls = lane[0] === 'alias' ? 'alias' : 'stage ' + (lane[1] === 'Production' || lane[1] === 'Archived' ? lane[1] : '');
        var cm = c[t[3]] || [];
        var nums = numbers(t).map(function (n) { return n[0]; }).join(', ');
        var b = el('div', 'bar ' + cls, vlabel(t[0]) + ' ' + (pr(cm) ? pr(cm) + ' ' : '') + String(cm[0] || '').slice(0, 7) + ' ' + who(t, c)
          + (nums ? ' \u00b7 ' + nums : ''));
        if (t[8] & FLAG.PENDING) { b.classList.add('pending'); }
        if (t[8] & FLAG.AT) { b.classList.add('at'); }
        b.dataset.version = t[0]; b.dataset.start = t[1]; b.dataset.end = t[2] === null ? '' : t[2]; b.dataset.flags = t[8];
        b.style.left = pct(s); b.style.width = 'calc(' + pct(e) + ' - ' + pct(s) + ')'; b.style.top = (2 + r * 20) + 'px';
        var text = describe(t, c, lane); b.title = text;
        b.setAttribute('role', 'img'); b.setAttribute('aria-label', text); tr.appendChild(b);
        MARKS.forEach(function (m) {
          if (t[8] & m[0]) {
            var k = el('span', 'mark ' + m[1], m[2]);
            k.style.left = 'calc(' + pct(m[1] === 'drift' ? e : s) + ' - 5px)'; k.style.top = (r * 20) + 'px'; tr.appendChild(k);
          }
        });
      });
      (lane[3] || []).forEach(function (p) { // at "now", right of the last bars
        var r = ends.length; ends[r] = meta.now;
        var k = el('div', 'planned' + (p[2] ? ' blocked' : ''), (p[2] ? '\u2298 ' : '\u25c7 ') + vlabel(p[0]));
        k.dataset.version = p[0]; k.dataset.blocked = p[2]; k.style.top = (2 + r * 20) + 'px';
        k.style.right = (100 - (meta.now - t0) / (t1 - t0) * 100) + '%';
        var text = pendingText(p, lane); k.title = text; k.setAttribute('role', 'img'); k.setAttribute('aria-label', text);
        tr.appendChild(k);
      });
      tr.style.height = (4 + Math.max(1, ends.length) * 20) + 'px'; lines(tr);
      row.appendChild(tr); box.appendChild(row);
    });
  }
  function drawTable(box, data) {
    var c = data.c; var tb = el('table'); var head = el('tr');
    ['lane', 'version', 'from', 'to', 'commit', 'PR', 'author', 'subject', 'status', 'applied', 'by', 'gate numbers', 'notes'].forEach(function (h) {
      head.appendChild(el('th', null, h));
    });
    var th = el('thead'); th.appendChild(head); tb.appendChild(th); var body = el('tbody');
    data.l.forEach(function (lane) {
      lane[2].forEach(function (t) {
        var cm = c[t[3]] || []; var r = el('tr'); if (t[8] & FLAG.AT) { r.className = 'at'; }
        [laneLabel(lane), t[0], iso(t[1]), t[2] === null ? 'now' : iso(t[2]), String(cm[0] || '').slice(0, 12), pr(cm),
          str(cm[2]), cm[3], status(t), appliedAt(t), str(t[7]),
          numbers(t).map(function (n) { return n[1]; }).join('; '), notes(t).join('; ')].forEach(function (v) {
          r.appendChild(el('td', null, v));
        });
        body.appendChild(r);
      });
      (lane[3] || []).forEach(function (p) {
        var r = el('tr', p[2] ? 'planned blocked' : 'planned');
        [laneLabel(lane), p[0], 'now (' + meta.generated + ')', '', '', '', '', p[1],
          p[2] ? 'blocked' : 'pending (current plan)', '', '', p[4].join('; '), p[3].join('; ')].forEach(function (v) {
          r.appendChild(el('td', null, v));
        });
        body.appendChild(r);
      });
    });
    tb.appendChild(body); box.appendChild(tb);
  }

  // Each model's data is parsed and drawn when its section comes near the screen; the
  // data of models further down may still be on its way (the page is parsed as it loads).
  var cache = {}; var waiting = []; var marked = false;
  // A block holds the model's data as JSON, or (past the first screen) as one JSON string:
  // that JSON, gzipped and base64-encoded, inflated here on first use (DecompressionStream:
  // no request, nothing the CSP needs to allow). `then` gets the data, at once if it can.
  function data(i, then) {
    if (cache[i]) { then(cache[i]); return; }
    var raw = JSON.parse(document.getElementById('m' + i).textContent);
    if (typeof raw !== 'string') { cache[i] = raw; then(raw); return; }
    var bin = atob(raw); var bytes = new Uint8Array(bin.length);
    for (var k = 0; k < bin.length; k++) { bytes[k] = bin.charCodeAt(k); }
    new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text()
      .then(function (text) { cache[i] = cache[i] || JSON.parse(text); then(cache[i]); },
        function (e) { console.error('regops: model ' + i + ' data unreadable: ' + e); });
  }
  function ready(i) { return cache[i] || document.readyState !== 'loading' || document.getElementById('m' + (Number(i) + 1)); }
  function draw(sec) {
    if (sec.dataset.drawn || sec.dataset.drawing) { return; }
    if (!ready(sec.dataset.i)) { waiting.push(function () { draw(sec); }); return; }
    var first = !marked; // bench/bench_history_html.py: when the first lanes are drawn, then painted
    if (first) { marked = true; performance.mark('regops-first-lane'); }
    sec.dataset.drawing = '1';
    data(sec.dataset.i, function (d) {
      if (sec.dataset.drawn) { return; }
      var box = sec.querySelector('.lanes'); box.textContent = ''; drawLanes(box, d); sec.dataset.drawn = '1';
      var bar = first && box.querySelector('.bar'); if (bar) { bar.setAttribute('elementtiming', 'regops-first-lane'); }
    });
  }
  document.addEventListener('DOMContentLoaded', function () { var w = waiting; waiting = []; w.forEach(function (f) { f(); }); });
  var io = ('IntersectionObserver' in window) ? new IntersectionObserver(function (es) {
    es.forEach(function (e) { if (e.isIntersecting) { io.unobserve(e.target); draw(e.target); } });
  }, {rootMargin: '400px'}) : null;
  var main = document.getElementById('models');
  meta.models.forEach(function (m, i) {
    var sec = el('section', 'model'); sec.dataset.i = i; sec.dataset.model = m[0];
    sec.appendChild(el('h2', null, m[0])); sec.appendChild(el('span', 'placeholder', m[1] + ' lanes, ' + m[2] + ' tenures' + (m[3] ? ', ' + m[3] + ' pending' : '')));
    var box = el('div', 'lanes'); box.style.minHeight = (16 + m[1] * 24) + 'px'; sec.appendChild(box);
    var det = el('details'); det.appendChild(el('summary', null, 'Table of ' + m[2] + ' tenures' + (m[3] ? ' and ' + m[3] + ' pending changes' : '')));
    function table() {
      if (!det.open || det.dataset.drawn) { return; }
      if (!ready(i)) { waiting.push(table); return; } // its data is still being parsed
      det.dataset.drawn = '1'; data(i, function (d) { drawTable(det, d); });
    }
    det.addEventListener('toggle', table);
    sec.appendChild(det); main.appendChild(sec);
    if (io) { io.observe(sec); } else { draw(sec); }
  });
  // The sections on the first screen are drawn now, so that the first frame the browser
  // paints already holds their lanes (an observer's first callback waits for a frame,
  // and while a large page is still loading the next frame can be long in coming).
  // Their heights are estimated from the lane counts: asking the layout would cost more.
  var secs = main.children;
  for (var f = 0, y = 0; f < secs.length && y < window.innerHeight; f++) {
    draw(secs[f]); y += 60 + meta.models[f][1] * 24;
  }
  if (meta.at) {
    var ad = el('details'); ad.open = meta.at.held.length <= 12;
    ad.appendChild(el('summary', null, 'State at ' + meta.at.iso + ': ' + meta.at.held.length + ' holders (as regops history --at)'));
    var at = el('table'); at.id = 'at-table'; var hr = el('tr');
    ['model', 'lane', 'version', 'commit', 'PR', 'author', 'effect'].forEach(function (h) { hr.appendChild(el('th', null, h)); });
    at.appendChild(hr);
    meta.at.held.forEach(function (h) {
      var r = el('tr'); r.dataset.model = h[0]; r.dataset.lane = h[1] + ' ' + h[2]; r.dataset.version = h[3];
      [h[0], (h[1] === 'alias' ? '@' : 'stage ') + h[2], h[3], h[4], h[5] === null ? '' : '#' + h[5], h[6], h[8]].forEach(function (v) {
        r.appendChild(el('td', null, v));
      });
      at.appendChild(r);
    });
    ad.appendChild(at); document.querySelector('header').appendChild(ad);
  }
  document.body.dataset.ready = '1';
})();
