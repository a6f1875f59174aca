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
 * Collaboration (private mode, config.presenceChannel): the page joins the hotel's presence
 * channel and shows who is online; an open edit form announces itself with client events
 * ("client-editing" now and every heartbeat, "client-editing-stopped" when it closes,
 * throttled to Pusher's 10 per second), and the others mark the offer "X is editing" until
 * that stops, the editor leaves the channel, or 30 s pass without a heartbeat. Edits are
 * conditional: the form keeps the ETag of the offer it opened, saves with If-Match, and a
 * 412 shows both versions to re-apply (with the new ETag) or discard. Logic without the
 * DOM is in collab.js. For tests, ?editing_expiry_ms= and ?heartbeat_ms= override the
 * 30 s expiry and the 10 s heartbeat.
 *
 * Settings come from the JSON script tag #board-config (hotel/board_views.py).
 */
(function () {
  'use strict';

  const live = window.OffersLive;
  const collab = window.BoardCollab;
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
    noticeForEditor(name, payload);
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
    el.querySelector('.offer-edit').addEventListener('click', () =>
      openEditor(id).catch((error) => showLoadError(`Could not open the offer: ${error.message}`)),
    );
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
    showMarker(el, offer.id);
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
    } else if (config.presenceChannel) {
      joinPresence();
    }
  }

  // ---------------------------------------------------------------- presence and editing markers

  const params = new URLSearchParams(window.location.search);
  const positive = (name, fallback) => {
    const value = Number(params.get(name));
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  const EXPIRY_MS = positive('editing_expiry_ms', collab.EDITING_EXPIRY_MS);
  const HEARTBEAT_MS = positive('heartbeat_ms', collab.HEARTBEAT_MS);
  const onlineEl = $('online');
  let presence = null;
  /** Client events this page sent (tests read it as <body data-client-events>). */
  let clientEvents = 0;
  const markers = collab.createMarkers({ expiryMs: EXPIRY_MS, onChange: showMarkers });
  const throttle = collab.createThrottle({
    send(name, data) {
      // Only a subscribed member may trigger; a state lost here is sent again by the next heartbeat.
      if (presence && presence.subscribed && presence.trigger(name, data)) {
        document.body.dataset.clientEvents = String(++clientEvents);
      }
    },
  });

  function joinPresence() {
    presence = pusher.subscribe(config.presenceChannel);
    presence.bind('pusher:subscription_succeeded', () => {
      onlineEl.dataset.subscribed = 'true';
      // After a reconnect: whoever left meanwhile sent no member_removed to this page.
      markers.retain((id) => Boolean(presence.members.get(id)));
      showOnline();
      announceEditing(); // after a reconnect the others may have dropped this page's marker
    });
    presence.bind('pusher:subscription_error', (error) => {
      onlineEl.hidden = false;
      if (collab.isPresenceFull(error)) {
        // The 101st member is refused: 100 are online already, and who they are is not ours to list.
        onlineEl.dataset.mode = 'count';
        onlineEl.dataset.count = `${collab.PRESENCE_LIMIT}+`;
        onlineEl.dataset.members = '';
        onlineEl.textContent = collab.presenceFullText();
        return;
      }
      onlineEl.dataset.mode = 'unavailable';
      onlineEl.textContent = `Who is online is unavailable (${(error && error.status) || 'refused'})`;
    });
    presence.bind('pusher:member_added', () => {
      showOnline();
      announceEditing(); // the newcomer would otherwise wait for the next heartbeat
    });
    presence.bind('pusher:member_removed', (member) => {
      markers.memberGone(member.id); // their last tab closed or lost its connection
      showOnline();
    });
    presence.bind(collab.EDITING, (data, metadata) => {
      const userId = metadata && metadata.user_id;
      if (!userId || !data || data.offer_id === undefined) return;
      // The name as the channel-auth view signed it, not as the sender wrote it.
      const member = presence.members.get(userId);
      markers.editing(userId, (member && member.info && member.info.name) || String(userId), data.offer_id);
    });
    presence.bind(collab.EDITING_STOPPED, (data, metadata) => {
      const userId = metadata && metadata.user_id;
      if (userId && data && data.offer_id !== undefined) markers.stopped(userId, data.offer_id);
    });
  }

  function showOnline() {
    const view = collab.presenceView(presence.members);
    onlineEl.hidden = false;
    onlineEl.dataset.mode = view.overLimit ? 'count' : 'list';
    onlineEl.dataset.count = String(view.count);
    onlineEl.dataset.members = view.people.map((p) => p.name).join('\n');
    onlineEl.textContent = collab.presenceText(view);
  }

  function showMarker(el, offerId) {
    const names = markers.forOffer(offerId);
    const marker = el.querySelector('.offer-editing');
    marker.textContent = collab.editingText(names);
    marker.dataset.editors = names.join('\n');
    marker.hidden = names.length === 0;
    el.classList.toggle('being-edited', names.length > 0);
  }

  function showMarkers() {
    for (const [id, el] of cards) showMarker(el, id);
  }

  // ---------------------------------------------------------------- conditional edits

  const editorEl = $('editor');
  /** The open form: {id, etag, base (the offer it opened with), mine (changes being saved), theirs}. */
  let editing = null;
  let heartbeat = null;

  function announceEditing() {
    if (editing) throttle.push(String(editing.id), collab.EDITING, { offer_id: editing.id });
  }

  async function openEditor(id) {
    if (editing && String(editing.id) !== String(id)) closeEditor();
    const response = await api('GET', `${config.apiUrl}${id}/`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const offer = await response.json();
    editing = { id: offer.id, etag: response.headers.get('ETag'), base: offer, mine: null, theirs: null };
    editorEl.dataset.offerId = String(offer.id);
    editorEl.dataset.etag = editing.etag || '';
    $('editor-offer').textContent = `#${offer.id}`;
    fillForm(offer);
    $('editor-notice').hidden = true;
    $('conflict').hidden = true;
    $('editor-error').hidden = true;
    editorEl.hidden = false;
    editorEl.querySelector('[name=title]').focus();
    announceEditing();
    clearInterval(heartbeat);
    heartbeat = setInterval(announceEditing, HEARTBEAT_MS);
  }

  function closeEditor() {
    if (!editing) return;
    throttle.push(String(editing.id), collab.EDITING_STOPPED, { offer_id: editing.id });
    clearInterval(heartbeat);
    heartbeat = null;
    editing = null;
    editorEl.hidden = true;
    delete editorEl.dataset.offerId;
  }

  function fillForm(offer) {
    for (const name of collab.EDIT_FIELDS) {
      const input = editorEl.elements[name];
      if (name === 'is_active') input.checked = offer.is_active !== false;
      else input.value = offer[name] ?? '';
    }
  }

  function formValues() {
    const values = {};
    for (const name of collab.EDIT_FIELDS) {
      const input = editorEl.elements[name];
      if (name === 'is_active') values[name] = input.checked;
      else if (name === 'valid_to') values[name] = input.value || null;
      else values[name] = input.value.trim();
    }
    return values;
  }

  /** "changed by Máire" from an event's changed_by, else "changed by someone else". */
  function byWhom(payload) {
    const who = payload && payload.changed_by;
    return who && who.name ? who.name : 'someone else';
  }

  /** An event about the offer in the form: say so, with the new values; the form's base (ETag) stays. */
  function noticeForEditor(name, payload) {
    if (!editing || !payload) return;
    const notice = $('editor-notice');
    if (name === 'offer-updated' && payload.offer && String(payload.offer.id) === String(editing.id)) {
      const fields = collab.differingFields(editing.base, payload.offer);
      if (!fields.length) return;
      editing.theirs = payload.offer;
      const values = fields.map((field) => `${field}: “${payload.offer[field] ?? ''}”`).join(', ');
      notice.textContent = `Changed by ${byWhom(payload)} while you edit: ${values}. Saving will show both versions.`;
      notice.dataset.by = byWhom(payload);
      notice.hidden = false;
    } else if (name === 'offer-deleted' && String(payload.offer_id) === String(editing.id)) {
      notice.textContent = `Deleted by ${byWhom(payload)} while you edit.`;
      notice.hidden = false;
    }
  }

  async function saveEditor() {
    $('editor-error').hidden = true;
    const current = editing;
    const changes = current.mine || collab.changedFields(current.base, formValues());
    if (!Object.keys(changes).length) {
      closeEditor();
      return;
    }
    const id = current.id;
    const startedAt = store.clock();
    $('editor-save').disabled = true;
    let response;
    try {
      response = await api('PATCH', `${config.apiUrl}${id}/`, changes, { 'If-Match': current.etag });
    } finally {
      $('editor-save').disabled = false;
    }
    if (response.status === 412) {
      // Someone saved first: the body is the offer as it is now, with its ETag.
      const theirs = await response.json();
      store.accept(id, theirs, live.snapshotStamp(response.headers), startedAt);
      if (editing !== current) return; // the form was closed meanwhile: nothing to ask
      current.mine = changes;
      current.theirs = theirs;
      current.theirsEtag = response.headers.get('ETag');
      showConflict();
      return;
    }
    if (editing !== current) {
      if (response.ok) store.accept(id, await response.json(), live.snapshotStamp(response.headers), startedAt);
      return;
    }
    if (!response.ok) {
      $('editor-error').textContent =
        response.status === 404 ? 'This offer was deleted.' : await errorText(response);
      $('editor-error').hidden = false;
      return;
    }
    const offer = await response.json();
    store.accept(id, offer, live.snapshotStamp(response.headers), startedAt);
    document.body.dataset.saves = String(Number(document.body.dataset.saves || 0) + 1);
    closeEditor();
  }

  function showConflict() {
    const rows = $('conflict-rows');
    rows.textContent = '';
    const fields = new Set([...Object.keys(editing.mine), ...collab.differingFields(editing.base, editing.theirs)]);
    for (const field of collab.EDIT_FIELDS) {
      if (!fields.has(field)) continue;
      const row = document.createElement('tr');
      row.dataset.field = field;
      // A field only they changed is kept as theirs by a re-apply (only your changes are sent).
      const yours = field in editing.mine ? editing.mine[field] : null;
      for (const [k, value] of [field, editing.theirs[field], yours].entries()) {
        const cell = document.createElement('td');
        if (k === 2 && !(field in editing.mine)) {
          cell.textContent = '(not changed by you)';
          cell.className = 'unchanged';
        } else {
          cell.textContent = value === null || value === undefined ? '' : String(value);
        }
        row.appendChild(cell);
      }
      rows.appendChild(row);
    }
    $('conflict').hidden = false;
    $('editor-save').disabled = true;
  }

  function reapply() {
    // The saved version becomes the base; the same changes are sent again with its ETag.
    editing.base = editing.theirs;
    editing.etag = editing.theirsEtag;
    editorEl.dataset.etag = editing.etag || '';
    fillForm({ ...editing.base, ...editing.mine });
    $('conflict').hidden = true;
    $('editor-save').disabled = false;
    $('editor-notice').hidden = true;
    return saveEditor();
  }

  function discard() {
    $('conflict').hidden = true;
    $('editor-save').disabled = false;
    closeEditor();
  }

  editorEl.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!editing) return;
    saveEditor().catch((error) => {
      $('editor-error').textContent = `Could not save: ${error.message}`;
      $('editor-error').hidden = false;
    });
  });
  $('editor-cancel').addEventListener('click', closeEditor);
  $('conflict-discard').addEventListener('click', discard);
  $('conflict-reapply').addEventListener('click', () =>
    reapply().catch((error) => {
      $('editor-error').textContent = `Could not save: ${error.message}`;
      $('editor-error').hidden = false;
    }),
  );
  // Best effort when the tab goes; member_removed covers a tab that cannot say so.
  window.addEventListener('pagehide', closeEditor);

  // ---------------------------------------------------------------- writes

  /** A same-origin API call with the session, the CSRF token and, for writes, this page's socket id. */
  function api(method, url, body, extraHeaders) {
    const headers = { Accept: 'application/json', 'X-CSRFToken': config.csrfToken, ...(extraHeaders || {}) };
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
