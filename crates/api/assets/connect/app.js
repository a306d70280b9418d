// Carbide Connect: the end user's page for connecting Dropbox, picking files and folders and
// watching them sync. Talks only to carbide's Carbon-compatible API with the customer's access
// token, which arrives by postMessage from the embedding page (connect.js), from a POSTed form
// (rendered into a JSON data block), or from sessionStorage after an OAuth redirect. The token is
// never put in a URL, so it stays out of server logs and browser history.
(function () {
  'use strict';

  var MB = 1024 * 1024;
  var S = {
    token: null,
    options: {},
    hostOrigin: null,
    sources: [],
    source: null,
    path: [],
    items: [],
    offset: 0,
    total: 0,
    selected: new Map(),
    seenReady: new Set(),
    seenError: new Set(),
    syncTimer: null,
    popup: null,
    popupTimer: null
  };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'class') e.className = attrs[k];
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- host page messaging ---------------------------------------------------------------
  function host() {
    if (window.opener && !window.opener.closed) return window.opener;
    if (window.parent && window.parent !== window) return window.parent;
    return null;
  }
  function emit(event, data) {
    var h = host();
    if (h && S.hostOrigin) h.postMessage({ type: 'carbide:event', event: event, data: data || {} }, S.hostOrigin);
  }

  // ---- messages ---------------------------------------------------------------------------
  function notice(text, kind) {
    var n = $('notice');
    if (!text) { n.hidden = true; n.textContent = ''; return; }
    n.className = 'notice' + (kind === 'info' ? ' info' : '');
    n.textContent = text;
    n.hidden = false;
  }
  function show(view) {
    ['view-start', 'view-accounts', 'view-picker', 'view-sync'].forEach(function (v) { $(v).hidden = v !== view; });
    $('app').setAttribute('aria-busy', 'false');
    var h = $(view).querySelector('h2');
    if (h) { h.setAttribute('tabindex', '-1'); h.focus(); }
  }

  // ---- API --------------------------------------------------------------------------------
  function ApiError(status, detail) { this.status = status; this.detail = detail; }
  function describe(err) {
    if (!(err instanceof ApiError)) return 'Network error: ' + (err && err.message ? err.message : err);
    if (err.status === 401) return 'Your session has expired. Close this window and open Connect again from the application.';
    if (err.status === 429) return 'Too many requests right now; please wait a moment and try again.';
    var d = err.detail;
    if (Array.isArray(d)) d = d.map(function (x) { return x.msg; }).join('; ');
    return (typeof d === 'string' && d) ? d : ('The server answered ' + err.status + '.');
  }
  function api(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'authorization': 'Token ' + S.token, 'content-type': 'application/json', 'accept': 'application/json' },
      body: JSON.stringify(body || {}),
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = null; }
        if (!r.ok) throw new ApiError(r.status, j && j.detail !== undefined ? j.detail : t);
        return j;
      });
    });
  }

  function syncOptions() {
    var o = S.options, out = {};
    ['chunk_size', 'chunk_overlap', 'use_ocr', 'embedding_model', 'skip_embedding_generation',
     'prepend_filename_to_chunks', 'set_page_as_boundary', 'request_id', 'tags'].forEach(function (k) {
      if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
    });
    return out;
  }
  function maxBytes() { return (Number(S.options.max_file_size_mb) || 50) * MB; }

  // ---- accounts ---------------------------------------------------------------------------
  function loadAccounts() {
    return api('/user_data_sources', { filters: { source: 'DROPBOX' }, pagination: { limit: 50 } })
      .then(function (r) { S.sources = r.results || []; renderAccounts(); show('view-accounts'); })
      .catch(function (e) { notice(describe(e)); show('view-accounts'); });
  }
  function accountLabel(ds) {
    var m = ds.data_source_metadata || {};
    return m.email || m.display_name || ds.data_source_external_id || ('Dropbox ' + ds.id);
  }
  function renderAccounts() {
    var ul = $('accounts');
    ul.textContent = '';
    if (!S.sources.length) { ul.appendChild(el('li', {}, 'No Dropbox account connected yet.')); return; }
    S.sources.forEach(function (ds) {
      var li = el('li');
      li.appendChild(el('span', { class: 'who' }, accountLabel(ds)));
      var state = ds.revoked_access ? 'revoked' : ds.sync_status;
      li.appendChild(el('span', { class: 'badge ' + state }, ds.revoked_access ? 'Access revoked' : ds.sync_status.replace(/_/g, ' ').toLowerCase()));
      if (ds.revoked_access) {
        li.appendChild(el('button', { type: 'button', class: 'primary', onclick: function () { connect(); } }, 'Reconnect'));
      } else {
        li.appendChild(el('button', { type: 'button', onclick: function () { openSource(ds); } }, 'Browse files'));
        li.appendChild(el('button', { type: 'button', onclick: function () { disconnect(ds); } }, 'Disconnect'));
      }
      ul.appendChild(li);
    });
  }
  function disconnect(ds) {
    if (!window.confirm('Disconnect ' + accountLabel(ds) + '? Files stop syncing.')) return;
    api('/revoke_access_token', { data_source_id: ds.id })
      .then(function () { notice('Disconnected ' + accountLabel(ds) + '.', 'info'); return loadAccounts(); })
      .catch(function (e) { notice(describe(e)); });
  }

  // ---- OAuth ------------------------------------------------------------------------------
  function connect() {
    notice('');
    var body = Object.assign({ service: 'DROPBOX', connecting_new_account: true }, syncOptions());
    api('/integrations/oauth_url', body).then(function (r) {
      var popup = window.open(r.oauth_url, 'carbide-dropbox', 'popup,width=560,height=720');
      if (!popup) {
        // Popup blocked: continue in this window; the session survives in sessionStorage.
        saveSession();
        window.location.assign(r.oauth_url);
        return;
      }
      S.popup = popup;
      notice('Finish signing in to Dropbox in the window that opened.', 'info');
      clearInterval(S.popupTimer);
      S.popupTimer = setInterval(function () {
        if (S.popup && S.popup.closed) {
          clearInterval(S.popupTimer);
          S.popup = null;
          loadAccounts();
        }
      }, 700);
    }).catch(function (e) { notice(describe(e)); emit('error', { message: describe(e) }); });
  }
  function onOauthResult(msg) {
    clearInterval(S.popupTimer);
    S.popup = null;
    if (msg.status === 'connected') {
      notice('Dropbox connected.', 'info');
      emit('connected', { data_source_id: msg.data_source_id });
      loadAccounts().then(function () {
        var ds = S.sources.filter(function (d) { return d.id === msg.data_source_id; })[0];
        if (ds) openSource(ds);
      });
    } else if (msg.status === 'denied') {
      notice('You declined access in Dropbox, so nothing was connected. Choose Connect to try again.');
      emit('error', { message: 'access_denied' });
    } else {
      notice(msg.message || 'Dropbox could not be connected.');
      emit('error', { message: msg.message || 'oauth_error' });
    }
  }

  // ---- picker -----------------------------------------------------------------------------
  function openSource(ds) {
    S.source = ds;
    S.path = [{ id: null, name: accountLabel(ds) }];
    S.selected.clear();
    show('view-picker');
    $('picker-status').textContent = 'Reading your Dropbox…';
    api('/integrations/items/sync', { data_source_id: ds.id }).then(waitForItems)
      .catch(function (e) { $('picker-status').textContent = ''; notice(describe(e)); });
  }
  function waitForItems() {
    var started = Date.now();
    return new Promise(function (resolve) {
      (function poll() {
        api('/user_data_sources', { filters: { ids: [S.source.id] } }).then(function (r) {
          var ds = (r.results || [])[0];
          if (ds && ds.source_items_synced_at && ds.sync_status !== 'SYNCING' && ds.sync_status !== 'QUEUED_FOR_SYNCING') {
            S.source = ds; resolve(listItems(true));
          } else if (ds && ds.sync_status === 'SYNC_ERROR') {
            notice('Dropbox could not be read. ' + (ds.revoked_access ? 'Access was revoked: reconnect the account.' : 'Try again later.'));
            resolve();
          } else if (Date.now() - started > 120000) {
            notice('Reading your Dropbox takes longer than expected; showing what is there so far.', 'info');
            resolve(listItems(true));
          } else { setTimeout(poll, 800); }
        }).catch(function (e) { notice(describe(e)); resolve(); });
      })();
    });
  }
  function listItems(reset) {
    if (reset) { S.items = []; S.offset = 0; }
    var q = $('search').value.trim();
    var cur = S.path[S.path.length - 1];
    var body = { data_source_id: S.source.id, parent_id: cur.id, pagination: { limit: 100, offset: S.offset }, order_by: 'directories_first' };
    if (q) body.filters = { name: q };
    $('picker-status').textContent = 'Loading…';
    return api('/integrations/items/list', body).then(function (r) {
      S.items = S.items.concat(r.items || []);
      S.total = r.count || 0;
      S.offset = S.items.length;
      renderItems();
    }).catch(function (e) { $('picker-status').textContent = ''; notice(describe(e)); });
  }
  function human(bytes) {
    if (bytes === undefined || bytes === null) return '';
    if (bytes < 1024) return bytes + ' B';
    if (bytes < MB) return (bytes / 1024).toFixed(1) + ' KB';
    return (bytes / MB).toFixed(1) + ' MB';
  }
  function reasonFor(item) {
    if (item.item_type === 'FOLDER') return null;
    if (typeof item.size === 'number' && item.size > maxBytes()) return 'Over the ' + (maxBytes() / MB) + ' MB limit';
    if (item.is_selectable === false) return item.unselectable_reason || 'File type not supported';
    return null;
  }
  function renderCrumbs() {
    var ol = $('crumbs');
    ol.textContent = '';
    S.path.forEach(function (p, i) {
      var li = el('li');
      if (i === S.path.length - 1) li.appendChild(el('span', { 'aria-current': 'page' }, p.name));
      else li.appendChild(el('button', { type: 'button', class: 'link', onclick: function () { S.path = S.path.slice(0, i + 1); listItems(true); } }, p.name));
      ol.appendChild(li);
    });
  }
  function renderItems() {
    renderCrumbs();
    var ul = $('items');
    ul.textContent = '';
    S.items.forEach(function (item) {
      var reason = reasonFor(item);
      var id = 'item-' + item.id;
      var li = el('li', { class: reason ? 'disabled' : '' });
      var box = el('input', { type: 'checkbox', id: id, disabled: reason ? 'disabled' : null, 'aria-describedby': reason ? id + '-why' : null });
      box.checked = S.selected.has(item.external_id);
      box.addEventListener('change', function () {
        if (box.checked) S.selected.set(item.external_id, item); else S.selected.delete(item.external_id);
        updateChoose();
      });
      li.appendChild(box);
      var label = el('label', { for: id, class: 'name' });
      if (item.item_type === 'FOLDER') label.appendChild(el('span', { class: 'folder-icon', 'aria-hidden': 'true' }));
      label.appendChild(document.createTextNode(item.name));
      li.appendChild(label);
      var meta = item.item_type === 'FOLDER' ? 'Folder' : [item.file_format || '', human(item.size)].filter(Boolean).join(' · ');
      li.appendChild(el('span', { class: 'meta' }, meta));
      if (item.item_type === 'FOLDER') {
        li.appendChild(el('button', { type: 'button', 'aria-label': 'Open folder ' + item.name, onclick: function () {
          S.path.push({ id: item.external_id, name: item.name }); $('search').value = ''; listItems(true);
        } }, 'Open'));
      }
      if (reason) li.appendChild(el('span', { class: 'reason', id: id + '-why' }, reason));
      ul.appendChild(li);
    });
    $('more').hidden = S.items.length >= S.total;
    $('picker-status').textContent = S.total ? (S.items.length + ' of ' + S.total + ' items') : 'This folder is empty.';
    updateChoose();
  }
  function updateChoose() {
    var n = S.selected.size;
    $('choose').disabled = n === 0;
    $('choose').textContent = n ? 'Choose ' + n : 'Choose';
  }
  function choose() {
    var ids = Array.from(S.selected.keys());
    if (!ids.length) return;
    $('choose').disabled = true;
    var body = Object.assign({ data_source_id: S.source.id, ids: ids }, syncOptions());
    api('/integrations/files/sync', body).then(function () {
      emit('files_selected', { data_source_id: S.source.id, ids: ids });
      S.selected.clear();
      startSyncView();
    }).catch(function (e) { notice(describe(e)); updateChoose(); emit('error', { message: describe(e) }); });
  }

  // ---- sync status ------------------------------------------------------------------------
  var LABEL = { QUEUED_FOR_SYNC: 'Queued', SYNCING: 'Syncing', READY: 'Ready', SYNC_ERROR: 'Error',
    READY_TO_SYNC: 'Stored', DELAYED: 'Delayed', RATE_LIMITED: 'Waiting (rate limited)',
    EVALUATING_RESYNC: 'Checking', SYNC_ABORTED: 'Cancelled', QUEUED_FOR_OCR: 'Queued for OCR' };
  function startSyncView() {
    show('view-sync');
    pollFiles();
    clearInterval(S.syncTimer);
    S.syncTimer = setInterval(pollFiles, 2000);
  }
  function pollFiles() {
    if (!S.source) return;
    api('/user_files_v2', { filters: { organization_user_data_source_id: [S.source.id] }, pagination: { limit: 500 }, order_by: 'name', order_dir: 'asc' })
      .then(function (r) { renderFiles(r.results || []); })
      .catch(function (e) { notice(describe(e)); });
  }
  function renderFiles(files) {
    var tb = $('files');
    tb.textContent = '';
    var counts = { ready: 0, error: 0, busy: 0 };
    files.forEach(function (f) {
      if (f.file_metadata && f.file_metadata.is_folder) return;
      var tr = el('tr');
      tr.appendChild(el('td', {}, f.name || f.external_file_id));
      var td = el('td', {}, LABEL[f.sync_status] || f.sync_status);
      td.setAttribute('data-status', f.sync_status);
      if (f.sync_status === 'SYNC_ERROR' && f.sync_error_message) td.appendChild(el('span', { class: 'err' }, f.sync_error_message));
      tr.appendChild(td);
      tb.appendChild(tr);
      if (f.sync_status === 'READY') {
        counts.ready++;
        if (!S.seenReady.has(f.id)) { S.seenReady.add(f.id); emit('file_ready', { file_id: f.id, name: f.name }); }
      } else if (f.sync_status === 'SYNC_ERROR') {
        counts.error++;
        if (!S.seenError.has(f.id)) { S.seenError.add(f.id); emit('error', { file_id: f.id, name: f.name, message: f.sync_error_message }); }
      } else { counts.busy++; }
    });
    $('sync-summary').textContent = counts.ready + ' ready, ' + counts.busy + ' in progress, ' + counts.error + ' with errors';
  }

  // ---- session bootstrap ------------------------------------------------------------------
  function saveSession() {
    try { sessionStorage.setItem('carbide-connect', JSON.stringify({ token: S.token, options: S.options })); } catch (e) { /* storage disabled */ }
  }
  function start(token, options) {
    S.token = token;
    S.options = options || {};
    if (S.options.title) $('title').textContent = S.options.title;
    saveSession();
    $('close').hidden = !host();
    loadAccounts();
  }
  function boot() {
    var data = $('boot');
    if (data) {
      try { var b = JSON.parse(data.textContent); if (b.token) { start(b.token, b.options); return; } } catch (e) { /* ignore */ }
    }
    try {
      var saved = JSON.parse(sessionStorage.getItem('carbide-connect') || 'null');
      if (saved && saved.token) { start(saved.token, saved.options); return; }
    } catch (e) { /* ignore */ }
    show('view-start');
    var h = host();
    if (h) h.postMessage({ type: 'carbide:ready' }, '*');
  }

  window.addEventListener('message', function (ev) {
    var m = ev.data || {};
    if (m.type === 'carbide:init' && !S.token && typeof m.token === 'string') {
      S.hostOrigin = ev.origin;
      start(m.token, m.options);
    } else if (m.type === 'carbide:oauth' && ev.origin === window.location.origin) {
      onOauthResult(m);
    }
  });

  $('connect').addEventListener('click', connect);
  $('choose').addEventListener('click', choose);
  $('more').addEventListener('click', function () { listItems(false); });
  $('back-accounts').addEventListener('click', function () { loadAccounts(); });
  $('pick-more').addEventListener('click', function () { clearInterval(S.syncTimer); openSource(S.source); });
  $('done').addEventListener('click', function () { clearInterval(S.syncTimer); emit('closed', {}); if (window.opener) window.close(); else loadAccounts(); });
  $('close').addEventListener('click', function () { emit('closed', {}); if (window.opener) window.close(); });
  $('search-form').addEventListener('submit', function (e) { e.preventDefault(); listItems(true); });
  var t = null;
  $('search').addEventListener('input', function () { clearTimeout(t); t = setTimeout(function () { listItems(true); }, 300); });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && host()) { emit('closed', {}); if (window.opener) window.close(); } });
  boot();
})();
