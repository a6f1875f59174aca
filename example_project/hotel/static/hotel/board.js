/**
 * Live offer board: one hotel's offers, kept current by the offer events.
 *
 * The list comes from the staff API (GET <apiUrl>) and is then changed by
 * offer-created, offer-updated, offer-image-updated and offer-deleted alone.
 * Every event carries event_id (same on redelivery) and changed_at (the change
 * time); a repeated event_id is ignored, and so is an update older than what is
 * shown for that offer. A "truncated" event (an offer too large for Pusher)
 * makes the page fetch that one offer. After each (re)subscription the whole
 * list is fetched again, so changes made while offline are not missed.
 *
 * Settings come from the JSON script tag #board-config (hotel/board_views.py).
 */
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('board-config').textContent);

  /** How many applied event ids to remember; redeliveries come within seconds. */
  const REMEMBERED_EVENTS = 2000;
  const ACTIVITY_ITEMS = 20;

  const $ = (id) => document.getElementById(id);
  const listEl = $('offers');
  const template = $('offer-template');
  const connectionEl = $('connection');

  /** id -> {data, version, seq, el}; version is a microsecond time key. */
  const offers = new Map();
  /** Offer ids seen deleted. Primary keys are never reused, so a deleted offer never returns. */
  const deleted = new Set();
  /** Applied event ids; a Set iterates oldest first, which makes trimming cheap. */
  const appliedEvents = new Set();
  /** Bumped on every local change, so a list fetch knows what changed while it was in flight. */
  let seq = 0;
  let pusher = null;
  let everConnected = false;
  /** Completed list loads, shown as <body data-syncs> (tests and curious staff can see resyncs). */
  let syncs = 0;

  // ---------------------------------------------------------------- time keys

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

  // ---------------------------------------------------------------- state

  /** Show ``data`` unless the offer is deleted or what is shown is newer. Returns whether it applied. */
  function upsert(data, version) {
    if (!data || deleted.has(data.id)) return false;
    const shown = offers.get(data.id);
    if (shown && version !== null && shown.version !== null && version < shown.version) return false;
    const entry = shown || { el: null };
    entry.data = data;
    entry.version = version;
    entry.seq = ++seq;
    offers.set(data.id, entry);
    return true;
  }

  function remove(id) {
    deleted.add(id);
    const shown = offers.get(id);
    if (!shown) return false;
    offers.delete(id);
    if (shown.el) shown.el.remove();
    return true;
  }

  /** Fetch the whole list and make the board match it (kept: what changed during the fetch). */
  async function loadAll() {
    const startedAt = seq;
    let list;
    try {
      const response = await api('GET', config.apiUrl);
      if (!response.ok) throw new Error(`the offer list answered ${response.status}`);
      list = await response.json();
    } catch (error) {
      showLoadError(`Could not load the offers: ${error.message}`);
      return;
    }
    showLoadError('');
    const listed = new Set();
    for (const data of list) {
      listed.add(data.id);
      upsert(data, timeKey(data.updated_at));
    }
    for (const [id, shown] of offers) {
      // Not in the snapshot and not changed since it was taken: deleted while we were away.
      if (!listed.has(id) && shown.seq <= startedAt) {
        offers.delete(id);
        if (shown.el) shown.el.remove();
      }
    }
    render();
    document.body.dataset.syncs = String(++syncs);
  }

  /** Fetch one offer (after a truncated event, or a photo event for an offer not shown). */
  async function loadOne(id) {
    try {
      const response = await api('GET', `${config.apiUrl}${id}/`);
      if (response.status === 404) {
        remove(id);
      } else if (response.ok) {
        const data = await response.json();
        upsert(data, timeKey(data.updated_at));
      } else {
        throw new Error(`offer ${id} answered ${response.status}`);
      }
    } catch (error) {
      showLoadError(`Could not load an offer: ${error.message}`);
      return;
    }
    render();
  }

  // ---------------------------------------------------------------- events

  /** Apply one event once; ``name`` is the event name without the "offer-" prefix. */
  function handle(name, payload) {
    if (!payload || typeof payload !== 'object') return;
    const eventId = payload.event_id;
    if (eventId) {
      if (appliedEvents.has(eventId)) return; // at-least-once delivery: already applied
      appliedEvents.add(eventId);
      if (appliedEvents.size > REMEMBERED_EVENTS) appliedEvents.delete(appliedEvents.values().next().value);
    }
    const version = timeKey(payload.changed_at);
    let title = payload.offer_title;
    let applied;
    if (name === 'created' || name === 'updated') {
      const offer = payload.offer || {};
      if (payload.truncated) {
        // Too large for Pusher: only the id came; the API has the rest.
        loadOne(offer.id);
        applied = 'refetching';
      } else {
        title = offer.title;
        applied = upsert(offer, version ?? timeKey(offer.updated_at));
      }
    } else if (name === 'deleted') {
      remove(payload.offer_id);
      applied = true;
    } else if (name === 'image-updated') {
      const shown = offers.get(payload.offer_id);
      if (!shown) {
        // An offer this page does not show yet (its created event is still on the way, or was truncated).
        if (!deleted.has(payload.offer_id)) loadOne(payload.offer_id);
        applied = 'refetching';
      } else {
        applied = upsert({ ...shown.data, photo_url: payload.photo_url }, version ?? timeKey(payload.timestamp));
      }
    }
    logActivity(name, title, eventId, applied);
    render();
  }

  // ---------------------------------------------------------------- rendering

  function compareOffers(a, b) {
    // The staff API's order: sort_order, then newest first.
    return (
      a.sort_order - b.sort_order ||
      (timeKey(b.created_at) || 0) - (timeKey(a.created_at) || 0) ||
      b.id - a.id
    );
  }

  function render() {
    const entries = [...offers.values()].sort((a, b) => compareOffers(a.data, b.data));
    for (const entry of entries) {
      if (!entry.el) entry.el = buildOffer(entry.data.id);
      fillOffer(entry.el, entry.data);
      listEl.appendChild(entry.el); // moves an existing node into sorted position
    }
    $('offer-count').textContent = `(${entries.length})`;
    $('empty').hidden = entries.length > 0;
  }

  function buildOffer(id) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.offerId = id;
    el.querySelector('.offer-delete').addEventListener('click', () =>
      deleteOffer(id, el).catch((error) => showLoadError(`Could not delete the offer: ${error.message}`)),
    );
    return el;
  }

  function fillOffer(el, data) {
    const text = (selector, value) => {
      el.querySelector(selector).textContent = value ?? '';
    };
    text('.offer-title', data.title);
    text('.offer-price', data.price ? `${data.price}` : '');
    text('.offer-short', data.short_description);
    text('.offer-details', data.details);
    el.querySelector('.offer-inactive').hidden = data.is_active !== false;
    el.classList.toggle('inactive', data.is_active === false);
    const img = el.querySelector('.offer-photo');
    if (data.photo_url) {
      if (img.getAttribute('src') !== data.photo_url) img.src = data.photo_url;
      img.alt = data.title || '';
      img.hidden = false;
    } else {
      img.removeAttribute('src');
      img.hidden = true;
    }
  }

  function logActivity(name, title, eventId, applied) {
    const item = document.createElement('li');
    item.dataset.event = name;
    if (eventId) item.dataset.eventId = eventId;
    let note = '';
    if (applied === false) note = ' (ignored: older than shown)';
    else if (applied === 'refetching') note = ' (fetched from the API)';
    item.textContent = `${new Date().toLocaleTimeString()} ${name}${title ? ` “${title}”` : ''}${note}`;
    const log = $('activity');
    log.prepend(item);
    while (log.children.length > ACTIVITY_ITEMS) log.lastElementChild.remove();
  }

  function showLoadError(message) {
    $('load-error').textContent = message;
    $('load-error').hidden = !message;
  }

  // ---------------------------------------------------------------- connection

  /** pusher-js states -> what staff need to know: connected, (re)connecting or offline. */
  function showConnection(state) {
    let shown;
    if (state === 'connected') shown = 'connected';
    else if (state === 'connecting' || state === 'initialized') shown = everConnected ? 'reconnecting' : 'connecting';
    else shown = 'offline'; // unavailable (pusher-js keeps retrying), failed, disconnected
    connectionEl.dataset.state = shown;
    connectionEl.textContent = shown;
  }

  function connect() {
    if (!config.key || !config.channel) {
      connectionEl.dataset.state = 'offline';
      connectionEl.textContent = 'offline (Pusher is not configured)';
      return;
    }
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
    pusher = new window.Pusher(config.key, options);
    pusher.connection.bind('state_change', ({ current }) => {
      showConnection(current);
      if (current === 'connected') everConnected = true;
      else connectionEl.dataset.subscribed = 'false';
    });
    const channel = pusher.subscribe(config.channel);
    // First subscription and every resubscription after a reconnect: fetch the list,
    // since events sent while this page was not subscribed are not replayed.
    let subscriptions = 0;
    channel.bind('pusher:subscription_succeeded', () => {
      subscriptions += 1;
      connectionEl.dataset.subscribed = 'true';
      if (subscriptions > 1) logActivity('resynced', '', null, true);
      loadAll();
    });
    channel.bind('pusher:subscription_error', (error) => {
      logActivity(`subscription refused (${error && error.status})`, '', null, true);
    });
    for (const name of ['created', 'updated', 'deleted', 'image-updated']) {
      channel.bind(`offer-${name}`, (payload) => handle(name, payload));
    }
  }

  // ---------------------------------------------------------------- writes

  /** A same-origin API call with the session, the CSRF token and, for writes, this page's socket id. */
  function api(method, url, body) {
    const headers = { Accept: 'application/json', 'X-CSRFToken': config.csrfToken };
    // "To others": the server does not echo this write's event back to this page.
    const socketId = pusher && pusher.connection.socket_id;
    if (method !== 'GET' && socketId) headers[config.socketIdHeader] = socketId;
    if (body && !(body instanceof FormData)) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(body);
    }
    return fetch(url, { method, headers, body, credentials: 'same-origin' });
  }

  async function errorText(response) {
    try {
      const data = await response.json();
      if (data.error) return data.error;
      return Object.entries(data).map(([field, errors]) => `${field}: ${[].concat(errors).join(' ')}`).join('; ');
    } catch (_) {
      return `HTTP ${response.status}`;
    }
  }

  async function createOffer(form) {
    const fields = new FormData(form);
    const body = { title: fields.get('title'), short_description: fields.get('short_description') || '' };
    if (fields.get('price')) body.price = fields.get('price');
    const photo = fields.get('photo');
    const formError = $('form-error');
    formError.hidden = true;
    const response = await api('POST', config.apiUrl, body);
    if (!response.ok) {
      formError.textContent = await errorText(response);
      formError.hidden = false;
      return;
    }
    const offer = await response.json();
    // Our own write is not echoed to us, so show it from the answer.
    upsert(offer, timeKey(offer.updated_at));
    render();
    form.reset();
    if (photo && photo.size) {
      const upload = new FormData();
      upload.append('photo', photo);
      const uploaded = await api('POST', `${config.apiUrl}${offer.id}/upload-image/`, upload);
      if (!uploaded.ok) {
        formError.textContent = `The offer was created, but its photo was not: ${await errorText(uploaded)}`;
        formError.hidden = false;
        return;
      }
      await loadOne(offer.id);
    }
  }

  async function deleteOffer(id, el) {
    el.querySelector('.offer-delete').disabled = true;
    const response = await api('DELETE', `${config.apiUrl}${id}/`);
    if (response.ok || response.status === 404) {
      remove(id);
      render();
    } else {
      el.querySelector('.offer-delete').disabled = false;
      showLoadError(`Could not delete the offer: ${await errorText(response)}`);
    }
  }

  $('new-offer').addEventListener('submit', (event) => {
    event.preventDefault();
    createOffer(event.target).catch((error) => {
      $('form-error').textContent = `Could not create the offer: ${error.message}`;
      $('form-error').hidden = false;
    });
  });

  loadAll();
  connect();
})();
