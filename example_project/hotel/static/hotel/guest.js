/**
 * The guest page: a hotel's active offers, live from the hotel's public channel.
 *
 * The real public view's rules, applied by offers_live.js: offer-created adds an offer
 * only when it is active; offer-updated removes it when inactive, adds it when active
 * and not shown, replaces it otherwise; offer-deleted removes it; offer-image-updated
 * sets its photo; offers-updated fetches again (active offers only, from the public API).
 * Plus what the staff board does for any arrival order: versions per part of an offer,
 * deletes winning over older updates, repeated event ids skipped.
 *
 * Settings come from the JSON script tag #guest-config (hotel/public_views.py).
 */
(function () {
  'use strict';

  const live = window.OffersLive;
  const config = JSON.parse(document.getElementById('guest-config').textContent);

  const $ = (id) => document.getElementById(id);
  const listEl = $('offers');
  const template = $('offer-template');
  const connectionEl = $('connection');
  const cards = new Map();
  let everConnected = false;
  let syncs = 0;
  let events = 0;

  const loaders = live.apiLoaders(config.apiUrl);
  const store = live.createStore({
    loadList: loaders.loadList,
    loadOne: loaders.loadOne,
    project: live.publicView, // inactive offers are not shown
    onChange(reason) {
      if (reason === 'list') {
        showLoadError('');
        document.body.dataset.syncs = String(++syncs);
      }
      render();
    },
    onError() {
      showLoadError('The offers could not be loaded just now; retrying…');
    },
  });

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
        el = template.content.firstElementChild.cloneNode(true);
        el.dataset.offerId = offer.id;
        cards.set(String(offer.id), el);
      }
      fill(el, offer);
      listEl.appendChild(el);
    }
    $('empty').hidden = shown.length > 0;
  }

  function validity(from, to) {
    const format = { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' };
    const day = (iso) => new Date(`${iso}T00:00:00Z`).toLocaleDateString('en-GB', format);
    if (from && to) return `Valid ${day(from)} – ${day(to)}`;
    if (from) return `Valid from ${day(from)}`;
    if (to) return `Valid until ${day(to)}`;
    return '';
  }

  function fill(el, offer) {
    const text = (selector, value) => {
      el.querySelector(selector).textContent = value ?? '';
    };
    text('.offer-tag', offer.tag);
    text('.offer-title', offer.title);
    text('.offer-short', offer.short_description);
    // details_html is the host's rich text; this page shows the plain-text version rather
    // than insert HTML it has no sanitizer for.
    text('.offer-details', offer.details_text);
    text('.offer-validity', validity(offer.valid_from, offer.valid_to));
    const validityEl = el.querySelector('.offer-validity');
    validityEl.dataset.from = offer.valid_from || '';
    validityEl.dataset.to = offer.valid_to || '';
    const link = el.querySelector('.offer-book');
    if (offer.book_now_url) link.href = offer.book_now_url;
    else link.removeAttribute('href');
    link.hidden = !offer.book_now_url;
    const img = el.querySelector('.offer-photo');
    if (offer.photo_url) {
      if (img.getAttribute('src') !== offer.photo_url) img.src = offer.photo_url;
      img.alt = offer.title || '';
      img.hidden = false;
    } else {
      img.removeAttribute('src');
      img.hidden = true;
    }
    el.classList.toggle('no-photo', !offer.photo_url);
  }

  function showLoadError(message) {
    $('load-error').textContent = message;
    $('load-error').hidden = !message;
  }

  function showConnection(state) {
    const shown = live.connectionLabel(state, everConnected);
    connectionEl.dataset.state = shown;
    connectionEl.textContent = shown === 'connected' ? 'live' : shown;
  }

  const pusher = live.connect(config, {
    onState(current) {
      showConnection(current);
      if (current === 'connected') everConnected = true;
      else connectionEl.dataset.subscribed = 'false';
    },
    onSubscribed() {
      connectionEl.dataset.subscribed = 'true';
      store.refresh();
    },
    onEvent(name, payload) {
      const result = store.handle(name, payload);
      // How many events this page applied (tests read it: another hotel's never count).
      if (result.outcome !== 'duplicate' && result.outcome !== 'ignored') {
        document.body.dataset.events = String(++events);
      }
    },
  });
  if (!pusher) {
    connectionEl.dataset.state = 'offline';
    connectionEl.textContent = 'not live';
  }

  store.refresh();
})();
