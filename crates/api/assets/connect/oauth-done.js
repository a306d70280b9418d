// Runs on the page Dropbox redirects back to (/integrations/dropbox): hands the result to the
// Connect window that opened the sign-in popup, then closes the popup. Without an opener (the
// popup was blocked and the flow ran in the same window) it offers the way back to Connect.
(function () {
  'use strict';
  var data = document.getElementById('oauth-result');
  var result = {};
  try { result = JSON.parse(data ? data.textContent : '{}'); } catch (e) { result = {}; }
  var msg = { type: 'carbide:oauth', status: result.status, data_source_id: result.data_source_id, message: result.message };
  if (window.opener && !window.opener.closed) {
    try {
      window.opener.postMessage(msg, window.location.origin);
      setTimeout(function () { window.close(); }, 300);
      return;
    } catch (e) { /* fall through to the link */ }
  }
  var back = document.getElementById('back');
  if (back) back.hidden = false;
})();
