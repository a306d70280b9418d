// End-to-end tests of Carbide Connect in a real headless Chromium (Debian's, driven by
// playwright-core; no browser download), against a real carbide and the Dropbox emulator:
// connect through the emulator's consent page, browse, pick a file and a folder, watch every
// file reach Ready, see a file added later appear; Deny shows a clear message; a revoked
// connection offers Reconnect. Screenshots of the main states go to test-artifacts/connect/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CARBIDE = process.env.CARBIDE_BIN || path.join(ROOT, 'target/debug/carbide');
const EMULATOR = process.env.DROPBOX_EMULATOR_BIN || path.join(ROOT, 'target/debug/dropbox-emulator');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'connect');
const T = 60_000;

const procs = [];
let emu, carbide, apiKey, hostServer, hostUrl, browser, account, tmp;

function startProc(bin, args, env, pattern) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    const log = fs.createWriteStream(path.join(tmp, path.basename(bin) + '.log'));
    p.stderr.pipe(log);
    const rl = readline.createInterface({ input: p.stdout });
    const timer = setTimeout(() => reject(new Error(`${bin} did not start`)), 30_000);
    rl.on('line', (line) => {
      const i = line.indexOf(pattern);
      if (i >= 0) { clearTimeout(timer); resolve(line.slice(i + pattern.length).trim()); }
    });
    p.on('exit', (code) => reject(new Error(`${bin} exited with ${code}`)));
  });
}

async function post(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${url} -> ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const adminApi = (route, body) => post(`${emu}/__admin/${route}`, body);
const b64 = (s) => Buffer.from(s).toString('base64');

async function customerToken(customer) {
  const r = await fetch(`${carbide}/auth/v1/access_token`, { headers: { authorization: `Bearer ${apiKey}`, 'customer-id': customer } });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

function hostPage(token) {
  // The developer's own page (another origin) using connect.js in popup mode.
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host app</title>
<script src="${carbide}/connect.js"></script></head><body>
<button id="open">Connect Dropbox</button><pre id="events"></pre>
<script>
document.getElementById('open').onclick = function () {
  CarbideConnect.open({ baseUrl: ${JSON.stringify(carbide)}, token: ${JSON.stringify(token)}, mode: 'popup',
    onEvent: function (n, d) { document.getElementById('events').textContent += n + ' ' + JSON.stringify(d) + '\\n'; } });
};
</script></body></html>`;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'carbide-e2e-'));
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  emu = await startProc(EMULATOR, ['--listen', '127.0.0.1:0'], {}, 'dropbox-emulator listening on');
  const env = {
    CARBIDE_DATA_DIR: path.join(tmp, 'data'), CARBIDE_LISTEN: '127.0.0.1:0', CARBIDE_DROPBOX_URL: emu,
    CARBIDE_DROPBOX_APP_KEY: 'e2e-app', CARBIDE_DROPBOX_APP_SECRET: 'e2e-secret', CARBIDE_LOG: 'warn',
    CARBIDE_MODEL_DIR: process.env.CARBIDE_MODEL_DIR || path.join(ROOT, 'models/all-MiniLM-L6-v2'),
  };
  fs.mkdirSync(env.CARBIDE_DATA_DIR);
  const org = spawn(CARBIDE, ['org', 'create', '--name', 'e2e', '--json'], { env: { ...process.env, ...env } });
  let out = '';
  org.stdout.on('data', (d) => { out += d; });
  await new Promise((res) => org.on('exit', res));
  apiKey = JSON.parse(out).api_key;
  carbide = await startProc(CARBIDE, ['serve'], env, 'carbide listening on');
  await adminApi('apps', { app_key: 'e2e-app', app_secret: 'e2e-secret', redirect_uris: [`${carbide}/integrations/dropbox`] });
  account = await adminApi('accounts', { email: 'ada@example.com', given_name: 'Ada', surname: 'Lane' });
  for (const [p, text] of [
    ['/Reports/q3-results.txt', 'Quarterly results: revenue grew twelve percent in the third quarter.'],
    ['/Reports/summary.md', '# Summary\n\nThe board approved the 2027 budget.'],
    ['/Notes/todo.txt', 'Buy a standing desk and renew the co-working membership.'],
    ['/Notes/holiday.heic', 'not really an image'],
  ]) {
    await adminApi('files', { account_id: account.account_id, path: p, content_b64: b64(text) });
  }
  hostServer = http.createServer((req, res) => {
    const token = decodeURIComponent((req.url.split('token=')[1] || '').split('&')[0]);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(hostPage(token));
  });
  await new Promise((res) => hostServer.listen(0, '127.0.0.1', res));
  hostUrl = `http://127.0.0.1:${hostServer.address().port}/`;
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (hostServer) hostServer.close();
  for (const p of procs) p.kill('SIGTERM');
});

async function openConnect(context, customer) {
  const token = await customerToken(customer);
  const host = await context.newPage();
  await host.goto(`${hostUrl}?token=${encodeURIComponent(token)}`);
  const [connect] = await Promise.all([context.waitForEvent('page'), host.click('#open')]);
  await connect.waitForLoadState();
  return { host, connect };
}

function watchRequests(page, allowedOrigins) {
  const foreign = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol.startsWith('http') && !allowedOrigins.includes(u.origin)) foreign.push(r.url());
  });
  return foreign;
}

async function signIn(context, connect, decision) {
  const [consent] = await Promise.all([context.waitForEvent('page'), connect.getByRole('button', { name: /Connect a Dropbox account|Reconnect/ }).first().click()]);
  await consent.waitForLoadState();
  await consent.getByRole('button', { name: /Continue as Ada Lane/ }).click();
  await consent.getByRole('button', { name: decision }).click();
  return consent;
}

test('connect, browse, pick a file and a folder, everything syncs, a new file appears', { timeout: 4 * T }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const { host, connect } = await openConnect(context, 'alice');
  const foreign = watchRequests(connect, [new URL(carbide).origin]);
  await connect.getByRole('heading', { name: 'Dropbox accounts' }).waitFor({ timeout: T });
  await connect.screenshot({ path: path.join(ARTIFACTS, '1-accounts.png') });
  await signIn(context, connect, 'Allow');
  await connect.getByRole('heading', { name: 'Choose files and folders' }).waitFor({ timeout: T });
  await connect.getByText('Reports').first().waitFor({ timeout: T });
  // Browse into Notes: the .heic is visibly disabled with its reason; pick todo.txt.
  await connect.getByRole('button', { name: 'Open folder Notes' }).click();
  await connect.getByRole('checkbox', { name: 'todo.txt' }).check();
  assert.equal(await connect.getByRole('checkbox', { name: 'holiday.heic' }).isDisabled(), true);
  await connect.screenshot({ path: path.join(ARTIFACTS, '2-picker.png') });
  // Back to the root by the breadcrumb; pick the Reports folder.
  await connect.locator('#crumbs button').first().click();
  await connect.getByRole('checkbox', { name: 'Reports' }).check();
  await connect.getByRole('button', { name: 'Choose 2' }).click();
  await connect.getByRole('heading', { name: 'Syncing' }).waitFor({ timeout: T });
  const ready = (name) => connect.locator('#files tr', { hasText: name }).locator('td[data-status="READY"]');
  for (const name of ['todo.txt', 'q3-results.txt', 'summary.md']) await ready(name).waitFor({ timeout: 2 * T });
  await connect.screenshot({ path: path.join(ARTIFACTS, '3-synced.png') });
  // A file added to the chosen folder shows up by itself.
  await adminApi('files', { account_id: account.account_id, path: '/Reports/board-minutes.txt', content_b64: b64('Minutes: the board met on Tuesday.') });
  await ready('board-minutes.txt').waitFor({ timeout: 2 * T });
  await connect.screenshot({ path: path.join(ARTIFACTS, '4-new-file.png') });
  const events = await host.locator('#events').textContent();
  for (const e of ['connected', 'files_selected', 'file_ready']) assert.ok(events.includes(e), `host saw no ${e} event: ${events}`);
  assert.deepEqual(foreign, [], 'the Connect page requested another origin');
  await context.close();
});

test('the page works on a 360-px phone and with the keyboard', { timeout: 2 * T }, async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true });
  const { connect } = await openConnect(context, 'alice');
  // window.open's size features win over the context viewport for popups: set it on the page.
  await connect.setViewportSize({ width: 360, height: 740 });
  await connect.getByRole('heading', { name: 'Dropbox accounts' }).waitFor({ timeout: T });
  const overflow = await connect.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, 'horizontal overflow at 360 px');
  await connect.getByRole('button', { name: 'Browse files' }).first().focus();
  await connect.keyboard.press('Enter');
  await connect.getByRole('heading', { name: 'Choose files and folders' }).waitFor({ timeout: T });
  await connect.getByRole('checkbox', { name: 'Reports' }).waitFor({ timeout: T });
  assert.equal(await connect.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1), false);
  await connect.screenshot({ path: path.join(ARTIFACTS, '5-phone.png') });
  const csp = (await connect.request.get(`${carbide}/connect`)).headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'/);
  await context.close();
});

test('Deny shows a clear message and connects nothing', { timeout: 2 * T }, async () => {
  const context = await browser.newContext();
  const { connect } = await openConnect(context, 'bob');
  await connect.getByRole('heading', { name: 'Dropbox accounts' }).waitFor({ timeout: T });
  await signIn(context, connect, 'Deny');
  await connect.getByText(/declined access in Dropbox/).waitFor({ timeout: T });
  await connect.screenshot({ path: path.join(ARTIFACTS, '6-denied.png') });
  await connect.getByText('No Dropbox account connected yet.').waitFor({ timeout: T });
  await context.close();
});

test('a revoked connection offers Reconnect', { timeout: 2 * T }, async () => {
  const token = await customerToken('alice');
  const sources = await post(`${carbide}/user_data_sources`, {}, { authorization: `Token ${token}` });
  assert.ok(sources.results.length > 0);
  await post(`${carbide}/revoke_access_token`, { data_source_id: sources.results[0].id }, { authorization: `Token ${token}` });
  const context = await browser.newContext();
  const { connect } = await openConnect(context, 'alice');
  await connect.getByRole('button', { name: 'Reconnect' }).waitFor({ timeout: T });
  await connect.screenshot({ path: path.join(ARTIFACTS, '7-revoked.png') });
  await context.close();
});
