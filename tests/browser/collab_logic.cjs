// collab.js under Node with a fake clock: the client-event throttle, the presence view at
// and above Pusher's 100 members, and the editing markers' expiry. Prints JSON for
// tests/browser/test_collab_logic.py, which asserts on it.
'use strict';
const path = require('path');
const collab = require(path.join(__dirname, '..', '..', 'example_project', 'hotel', 'static', 'hotel', 'collab.js'));

function fakeClock() {
  let now = 0;
  let timers = [];
  return {
    now: () => now,
    setTimeout(fn, ms) { const t = { at: now + ms, fn }; timers.push(t); return t; },
    clearTimeout(t) { timers = timers.filter((x) => x !== t); },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const next = timers[0];
        if (!next || next.at > end) break;
        timers.shift();
        now = next.at;
        next.fn();
      }
      now = end;
    },
  };
}

function members(count, meId) {
  const list = Array.from({ length: count }, (_, k) => ({ id: String(k + 1), info: { name: `Staff ${String(k + 1).padStart(3, '0')}` } }));
  return { count, me: { id: meId }, each: (fn) => list.forEach(fn) };
}

const out = {};

// Throttle: 25 distinct events at once, then 5 repeats of one key while queued.
{
  const clock = fakeClock();
  const sent = [];
  const throttle = collab.createThrottle({ send: (name, data) => sent.push([clock.now(), name, data]), now: clock.now, setTimeout: clock.setTimeout });
  for (let k = 0; k < 25; k++) throttle.push(`offer-${k}`, 'client-editing', { offer_id: k });
  for (let k = 0; k < 5; k++) throttle.push('offer-24', k % 2 ? 'client-editing' : 'client-editing-stopped', { offer_id: 24, k });
  clock.advance(5000);
  let maxInWindow = 0;
  for (const [t] of sent) maxInWindow = Math.max(maxInWindow, sent.filter(([u]) => u >= t && u < t + 1000).length);
  const last24 = sent.filter(([, , d]) => d.offer_id === 24);
  out.throttle = { sent: sent.length, maxInWindow, immediate: sent.filter(([t]) => t === 0).length, last24: last24[last24.length - 1], count24: last24.length, pending: throttle.pending(), doneAt: sent[sent.length - 1][0] };
}

// Presence view at the limit and above it.
{
  const at = collab.presenceView(members(100, '7'));
  const above = collab.presenceView(members(101, '7'));
  out.presence = {
    at: { count: at.count, overLimit: at.overLimit, people: at.people.length, me: at.people.filter((p) => p.me).map((p) => p.name) },
    above: { count: above.count, overLimit: above.overLimit, people: above.people.length, text: collab.presenceText(above) },
    two: collab.presenceText(collab.presenceView(members(2, '1'))),
  };
}

// Markers: heartbeats keep one alive, it expires expiryMs after the last, stopped/memberGone end it at once.
{
  const clock = fakeClock();
  let changes = 0;
  const markers = collab.createMarkers({ expiryMs: 30000, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, onChange: () => changes++ });
  markers.editing('1', 'Máire', 5);
  const trace = [];
  for (let k = 0; k < 6; k++) { clock.advance(10000); markers.editing('1', 'Máire', 5); }
  trace.push(['after 60 s of heartbeats', markers.forOffer(5)]);
  clock.advance(29999);
  trace.push(['29.999 s after the last', markers.forOffer(5)]);
  clock.advance(1);
  trace.push(['30 s after the last', markers.forOffer(5)]);
  markers.editing('1', 'Máire', 5);
  markers.editing('2', 'Seán', 5);
  trace.push(['two editors', markers.forOffer(5), collab.editingText(markers.forOffer(5))]);
  markers.stopped('2', 5);
  trace.push(['Seán stopped', markers.forOffer(5)]);
  markers.memberGone('1');
  trace.push(['Máire left', markers.forOffer(5), markers.size()]);
  markers.editing('1', 'Máire', 5);
  markers.editing('2', 'Seán', 6);
  markers.retain((id) => id === '2');
  trace.push(['resubscribed, only Seán still a member', markers.forOffer(5), markers.forOffer(6)]);
  out.markers = { trace, changes };
}

out.changed = collab.changedFields(
  { title: 'Spa', tag: null, valid_to: null, is_active: true, book_now_url: '' },
  { title: 'Spa', tag: '', valid_to: null, is_active: false, book_now_url: 'https://x.test/' },
);

process.stdout.write(JSON.stringify(out));
