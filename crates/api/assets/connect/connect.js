/*! Carbide Connect embed script. Add to your page:
 *    <script src="https://YOUR-CARBIDE/connect.js"></script>
 *    CarbideConnect.open({
 *      tokenFetcher: () => fetch('/my-backend/carbide-token').then(r => r.json()), // {access_token}
 *      mode: 'modal',                         // or 'popup'
 *      options: { chunk_size: 250, use_ocr: true, tags: { team: 'sales' } },
 *      onEvent: (name, data) => console.log(name, data) // connected, files_selected, file_ready, error, closed
 *    });
 *  The access token travels by postMessage to Carbide's own origin only; it never appears in a URL.
 */
(function (global) {
  'use strict';
  var script = document.currentScript;
  var defaultBase = script && script.src ? new URL(script.src).origin : '';

  function open(cfg) {
    cfg = cfg || {};
    var base = (cfg.baseUrl || defaultBase).replace(/\/$/, '');
    var origin = new URL(base).origin;
    var tokenPromise = cfg.token ? Promise.resolve(cfg.token)
      : Promise.resolve(cfg.tokenFetcher ? cfg.tokenFetcher() : null).then(function (t) { return t && t.access_token ? t.access_token : t; });
    var target = null, overlay = null, closed = false;

    function fire(name, data) {
      var map = { connected: 'onConnected', files_selected: 'onFilesSelected', file_ready: 'onFileReady', error: 'onError', closed: 'onClose' };
      if (typeof cfg.onEvent === 'function') cfg.onEvent(name, data);
      if (map[name] && typeof cfg[map[name]] === 'function') cfg[map[name]](data);
    }
    function teardown() {
      if (closed) return;
      closed = true;
      window.removeEventListener('message', onMessage);
      if (overlay) overlay.remove();
    }
    function onMessage(ev) {
      if (ev.origin !== origin || !target || ev.source !== target) return;
      var m = ev.data || {};
      if (m.type === 'carbide:ready') {
        tokenPromise.then(function (token) {
          if (!token) { fire('error', { message: 'no access token' }); return; }
          target.postMessage({ type: 'carbide:init', token: token, options: cfg.options || {} }, origin);
        }, function (e) { fire('error', { message: 'token fetch failed: ' + e }); });
      } else if (m.type === 'carbide:event') {
        fire(m.event, m.data);
        if (m.event === 'closed') teardown();
      }
    }
    window.addEventListener('message', onMessage);

    if (cfg.mode === 'popup') {
      var w = window.open(base + '/connect', 'carbide-connect', 'popup,width=600,height=760');
      if (!w) { fire('error', { message: 'popup blocked' }); teardown(); return null; }
      target = w;
      var timer = setInterval(function () { if (w.closed) { clearInterval(timer); if (!closed) { fire('closed', {}); teardown(); } } }, 700);
    } else {
      overlay = document.createElement('div');
      overlay.setAttribute('style', 'position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center;z-index:2147483647');
      var frame = document.createElement('iframe');
      frame.title = 'Connect your Dropbox';
      frame.src = base + '/connect';
      frame.setAttribute('style', 'width:min(640px,100vw);height:min(760px,100vh);border:0;border-radius:8px;background:#fff');
      frame.setAttribute('allow', 'popups');
      overlay.appendChild(frame);
      overlay.addEventListener('click', function (e) { if (e.target === overlay) { fire('closed', {}); teardown(); } });
      document.body.appendChild(overlay);
      target = frame.contentWindow;
      frame.focus();
    }
    return { close: function () { fire('closed', {}); teardown(); if (cfg.mode === 'popup' && target) target.close(); } };
  }

  global.CarbideConnect = { open: open };
})(window);
