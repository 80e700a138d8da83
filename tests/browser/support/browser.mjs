// Debian's Chromium driven by playwright-core (no browser download), plus the small waiting
// helpers the tests need (playwright-core has no `expect`).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// playwright-core is a devDependency of web/, the only package.json in the repository.
const require = createRequire(new URL('../../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

export const FAKE_SDK = fileURLToPath(new URL('./fake-voice-sdk.js', import.meta.url));
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 740 };
// Generous: on a loaded 2-core CI machine a first request to a debug function, or Chromium
// itself, can take several seconds; a real failure still shows, just later.
const WAIT_MS = 30 * 1000;

// What every page asked for, got and logged, for whoever reads a failure: the TAP report says
// which test timed out, this says what the page was doing meanwhile (a request never answered,
// an answer that came late, a script that threw).
const journal = [];
const journalStart = Date.now();
let pagesOpened = 0;

export function note(line) {
  journal.push(`${String(Date.now() - journalStart).padStart(7)} ms ${line}`);
}

export function journalText() {
  return journal.join('\n') + '\n';
}

function keepJournal(page) {
  const id = `page ${++pagesOpened}`;
  const path = (url) => {
    const parsed = new URL(url);
    return parsed.origin === 'null' ? url.slice(0, 60) : parsed.pathname + parsed.search;
  };
  page.on('request', (r) => note(`${id} → ${r.method()} ${path(r.url())}`));
  page.on('response', (r) => note(`${id} ← ${r.status()} ${r.request().method()} ${path(r.url())}`));
  page.on('requestfailed', (r) => note(`${id} ✗ ${r.method()} ${path(r.url())}: ${r.failure()?.errorText}`));
  page.on('console', (m) => note(`${id} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (error) => note(`${id} uncaught: ${error.message}`));
  page.on('load', () => note(`${id} load ${path(page.url())}`));
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.WARMLINE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 60 * 1000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      // No host name resolves, so nothing the pages (or the real SDK) try can leave the machine;
      // the stack on 127.0.0.1 is the one exception.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}

/**
 * A fresh context (own storage and cookies, so not signed in) with one page on `url`, which
 * must end (after redirects) in a 200. Unless `realSdk`, the Voice SDK is swapped for the fake.
 * `problems` collects console errors and uncaught exceptions; `external` every request for
 * another origin, answered here (the real SDK tries Twilio's). With `clock`, the pages' timers and
 * `Date` are Playwright's fake clock (it runs in real time until a test moves it on with
 * `page.clock.fastForward`).
 */
export async function open(browser, url, { viewport = DESKTOP, realSdk = false, javaScriptEnabled = true, clock = false } = {}) {
  const origin = new URL(url).origin;
  const context = await browser.newContext({ viewport, javaScriptEnabled });
  if (clock) {
    await context.clock.install();
  }
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(30 * 1000);
  const external = [];
  await context.route(
    (target) => target.origin !== origin,
    (route) => {
      external.push(route.request().url());
      return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not reachable from tests' });
    },
  );
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`);
    });
    // Records the sockets the page opens but leaves them real, so the CSP still judges them
    // (Playwright's routeWebSocket would replace the socket before the CSP sees it).
    const RealWebSocket = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends RealWebSocket {
      constructor(url, protocols) {
        window.__sockets.push(String(url));
        super(url, protocols);
      }
    };
  });
  if (!realSdk) {
    await context.route('**/static/twilio.min.*.js', (route) =>
      route.fulfill({ path: FAKE_SDK, contentType: 'text/javascript; charset=utf-8' }),
    );
  }
  const page = await context.newPage();
  keepJournal(page);
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      problems.push(message.text());
    }
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  const assets = new Map();
  page.on('response', (r) => new URL(r.url()).pathname.startsWith('/static/') && assets.set(r.url(), r.status()));
  page.on('requestfailed', (r) => new URL(r.url()).pathname.startsWith('/static/') && assets.set(r.url(), 'failed'));

  const opened = { page, context, problems, external, assets };
  opened.response = await reloadIfAssetsFailed(opened, await page.goto(url));
  assert.equal(opened.response.status(), 200, url);
  return opened;
}

/**
 * `cargo lambda watch` sometimes fails a request that Warmline never sees: one that lands while
 * it restarts a function after a source file changed, or (seen in CI) one of several asset
 * requests a page makes at once, answered 500. Reloading the page now shown (up to three times)
 * tells that apart from a page that never works; call it after every navigation that loads a
 * page's scripts.
 * Resolves to the response of the load that counts.
 */
export async function reloadIfAssetsFailed({ page, problems, assets }, response) {
  // Up to three reloads: CI has seen the same asset fail twice in a row.
  for (let reloads = 0; reloads < 3 && (await brokenAssets(page, assets)).length > 0; reloads++) {
    note(`reloading ${page.url()}: ${(await brokenAssets(page, assets)).join(', ')}`);
    problems.length = 0;
    assets.clear();
    response = await page.reload();
  }
  assert.deepEqual(await brokenAssets(page, assets), [], `${page.url()}: assets that did not load`);
  return response;
}

/** Every stylesheet and script the page refers to, unless it arrived with a 200. */
async function brokenAssets(page, statuses) {
  const urls = await page.evaluate(() =>
    Array.from(document.querySelectorAll('script[src], link[rel="stylesheet"]'), (e) => e.src || e.href),
  );
  return urls.filter((u) => statuses.get(u) !== 200).map((u) => `${u}: ${statuses.get(u) ?? 'not requested'}`);
}

/** What the page's Content-Security-Policy refused so far. */
export function cspViolations(page) {
  return page.evaluate(() => window.__cspViolations);
}

/** The WebSocket URLs the page tried so far. */
export function socketsOpened(page) {
  return page.evaluate(() => window.__sockets);
}

/** Console errors other than the failed requests a test provoked on purpose. */
export function unexpected(problems, ...allowedStatuses) {
  return problems.filter(
    (text) => !allowedStatuses.some((status) => text.includes(`the server responded with a status of ${status}`)),
  );
}

/** Polls `probe` until it returns a truthy value; fails with `describe()` after a while. */
export async function eventually(probe, describe, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) {
      return last;
    }
    if (Date.now() > deadline) {
      assert.fail(`timed out: ${typeof describe === 'function' ? await describe() : describe}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the element's text matches `pattern` (a RegExp or an exact string). */
export async function expectText(locator, pattern) {
  const matches = (text) => (pattern instanceof RegExp ? pattern.test(text) : text === pattern);
  let text = '';
  await eventually(
    async () => {
      text = (await locator.textContent()) ?? '';
      return matches(text);
    },
    () => `expected ${locator} to read ${pattern}, it reads ${JSON.stringify(text)}`,
  );
  return text;
}

/** What the fake SDK recorded. */
export function fake(page) {
  return page.evaluate(() => window.__fake.summary());
}

/** The sign-in page's form, filled and sent as a person would; resolves to the POST's response. */
export async function submitSignIn(page, agentId, password) {
  await page.getByLabel('Agent ID').fill(agentId);
  await page.getByLabel('Password').fill(password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/login' && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

/** The path (and query) the page shows now. */
export function location(page) {
  const url = new URL(page.url());
  return url.pathname + url.search;
}
