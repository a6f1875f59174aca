/**
 * Collaboration on the staff board, without the DOM (so it also runs under Node):
 * who is online on the hotel's presence channel, "X is editing this offer" markers from
 * client events, a throttle for those client events, and the fields an edit changed.
 *
 * - Presence: Pusher lists at most PRESENCE_LIMIT (100) members of a presence channel;
 *   above that (a cluster with a higher cap) the board shows a count only, and says why.
 * - Client events may be sent at most 10 per second per connection (Pusher's limit; soketi
 *   is started with the same). createThrottle sends at once while under that, queues the
 *   rest, and keeps only the latest of queued events with the same key (an offer's
 *   editing state), so a burst never exceeds the limit and never loses the final state.
 * - A marker lasts expiryMs (30 s by default) after the editor's last heartbeat, and ends
 *   at once on "client-editing-stopped" or when the editor leaves the channel
 *   (member_removed: their last tab closed or lost its connection).
 */
(function (root) {
  'use strict';

  const PRESENCE_LIMIT = 100;
  const CLIENT_EVENTS_PER_SECOND = 10;
  const EDITING_EXPIRY_MS = 30000;
  const HEARTBEAT_MS = 10000;
  const EDITING = 'client-editing';
  const EDITING_STOPPED = 'client-editing-stopped';

  /**
   * At most ``limit`` calls of send(name, data) in any ``windowMs``. push(key, name, data):
   * sends now when allowed, else queues; a queued event with the same key is replaced.
   */
  function createThrottle(options) {
    const limit = options.limit || CLIENT_EVENTS_PER_SECOND;
    const windowMs = options.windowMs || 1000;
    const send = options.send;
    const now = options.now || (() => Date.now());
    const setTimer = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    /** Times of the last ``limit`` sends, oldest first. */
    const sent = [];
    /** key -> [name, data], in first-queued order. */
    const queue = new Map();
    let timer = null;

    function allowed() {
      while (sent.length && now() - sent[0] >= windowMs) sent.shift();
      return sent.length < limit;
    }

    function flush() {
      timer = null;
      while (queue.size && allowed()) {
        const [key, [name, data]] = queue.entries().next().value;
        queue.delete(key);
        sent.push(now());
        send(name, data);
      }
      // The oldest send leaves the window first; try again then.
      if (queue.size) timer = setTimer(flush, Math.max(1, sent[0] + windowMs - now()));
    }

    function push(key, name, data) {
      if (queue.has(key)) queue.delete(key); // the newer state replaces it, at the back
      queue.set(key, [name, data]);
      if (timer === null) flush();
    }

    return { push, pending: () => queue.size };
  }

  /**
   * What the board shows of a presence channel's members: ``members`` is pusher-js's
   * Members (count, each(), me) or {count, each}. Returns {count, overLimit, people}:
   * people is [{id, name, me}] sorted by name, empty above ``limit``.
   */
  function presenceView(members, limit) {
    const cap = limit || PRESENCE_LIMIT;
    const count = members.count;
    const meId = members.me ? String(members.me.id) : null;
    if (count > cap) return { count, overLimit: true, people: [] };
    const people = [];
    members.each((member) => {
      const id = String(member.id);
      const name = (member.info && member.info.name) || id;
      people.push({ id, name, me: id === meId });
    });
    people.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    return { count, overLimit: false, people };
  }

  /** "Máire, Seán and 2 more are online" style text of presenceView()'s answer. */
  function presenceText(view, limit) {
    const cap = limit || PRESENCE_LIMIT;
    if (view.overLimit) {
      return `${view.count} online (names are not listed above ${cap}: Pusher lists at most ${cap} members of a presence channel)`;
    }
    return `Online: ${view.people.map((p) => (p.me ? `${p.name} (you)` : p.name)).join(', ')}`;
  }

  /**
   * Whether a presence subscription was refused for the channel's member limit: soketi
   * answers 4100 "LimitReached"; hosted Pusher refuses the 101st member the same way.
   */
  function isPresenceFull(error) {
    if (!error) return false;
    return error.status === 4100 || error.type === 'LimitReached' || /maximum members/i.test(String(error.error || ''));
  }

  /** What a board refused as the 101st member shows instead of names. */
  function presenceFullText(limit) {
    const cap = limit || PRESENCE_LIMIT;
    return `${cap}+ online (names are not listed above ${cap}: Pusher lets at most ${cap} members into a presence channel, and this board is not among them)`;
  }

  /**
   * Editing markers: who edits which offer. Options: expiryMs, now, setTimeout,
   * clearTimeout, onChange(). editing(userId, name, offerId) starts or refreshes one.
   */
  function createMarkers(options) {
    const expiryMs = options.expiryMs || EDITING_EXPIRY_MS;
    const setTimer = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    const clearTimer = options.clearTimeout || ((t) => clearTimeout(t));
    const onChange = options.onChange || (() => {});
    /** "userId offerId" -> {userId, name, offerId, timer} */
    const markers = new Map();

    function drop(key) {
      const found = markers.get(key);
      if (!found) return false;
      clearTimer(found.timer);
      markers.delete(key);
      return true;
    }

    function editing(userId, name, offerId) {
      const key = `${userId} ${offerId}`;
      const existed = drop(key);
      const timer = setTimer(() => {
        if (drop(key)) onChange();
      }, expiryMs);
      markers.set(key, { userId: String(userId), name, offerId: String(offerId), timer });
      if (!existed) onChange();
    }

    function stopped(userId, offerId) {
      if (drop(`${userId} ${offerId}`)) onChange();
    }

    function memberGone(userId) {
      let changed = false;
      for (const [key, marker] of markers) {
        if (marker.userId === String(userId)) changed = drop(key) || changed;
      }
      if (changed) onChange();
    }

    /** Names of those editing ``offerId``, sorted. */
    function forOffer(offerId) {
      const names = [];
      for (const marker of markers.values()) if (marker.offerId === String(offerId)) names.push(marker.name);
      return names.sort();
    }

    /** Drop the markers of users for whom ``isMember(userId)`` is false (after a resubscription). */
    function retain(isMember) {
      let changed = false;
      for (const [key, marker] of markers) {
        if (!isMember(marker.userId)) changed = drop(key) || changed;
      }
      if (changed) onChange();
    }

    function clear() {
      for (const key of [...markers.keys()]) drop(key);
    }

    return { editing, stopped, memberGone, retain, forOffer, clear, size: () => markers.size };
  }

  /** "Máire is editing", "Máire and Seán are editing". */
  function editingText(names) {
    if (!names.length) return '';
    if (names.length === 1) return `${names[0]} is editing`;
    return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are editing`;
  }

  /** The fields the edit form edits, and how a value of each compares (null and '' alike). */
  const EDIT_FIELDS = ['title', 'tag', 'short_description', 'details_text', 'valid_to', 'book_now_url', 'is_active'];

  function normal(name, value) {
    if (name === 'is_active') return value !== false;
    return value === null || value === undefined ? '' : String(value);
  }

  /** {field: value} of ``values`` that differ from ``base`` (an offer as the API gave it). */
  function changedFields(base, values) {
    const changes = {};
    for (const name of EDIT_FIELDS) {
      if (!(name in values)) continue;
      if (normal(name, values[name]) !== normal(name, base ? base[name] : undefined)) changes[name] = values[name];
    }
    return changes;
  }

  /** The edited fields on which two versions of an offer differ. */
  function differingFields(a, b) {
    return EDIT_FIELDS.filter((name) => normal(name, a && a[name]) !== normal(name, b && b[name]));
  }

  const api = {
    PRESENCE_LIMIT, CLIENT_EVENTS_PER_SECOND, EDITING_EXPIRY_MS, HEARTBEAT_MS, EDITING, EDITING_STOPPED, EDIT_FIELDS,
    createThrottle, presenceView, presenceText, isPresenceFull, presenceFullText, createMarkers, editingText, changedFields, differingFields,
  };
  root.BoardCollab = api;
  if (typeof module === 'object' && module.exports) module.exports = api;
})(typeof window !== 'undefined' ? window : globalThis);
