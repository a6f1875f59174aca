/**
 * Live offer board: one hotel's offers for its staff, kept current by the offer events.
 *
 * The list comes from the staff API (GET <apiUrl>) and is then changed by the events
 * on the hotel's channel, applied by offers_live.js (OffersLive.createStore) so that
 * any arrival order ends on what the API says: versions per part of an offer (photo,
 * other fields), deletes winning over older updates, repeated event ids skipped,
 * offers-updated fetching the offer again. After each (re)subscription the whole list
 * is fetched again, since events sent while the page was not subscribed are not replayed.
 *
 * Settings come from the JSON script tag #board-config (hotel/board_views.py).
 */
(function () {
  'use strict';

  const live = window.OffersLive;
  const config = JSON.parse(document.getElementById('board-config').textContent);
  const ACTIVITY_ITEMS = 20;

  const $ = (id) => document.getElementById(id);
  const listEl = $('offers');
  const template = $('offer-template');
  const connectionEl = $('connection');

  /** id -> card element, reused across renders. */
  const cards = new Map();
  let pusher = null;
  let everConnected = false;
  /** Completed list loads, shown as <body data-syncs> (tests and curious staff can see resyncs). */
  let syncs = 0;

  const loaders = live.apiLoaders(config.apiUrl, { 'X-CSRFToken': config.csrfToken });
  const store = live.createStore({
    loadList: loaders.loadList,
    loadOne: loaders.loadOne,
    onChange(reason) {
      if (reason === 'list') {
        showLoadError('');
        document.body.dataset.syncs = String(++syncs);
      }
      render();
    },
    onError(error) {
      showLoadError(`Could not load the offers: ${error.message}`);
    },
  });

  // ---------------------------------------------------------------- events

  function onEvent(name, payload) {
    const result = store.handle(name, payload);
    if (result.outcome === 'duplicate' || result.outcome === 'ignored') return; // at-least-once delivery
    logActivity(name.replace(/^offer-/, ''), result.title, payload.event_id, result.outcome);
  }

  // ---------------------------------------------------------------- rendering

  function render() {
    const shown = store.offers();
    const ids = new Set(shown.map((offer) => String(offer.id)));
    for (const [id, el] of cards) {
      if (!ids.has(id)) {
        el.remove();
        cards.delete(id);
      }
    }
    for (const offer of shown) {
      let el = cards.get(String(offer.id));
      if (!el) {
        el = buildOffer(offer.id);
        cards.set(String(offer.id), el);
      }
      fillOffer(el, offer);
      listEl.appendChild(el); // moves an existing node into sorted position
    }
    $('offer-count').textContent = `(${shown.length})`;
    $('empty').hidden = shown.length > 0;
  }

  function buildOffer(id) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.offerId = id;
    el.querySelector('.offer-delete').addEventListener('click', () =>
      deleteOffer(id, el).catch((error) => showLoadError(`Could not delete the offer: ${error.message}`)),
    );
    return el;
  }

  /** "1 Dec 2026 – 31 Jan 2027", "from 1 Dec 2026", "until 31 Jan 2027" or "". */
  function validity(from, to) {
    const format = { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' };
    const day = (iso) => new Date(`${iso}T00:00:00Z`).toLocaleDateString('en-GB', format);
    if (from && to) return `${day(from)} – ${day(to)}`;
    if (from) return `from ${day(from)}`;
    if (to) return `until ${day(to)}`;
    return '';
  }

  function fillOffer(el, offer) {
    const text = (selector, value) => {
      el.querySelector(selector).textContent = value ?? '';
    };
    text('.offer-title', offer.title);
    text('.offer-tag', offer.tag);
    text('.offer-validity', validity(offer.valid_from, offer.valid_to));
    const validityEl = el.querySelector('.offer-validity');
    validityEl.dataset.from = offer.valid_from || '';
    validityEl.dataset.to = offer.valid_to || '';
    text('.offer-short', offer.short_description);
    text('.offer-details', offer.details_text);
    const link = el.querySelector('.offer-book');
    if (offer.book_now_url) link.href = offer.book_now_url;
    else link.removeAttribute('href');
    link.hidden = !offer.book_now_url;
    el.querySelector('.offer-inactive').hidden = offer.is_active !== false;
    el.classList.toggle('inactive', offer.is_active === false);
    const img = el.querySelector('.offer-photo');
    if (offer.photo_url) {
      if (img.getAttribute('src') !== offer.photo_url) img.src = offer.photo_url;
      img.alt = offer.title || '';
      img.hidden = false;
    } else {
      img.removeAttribute('src');
      img.hidden = true;
    }
  }

  function logActivity(name, title, eventId, outcome) {
    const item = document.createElement('li');
    item.dataset.event = name;
    if (eventId) item.dataset.eventId = eventId;
    let note = '';
    if (outcome === 'stale') note = ' (ignored: older than shown)';
    else if (outcome === 'refetching') note = ' (fetched from the API)';
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

  function showConnection(state) {
    const shown = live.connectionLabel(state, everConnected);
    connectionEl.dataset.state = shown;
    connectionEl.textContent = shown;
  }

  function connect() {
    pusher = live.connect(config, {
      onState(current) {
        showConnection(current);
        if (current === 'connected') everConnected = true;
        else connectionEl.dataset.subscribed = 'false';
      },
      // First subscription and every resubscription after a reconnect: fetch the list,
      // since events sent while this page was not subscribed are not replayed.
      onSubscribed(count) {
        connectionEl.dataset.subscribed = 'true';
        if (count > 1) logActivity('resynced', '', null, 'applied');
        store.refresh();
      },
      onSubscriptionError(error) {
        logActivity(`subscription refused (${error && error.status})`, '', null, 'applied');
      },
      onEvent,
    });
    if (!pusher) {
      connectionEl.dataset.state = 'offline';
      connectionEl.textContent = 'offline (Pusher is not configured)';
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
    return fetch(url, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
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
    const body = {};
    for (const name of ['title', 'short_description', 'tag', 'details_text', 'valid_to', 'book_now_url']) {
      const value = (fields.get(name) || '').trim();
      if (value) body[name] = value;
    }
    body.is_active = fields.get('is_active') === 'on';
    const photo = fields.get('photo');
    const formError = $('form-error');
    formError.hidden = true;
    const startedAt = store.clock();
    const response = await api('POST', config.apiUrl, body);
    if (!response.ok) {
      formError.textContent = await errorText(response);
      formError.hidden = false;
      return;
    }
    const offer = await response.json();
    // Our own write is not echoed to us, so show it from the answer.
    store.accept(offer.id, offer, live.snapshotStamp(response.headers), startedAt);
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
      await store.refreshOne(offer.id);
    }
  }

  async function deleteOffer(id, el) {
    el.querySelector('.offer-delete').disabled = true;
    const startedAt = store.clock();
    const response = await api('DELETE', `${config.apiUrl}${id}/`);
    if (response.ok || response.status === 404) {
      store.accept(id, null, live.snapshotStamp(response.headers), startedAt);
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

  store.refresh();
  connect();
})();
