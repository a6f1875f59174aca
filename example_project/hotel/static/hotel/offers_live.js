/**
 * One hotel's offers kept current from the offer events: shared by the staff board
 * (board.js) and the guest page (guest.js). No DOM here, so it also runs under Node.
 *
 * Events from different server processes arrive in any order, and an event's offer data
 * is read from the database when the event is sent, after its change committed. So:
 *
 * - Each offer has two parts with a version each: its photo (`photo_url`) and everything
 *   else. offer-created and offer-updated carry both parts, offer-image-updated only
 *   the photo, offer-deleted sets both to "gone". A part takes an event whose
 *   `changed_at` is not older than the part's version: a photo event never hides a
 *   field change, and a delete wins over older updates (a later create, after an offer
 *   moved away and back, wins over the delete).
 * - An `event_id` already applied is skipped (at-least-once delivery).
 * - offers-updated (`{"action": "sync", "offer_id"}`) fetches that offer again, or the
 *   whole list without an id.
 * - Fetched data (a snapshot) has no `changed_at`. Its version is an upper bound of the
 *   server time it was read at: the `X-Offers-As-Of` header when the API sends one, else
 *   the `Date` header plus one second (Date has whole seconds). An event changed after
 *   that time is newer than the snapshot and applies. An event changed before it may or
 *   may not be in the snapshot (`changed_at` is the save time, and a transaction can
 *   commit later), so, when it would change what is shown, the offer is fetched again
 *   rather than guessed at. A snapshot replaces what an event showed when that event
 *   arrived before the fetch began (its change had committed, so the snapshot has it);
 *   for an event that arrived while the fetch was out, the offer is fetched again.
 * - Fetches of the list run one at a time (and so do fetches of one offer), so of two
 *   snapshots the later one is always the newer.
 *
 * These rules converge on what the API says for any arrival order of the events; see
 * README.md, "Applying the events in a frontend".
 */
(function (root) {
  'use strict';

  /** The events the pages listen to, on the hotel's channel. */
  const EVENTS = ['offer-created', 'offer-updated', 'offer-deleted', 'offer-image-updated', 'offers-updated'];

  /** How many applied event ids to remember; redeliveries come within seconds. */
  const REMEMBERED_EVENTS = 2000;
  /** After a failed fetch, fetch the list again after this long. */
  const RETRY_MS = 3000;
  /** More disagreements than this after one list fetch: fetch the list again, not each offer. */
  const MAX_SINGLE_REFETCHES = 3;
  const NEVER = -Infinity;

  const ISO_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/;

  /**
   * An ISO 8601 time as microseconds since the epoch, or null.
   * Date.parse keeps only milliseconds, and two saves can fall in the same one;
   * events say "+00:00" while DRF says "Z", so strings cannot be compared either.
   */
  function timeKey(iso) {
    const match = typeof iso === 'string' ? ISO_RE.exec(iso) : null;
    if (!match) return null;
    const seconds = Date.parse(match[1] + (match[3] || 'Z'));
    if (Number.isNaN(seconds)) return null;
    return seconds * 1000 + Number(((match[2] || '') + '000000').slice(0, 6));
  }

  /**
   * The version of an API answer: an upper bound of the server time its data was read at.
   * Infinity when the answer says nothing: then every later event on it is checked with a fetch.
   */
  function snapshotStamp(headers) {
    const asOf = timeKey(headers.get('X-Offers-As-Of'));
    if (asOf !== null) return asOf;
    const date = Date.parse(headers.get('Date') || '');
    // Date is sent after the view ran, rounded down to the second.
    return Number.isNaN(date) ? Infinity : date * 1000 + 1000000;
  }

  /** Deep equality of JSON values (key order does not matter). */
  function same(a, b) {
    if (a === b) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.prototype.hasOwnProperty.call(b, key) && same(a[key], b[key]));
  }

  /** The API's order: sort_order, then newest first. */
  function compareOffers(a, b) {
    return (
      (a.sort_order || 0) - (b.sort_order || 0) ||
      (timeKey(b.created_at) || 0) - (timeKey(a.created_at) || 0) ||
      b.id - a.id
    );
  }

  /**
   * The offers of one hotel. Options:
   * - loadList(): Promise<{offers, stamp}> — the list from the API;
   * - loadOne(id): Promise<{offer, stamp}> — one offer, `offer` null when the API has none (404);
   * - project(offer): what is kept of an offer for showing, or null for "not shown"
   *   (the guest page: inactive offers); default: the offer without its photo fields;
   * - onChange(reason): after anything changed ("event", "list", "offer");
   * - onError(error): a fetch failed (the list is fetched again after RETRY_MS).
   */
  function createStore(options) {
    const loadList = options.loadList;
    const loadOne = options.loadOne;
    const project = options.project || ((offer) => withoutPhoto(offer));
    const onChange = options.onChange || (() => {});
    const onError = options.onError || (() => {});
    const setTimer = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));

    /** key -> {id, fields: Part, photo: Part}; a Part is {value, v, snap, seq}. */
    const records = new Map();
    /** What is known of an offer never seen: not there, as of the last list (v), or nothing yet. */
    let floor = { v: NEVER, snap: false, seq: 0 };
    /** Bumped whenever a part changes, so a fetch can tell what changed while it was out. */
    let seq = 0;
    const applied = new Set();
    const listFetch = { promise: null, again: false };
    const offerFetches = new Map();
    let retry = null;

    const keyOf = (id) => String(id);

    function record(id) {
      const key = keyOf(id);
      let found = records.get(key);
      if (!found) {
        found = { id, fields: { ...floor, value: null }, photo: { ...floor, value: null } };
        records.set(key, found);
      }
      return found;
    }

    function put(part, value, v, snap) {
      part.value = value;
      part.v = v;
      part.snap = snap;
      part.seq = ++seq;
    }

    // ------------------------------------------------------------------ events

    /** "applied", "same" (nothing to change), "stale" (older than shown) or "check" (cannot tell: fetch). */
    function eventPart(part, t, value) {
      if (part.snap ? t !== null && t > part.v : t !== null && t >= part.v) {
        put(part, value, t, false);
        return 'applied';
      }
      // Nothing would change: whichever of the two is newer, what is shown is right.
      if (same(part.value, value)) return 'same';
      return part.snap || t === null ? 'check' : 'stale';
    }

    function settle(id, outcomes) {
      if (outcomes.includes('check')) {
        refreshOne(id);
        return 'refetching';
      }
      if (outcomes.includes('applied')) return 'applied';
      return outcomes.includes('stale') ? 'stale' : 'applied';
    }

    /**
     * Apply one event (its full name, e.g. "offer-updated") once.
     * Returns {outcome, id, title}; outcome is "applied", "stale", "refetching", "duplicate" or "ignored".
     */
    function handle(name, payload) {
      if (!payload || typeof payload !== 'object' || !EVENTS.includes(name)) return { outcome: 'ignored' };
      const eventId = payload.event_id;
      if (eventId !== undefined && eventId !== null) {
        if (applied.has(eventId)) return { outcome: 'duplicate' };
        applied.add(eventId);
        if (applied.size > REMEMBERED_EVENTS) applied.delete(applied.values().next().value);
      }
      const t = timeKey(payload.changed_at);
      let result;
      if (name === 'offer-created' || name === 'offer-updated') {
        const offer = payload.offer;
        if (!offer || offer.id === undefined || offer.id === null) {
          refresh();
          result = { outcome: 'refetching' };
        } else if (payload.truncated) {
          // The stub older servers sent instead of an offer too large for Pusher.
          refreshOne(offer.id);
          result = { outcome: 'refetching', id: offer.id };
        } else {
          const found = record(offer.id);
          const outcomes = [
            eventPart(found.fields, t, project(offer)),
            eventPart(found.photo, t, offer.photo_url ?? null),
          ];
          result = { outcome: settle(offer.id, outcomes), id: offer.id, title: offer.title };
        }
      } else if (name === 'offer-deleted') {
        const found = record(payload.offer_id);
        const outcomes = [eventPart(found.fields, t, null), eventPart(found.photo, t, null)];
        result = { outcome: settle(payload.offer_id, outcomes), id: payload.offer_id, title: payload.offer_title };
      } else if (name === 'offer-image-updated') {
        const found = record(payload.offer_id);
        const time = t ?? timeKey(payload.timestamp);
        const outcome = settle(payload.offer_id, [eventPart(found.photo, time, payload.photo_url ?? null)]);
        result = { outcome, id: payload.offer_id, title: payload.offer_title };
      } else {
        // offers-updated: the server could not send the change itself (too large); ask the API.
        if (payload.offer_id !== undefined && payload.offer_id !== null) refreshOne(payload.offer_id);
        else refresh();
        result = { outcome: 'refetching', id: payload.offer_id ?? null };
      }
      onChange('event');
      return result;
    }

    // ------------------------------------------------------------------ snapshots

    /** Take a fetched value for a part; true when the offer must be fetched again to decide. */
    function snapshotPart(part, stamp, value, startedAt) {
      if (same(part.value, value)) return false;
      if (!part.snap && part.v > stamp) return false; // changed after the read: the event is newer
      if (part.seq <= startedAt) {
        // Shown since before this fetch began: the fetch read later, so it has that change.
        put(part, value, part.snap ? Math.max(part.v, stamp) : stamp, true);
        return false;
      }
      return true; // changed while the fetch was out: either may be the newer
    }

    function takeOffer(id, offer, stamp, startedAt) {
      const found = record(id);
      const fields = offer ? project(offer) : null;
      const photo = offer && fields !== null ? offer.photo_url ?? null : null;
      const a = snapshotPart(found.fields, stamp, fields, startedAt);
      const b = snapshotPart(found.photo, stamp, photo, startedAt);
      return a || b;
    }

    function takeList(list, stamp, startedAt) {
      const listed = new Map(list.map((offer) => [keyOf(offer.id), offer]));
      for (const offer of list) record(offer.id);
      const disputed = [];
      for (const [key, found] of records) {
        if (takeOffer(found.id, listed.get(key) || null, stamp, startedAt)) disputed.push(found.id);
      }
      floor = { v: Math.max(stamp, floor.snap ? floor.v : NEVER), snap: true, seq: ++seq };
      if (disputed.length > MAX_SINGLE_REFETCHES) refresh();
      else disputed.forEach(refreshOne);
    }

    function failed(error) {
      onError(error);
      if (retry === null) {
        retry = setTimer(() => {
          retry = null;
          refresh();
        }, RETRY_MS);
      }
    }

    /**
     * Run ``once`` now, or once more after the run in progress: fetches of one kind never
     * overlap, so a later one always read later. ``once`` resolves false to stop (it failed).
     */
    function serialized(state, once, done) {
      if (state.promise) {
        state.again = true;
        return state.promise;
      }
      state.promise = (async () => {
        await null; // state.promise is set before any of this runs
        try {
          do {
            state.again = false;
            if (!(await once())) break;
          } while (state.again);
        } finally {
          state.promise = null;
          if (done) done();
        }
      })();
      return state.promise;
    }

    /** Fetch the whole list (one list fetch at a time; a call during one runs another after it). */
    function refresh() {
      return serialized(listFetch, async () => {
        const startedAt = seq;
        let answer;
        try {
          answer = await loadList();
        } catch (error) {
          failed(error);
          return false;
        }
        takeList(answer.offers, answer.stamp, startedAt);
        onChange('list');
        return true;
      });
    }

    /** Fetch one offer (one fetch per offer at a time, like the list). */
    function refreshOne(id) {
      const key = keyOf(id);
      let state = offerFetches.get(key);
      if (!state) {
        state = { promise: null, again: false };
        offerFetches.set(key, state);
      }
      const current = state;
      return serialized(
        current,
        async () => {
          const startedAt = seq;
          let answer;
          try {
            answer = await loadOne(id);
          } catch (error) {
            failed(error);
            return false;
          }
          if (takeOffer(id, answer.offer, answer.stamp, startedAt)) current.again = true;
          onChange('offer');
          return true;
        },
        () => offerFetches.delete(key),
      );
    }

    /**
     * Take an answer of the API that was not fetched through this store (a page's own
     * write): ``offer`` (null: gone) as of ``stamp``; ``startedAt`` is clock() before the request.
     */
    function accept(id, offer, stamp, startedAt) {
      if (takeOffer(id, offer, stamp, startedAt)) refreshOne(id);
      onChange('offer');
    }

    /** The shown offers, each with its current photo_url, in the API's order. */
    function offers() {
      const shown = [];
      for (const found of records.values()) {
        if (found.fields.value) shown.push({ ...found.fields.value, id: found.id, photo_url: found.photo.value });
      }
      return shown.sort(compareOffers);
    }

    /** A mark to pass to accept(): what changed after it is newer than the request. */
    function clock() {
      return seq;
    }

    /** Whether fetches are out (tests and the page's busy state). */
    function busy() {
      return Boolean(listFetch.promise) || offerFetches.size > 0;
    }

    return { handle, refresh, refreshOne, accept, offers, clock, busy };
  }

  /** What a guest sees of an offer: the public API's fields (photo_url is the other part). */
  const PUBLIC_FIELDS = [
    'id', 'title', 'short_description', 'details_text', 'details_html', 'valid_from', 'valid_to',
    'tag', 'book_now_url', 'sort_order', 'created_at',
  ];

  /**
   * The guest page's projection: null (not shown) for an inactive offer — events carry every
   * offer, the public API only active ones, without is_active — else the public fields.
   */
  function publicView(offer) {
    if (offer.is_active === false) return null;
    const shown = {};
    for (const name of PUBLIC_FIELDS) shown[name] = offer[name] ?? null;
    return shown;
  }

  function withoutPhoto(offer) {
    const { photo: _photo, photo_url: _url, ...rest } = offer;
    return rest;
  }

  // ------------------------------------------------------------------ browser helpers

  /** GETs of the page's API (list and one offer), answers stamped with snapshotStamp. */
  function apiLoaders(listUrl, headers) {
    // no-store: an answer from a cache would be older than its Date or X-Offers-As-Of says.
    const init = {
      headers: { Accept: 'application/json', ...(headers || {}) },
      credentials: 'same-origin',
      cache: 'no-store',
    };
    const get = (url) => fetch(url, init);
    return {
      async loadList() {
        const response = await get(listUrl);
        if (!response.ok) throw new Error(`the offer list answered ${response.status}`);
        return { offers: await response.json(), stamp: snapshotStamp(response.headers) };
      },
      async loadOne(id) {
        const response = await get(`${listUrl}${encodeURIComponent(id)}/`);
        if (response.status === 404) return { offer: null, stamp: snapshotStamp(response.headers) };
        if (!response.ok) throw new Error(`offer ${id} answered ${response.status}`);
        return { offer: await response.json(), stamp: snapshotStamp(response.headers) };
      },
    };
  }

  /**
   * Subscribe to the page's channel with pusher-js (``window.Pusher``). ``handlers``:
   * onState(pusher-js state), onSubscribed(count) after each (re)subscription,
   * onSubscriptionError(error), onEvent(name, payload). Null without a key or channel.
   */
  function connect(config, handlers) {
    if (!config.key || !config.channel || !root.Pusher) return null;
    const options = {
      cluster: config.cluster,
      forceTLS: config.ssl,
      // Only websockets: a Pusher-compatible server such as soketi has no HTTP fallbacks.
      enabledTransports: ['ws', 'wss'],
    };
    if (config.host) {
      options.wsHost = config.host;
      options.wsPort = config.port || 80;
      options.wssPort = config.port || 443;
    }
    if (config.private) {
      options.channelAuthorization = {
        endpoint: config.authEndpoint,
        transport: 'ajax',
        headers: { 'X-CSRFToken': config.csrfToken },
      };
    }
    const pusher = new root.Pusher(config.key, options);
    pusher.connection.bind('state_change', ({ current }) => handlers.onState(current));
    const channel = pusher.subscribe(config.channel);
    let subscriptions = 0;
    channel.bind('pusher:subscription_succeeded', () => handlers.onSubscribed(++subscriptions));
    channel.bind('pusher:subscription_error', (error) => {
      if (handlers.onSubscriptionError) handlers.onSubscriptionError(error);
    });
    for (const name of EVENTS) channel.bind(name, (payload) => handlers.onEvent(name, payload));
    return pusher;
  }

  /** pusher-js states -> what a reader needs to know: connected, (re)connecting or offline. */
  function connectionLabel(state, everConnected) {
    if (state === 'connected') return 'connected';
    if (state === 'connecting' || state === 'initialized') return everConnected ? 'reconnecting' : 'connecting';
    return 'offline'; // unavailable (pusher-js keeps retrying), failed, disconnected
  }

  const api = {
    EVENTS, timeKey, snapshotStamp, createStore, compareOffers, publicView, apiLoaders, connect, connectionLabel,
  };
  root.OffersLive = api;
  if (typeof module === 'object' && module.exports) module.exports = api;
})(typeof window !== 'undefined' ? window : globalThis);
