// The customer page and the agent dashboard in Chromium, on the real `make dev` stack (the
// DynamoDB emulator, every function behind `cargo lambda watch`, a fake Twilio REST API), with
// the Voice SDK replaced by a fake that emits the SDK's events. Tests run in file order and
// share the stack: tickets filed by the first tests are the ones the later ones call.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  DESKTOP,
  PHONE,
  cspViolations,
  eventually,
  socketsOpened,
  expectText,
  fake,
  launch,
  open,
  unexpected,
} from './support/browser.mjs';
import { ACCOUNT_SID, ROOT, TWILIO_NUMBER, startStack } from './support/stack.mjs';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const CUSTOMER_CALL = 'CA' + 'ab'.repeat(16);
const AGENT1_LEG = 'CA' + '01'.repeat(16);
const TEST_TIMEOUT = { timeout: 90 * 1000 };

let stack;
let browser;
const contexts = [];

before(
  async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack();
    browser = await launch();
  },
  { timeout: 12 * 60 * 1000 },
);

after(
  async () => {
    for (const context of contexts) {
      await context.close().catch(() => {});
    }
    await browser?.close().catch(() => {});
    // The stack's log (dev.sh, the functions' JSON logs) for whoever reads a failure.
    await stack?.stop(join(ARTIFACTS, 'browser-stack.log'));
  },
  { timeout: 60 * 1000 },
);

async function visit(path, options) {
  const opened = await open(browser, stack.base + path, options);
  contexts.push(opened.context);
  return opened;
}

async function ticketCount() {
  const response = await stack.get('/tickets?limit=100');
  assert.equal(response.status, 200);
  return JSON.parse(response.text).tickets.length;
}

async function fileTicket(page, { name, phone, description }) {
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Phone number').fill(phone);
  await page.getByLabel('What happened?').fill(description);
  await page.getByRole('button', { name: 'Send ticket' }).click();
}

/** The dashboard, online as `agent` (the fake registers when the test says Twilio did). */
async function onlineDashboard(agent, options) {
  const opened = await visit('/dashboard', options);
  const { page } = opened;
  await page.getByLabel('Agent').selectOption(agent);
  await page.getByRole('button', { name: 'Go online' }).click();
  await expectText(page.locator('#device-status'), 'Going online…');
  await eventually(async () => (await fake(page)).registerCalls === 1, 'device.register() was called');
  await page.evaluate(() => window.__fake.emitDevice('registered'));
  await expectText(page.locator('#device-status'), `Online as ${agent}: ready for calls.`);
  return opened;
}

/** The calls Warmline placed through the fake Twilio REST API (it may also warm up a connection). */
function dialedCalls() {
  return stack.fakeTwilio.requests.filter((request) => request.method === 'POST' && request.path.endsWith('/Calls.json'));
}

async function answerIncomingCall(page) {
  await page.evaluate((from) => window.__fake.incoming({ From: from, To: 'client:agent1' }), TWILIO_NUMBER);
  await expectText(page.locator('#call-status'), 'Incoming support call.');
  await page.getByRole('button', { name: 'Answer' }).click();
  await expectText(page.locator('#call-status'), 'In call with a customer.');
}

test('a ticket filed on the customer page appears at the top of the dashboard', TEST_TIMEOUT, async () => {
  const { page, problems } = await visit('/');
  const notice = page.locator('#ticket-notice');

  await fileTicket(page, { name: 'Ada Lovelace', phone: '+1 (555) 123-4567', description: 'My mallet broke.\nTwice!' });
  await expectText(notice, 'Thank you, Ada Lovelace. We have your ticket and will call you at +1 555 123 4567.');
  assert.equal(await page.getByLabel('Your name').inputValue(), '', 'the form is cleared for the next ticket');

  const markup = '<img src=x onerror="window.__pwned=1"> <b>bold</b>';
  await fileTicket(page, { name: 'Grace <b>Hopper</b>', phone: '+442079460958', description: markup });
  await expectText(notice, /^Thank you, Grace <b>Hopper<\/b>\. .* \+44 207 946 0958\.$/);

  const dashboard = await visit('/dashboard');
  const first = dashboard.page.locator('#tickets > li').first();
  await expectText(first.locator('.ticket-name'), 'Grace <b>Hopper</b>');
  await expectText(first.locator('.ticket-phone'), '+44 207 946 0958');
  await expectText(first.locator('.ticket-description'), markup);
  const second = dashboard.page.locator('#tickets > li').nth(1);
  await expectText(second.locator('.ticket-name'), 'Ada Lovelace');
  await expectText(second.locator('.ticket-phone'), '+1 555 123 4567');
  await expectText(second.locator('.ticket-description'), 'My mallet broke.\nTwice!');
  assert.equal(await dashboard.page.locator('#tickets img, #tickets b').count(), 0, 'data is text, never markup');
  assert.equal(await dashboard.page.evaluate(() => window.__pwned), undefined);

  assert.deepEqual(unexpected(problems), []);
  assert.deepEqual(unexpected(dashboard.problems), []);
});

test('invalid input shows a message at each field and stores nothing', TEST_TIMEOUT, async () => {
  const before = await ticketCount();
  const { page, problems } = await visit('/');

  await fileTicket(page, { name: '  ', phone: '555-1234', description: 'It rattles.' });
  await expectText(page.locator('#name-error'), 'Your name is required.');
  await expectText(page.locator('#phone_number-error'),
    'The phone number must be an E.164 phone number such as +15551234567.');
  assert.equal(await page.locator('#description-error').isHidden(), true);
  assert.equal(await page.getByLabel('Your name').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Phone number').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('What happened?').getAttribute('aria-invalid'), null);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'name', 'focus moves to the first problem');
  await expectText(page.locator('#ticket-notice'), 'Please correct the highlighted fields.');
  assert.equal(await page.getByLabel('What happened?').inputValue(), 'It rattles.', 'nothing typed is lost');
  assert.equal(await ticketCount(), before, 'nothing was stored');

  await page.getByLabel('Your name').fill('Bea');
  await page.getByLabel('Phone number').fill('+15559876543');
  await page.getByRole('button', { name: 'Send ticket' }).click();
  await expectText(page.locator('#ticket-notice'), /^Thank you, Bea\./);
  assert.equal(await page.locator('#name-error').isHidden(), true);
  assert.equal(await page.getByLabel('Phone number').getAttribute('aria-invalid'), null);
  assert.equal(await ticketCount(), before + 1);

  assert.deepEqual(unexpected(problems, 400), []);
});

test('"Call customer" calls the ticket\'s number and the agent can mute and hang up', TEST_TIMEOUT, async () => {
  const { page, problems } = await onlineDashboard('agent1');
  assert.deepEqual(
    await page.getByLabel('Agent').locator('option').allTextContents(),
    ['agent1', 'agent2'],
    'the roster is rendered into the page',
  );
  assert.equal(await page.getByLabel('Agent').isDisabled(), true, 'no identity switch while online');
  let recorded = await fake(page);
  assert.deepEqual(recorded.identities, ['agent1']);
  assert.deepEqual(recorded.options[0].codecPreferences, ['opus', 'pcmu']);

  const ticket = page.locator('#tickets > li').filter({ hasText: 'Ada Lovelace' });
  await ticket.getByRole('button', { name: 'Call customer' }).click();
  await eventually(async () => (await fake(page)).connects.length === 1, 'device.connect() was called');
  recorded = await fake(page);
  assert.deepEqual(recorded.connects, [{ identity: 'agent1', params: { phoneNumber: '+15551234567' } }]);
  await expectText(page.locator('#call-status'), 'Calling Ada Lovelace at +1 555 123 4567…');
  assert.equal(await page.getByRole('button', { name: 'Call customer' }).first().isDisabled(), true);

  await page.evaluate(() => window.__fake.emitCall('ringing'));
  await expectText(page.locator('#call-status'), 'Ringing Ada Lovelace at +1 555 123 4567…');
  await page.evaluate(() => window.__fake.emitCall('accept'));
  await expectText(page.locator('#call-status'), 'In call with Ada Lovelace at +1 555 123 4567.');
  await expectText(page.locator('#call-timer'), /^00:0[0-9]$/);

  const mute = page.getByRole('button', { name: 'Mute' });
  await mute.click();
  await expectText(mute, 'Unmute');
  assert.equal(await mute.getAttribute('aria-pressed'), 'true');
  await mute.click();
  await expectText(mute, 'Mute');

  await page.evaluate(() => window.__fake.emitDevice('tokenWillExpire'));
  await eventually(async () => (await fake(page)).tokenUpdates.length === 1, 'device.updateToken() was called');
  assert.deepEqual((await fake(page)).tokenUpdates, ['agent1'], 'a fresh token for the same agent');

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(page.locator('#call-status'), /^Call ended \(00:0[0-9]\)\.$/);
  assert.deepEqual((await fake(page)).callLogs, [['mute', 'unmute', 'disconnect']]);
  assert.equal(await page.getByRole('button', { name: 'Call customer' }).first().isEnabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Hang up' }).isHidden(), true);

  await page.getByRole('button', { name: 'Go offline' }).click();
  await expectText(page.locator('#device-status'), 'Offline: you will not receive calls.');
  assert.deepEqual((await fake(page)).destroyed, [true]);
  assert.equal(await page.getByLabel('Agent').isEnabled(), true);

  assert.deepEqual(unexpected(problems), []);
});

test('"Call support" connects with no params and shows the call as it goes', TEST_TIMEOUT, async () => {
  const { page, problems } = await visit('/');
  const status = page.locator('#call-status');
  assert.deepEqual((await fake(page)).identities, [], 'no device before the click');
  await expectText(status, 'Not in a call.');

  await page.getByRole('button', { name: 'Call support' }).click();
  await eventually(async () => (await fake(page)).connects.length === 1, 'device.connect() was called');
  const recorded = await fake(page);
  assert.equal(recorded.connects[0].params, null, 'device.connect() without params');
  assert.match(recorded.connects[0].identity, /^customer_[0-9a-f]{16}$/);
  assert.deepEqual(recorded.options[0], { codecPreferences: ['opus', 'pcmu'] });
  await expectText(status, 'Connecting…');

  await page.evaluate(() => window.__fake.emitCall('ringing'));
  await expectText(status, 'Ringing…');
  await page.evaluate(() => window.__fake.emitCall('accept'));
  await expectText(status, 'Connected. Please stay on the line.');
  await expectText(page.locator('#call-timer'), '00:01'); // the timer runs
  assert.equal(await page.getByRole('button', { name: 'Call support' }).isHidden(), true);

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(status, /^Call ended \(00:0[0-9]\)\.$/);
  assert.equal(await page.getByRole('button', { name: 'Call support' }).isVisible(), true);

  // A second call reuses the device; an SDK error becomes words a customer can act on.
  await page.getByRole('button', { name: 'Call support' }).click();
  await eventually(async () => (await fake(page)).connects.length === 2, 'a second device.connect()');
  await page.evaluate(() => window.__fake.emitCall('error', { code: 31005, message: 'gateway hung up' }));
  await expectText(status, /^The connection to the calling service was lost\./);
  await page.evaluate(() => window.__fake.emitCall('disconnect'));
  await expectText(status, 'Call ended.');
  await page.evaluate(() => window.__fake.emitDevice('tokenWillExpire'));
  await eventually(async () => (await fake(page)).tokenUpdates.length === 1, 'device.updateToken() was called');
  const after = await fake(page);
  assert.equal(after.identities.length, 1, 'one device for both calls');
  assert.match(after.tokenUpdates[0], /^customer_/);

  assert.deepEqual(unexpected(problems), []);
});

test('an incoming call can be answered, rejected or missed, and the status follows', TEST_TIMEOUT, async () => {
  const { page, problems } = await onlineDashboard('agent1');
  const status = page.locator('#call-status');

  await answerIncomingCall(page);
  assert.equal(await page.getByRole('button', { name: 'Answer' }).isHidden(), true);
  await expectText(page.locator('#call-timer'), /^00:0[0-9]$/);
  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(status, /^Call ended \(00:0[0-9]\)\.$/);

  await page.evaluate(() => window.__fake.incoming({}));
  await expectText(status, 'Incoming support call.');
  await page.getByRole('button', { name: 'Reject' }).click();
  await expectText(status, 'Call rejected.');

  await page.evaluate(() => window.__fake.incoming({}));
  await expectText(status, 'Incoming support call.');
  await page.evaluate(() => window.__fake.emitCall('cancel'));
  await expectText(status, 'Missed call: the caller hung up.');
  assert.equal(await page.getByRole('button', { name: 'Answer' }).isHidden(), true);

  assert.deepEqual((await fake(page)).callLogs, [['accept', 'disconnect'], ['reject'], []]);

  await page.evaluate(() => window.__fake.emitDevice('error', { code: 31205, message: 'JWT token expired' }));
  await expectText(
    page.locator('#device-status'),
    'The calling session expired. Reload the page and try again. (error 31205)',
  );

  assert.deepEqual(unexpected(problems), []);
});

test('"Dial agent2 in" answers 409 outside a conference, then dials agent 2 into it', TEST_TIMEOUT, async () => {
  const { page, problems } = await onlineDashboard('agent1');
  const transfer = page.locator('#transfer-status');
  await answerIncomingCall(page);

  // The browser call above is the fake's: Warmline has no conference for agent1 yet.
  await page.getByRole('button', { name: 'Dial agent2 in' }).click();
  await expectText(transfer, 'Could not dial agent2 in: agent1 is not in a call right now.');
  assert.deepEqual(dialedCalls(), [], 'nothing was dialed');

  // What Twilio does when a customer calls and agent 1 answers: two signed webhooks.
  const dialed = await stack.webhook('/conference/connect/client', {
    CallSid: CUSTOMER_CALL,
    From: '+15557654321',
    To: TWILIO_NUMBER,
    Direction: 'inbound',
  });
  assert.equal(dialed.status, 200);
  assert.match(dialed.text, /<Conference /);
  const joined = await stack.webhook(`/conference/${CUSTOMER_CALL}/connect/agent1`, { CallSid: AGENT1_LEG });
  assert.equal(joined.status, 200);
  assert.match(joined.text, new RegExp(`>${CUSTOMER_CALL}</Conference>`));

  await page.getByRole('button', { name: 'Dial agent2 in' }).click();
  await expectText(transfer, /^agent2 is being dialed into this call\./);
  const calls = dialedCalls();
  assert.deepEqual(
    calls.map((r) => [r.path, r.form.To]),
    [
      [`/2010-04-01/Accounts/${ACCOUNT_SID}/Calls.json`, ['client:agent1']],
      [`/2010-04-01/Accounts/${ACCOUNT_SID}/Calls.json`, ['client:agent2']],
    ],
  );
  assert.deepEqual(calls[1].form, {
    To: ['client:agent2'],
    From: [TWILIO_NUMBER],
    Url: [`${stack.base}/conference/${CUSTOMER_CALL}/connect/agent2`],
    // Rings for 20 s and reports how it ended, so an unanswered colleague is noticed.
    Timeout: ['20'],
    StatusCallback: [`${stack.base}/conference/${CUSTOMER_CALL}/agents/agent2/status`],
    StatusCallbackEvent: ['completed'],
    StatusCallbackMethod: ['POST'],
  });

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(page.locator('#call-status'), /^Call ended/);
  assert.deepEqual(unexpected(problems, 409), []);
});

test('the pages render without console errors at desktop and phone widths', TEST_TIMEOUT, async () => {
  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const customer = await visit('/', { viewport });
    await customer.page.getByRole('button', { name: 'Call support' }).waitFor();
    await assertFitsWidth(customer.page, viewport);
    await customer.page.screenshot({ path: join(ARTIFACTS, `customer-${label}.png`), fullPage: true });
    await customer.page.getByRole('button', { name: 'Call support' }).click();
    await eventually(async () => (await fake(customer.page)).connects.length === 1, 'device.connect() was called');
    await customer.page.evaluate(() => window.__fake.emitCall('accept'));
    await customer.page.getByRole('button', { name: 'Hang up' }).waitFor();
    await assertFitsWidth(customer.page, viewport);
    await customer.page.screenshot({ path: join(ARTIFACTS, `customer-${label}-in-call.png`), fullPage: true });
    assert.deepEqual(customer.problems, []);
    assert.deepEqual(await cspViolations(customer.page), []);

    const dashboard = await onlineDashboard('agent1', { viewport });
    await dashboard.page.locator('#tickets > li').first().waitFor();
    await answerIncomingCall(dashboard.page);
    await assertFitsWidth(dashboard.page, viewport);
    await dashboard.page.screenshot({ path: join(ARTIFACTS, `dashboard-${label}.png`), fullPage: true });
    assert.deepEqual(dashboard.problems, []);
    assert.deepEqual(await cspViolations(dashboard.page), []);
    assert.deepEqual([...customer.external, ...dashboard.external], [], 'with the fake SDK nothing leaves the origin');
  }
});

test('the real Voice SDK is served by us and reaches Twilio within the CSP', TEST_TIMEOUT, async () => {
  const { page, problems, response, external } = await visit('/', { realSdk: true });
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self';/);
  const sdkUrl = await page.locator('script[src*="/static/twilio.min."]').getAttribute('src');
  assert.match(sdkUrl, /^\/static\/twilio\.min\.[0-9a-f]{16}\.js$/);

  const sdk = await stack.get(sdkUrl);
  assert.equal(sdk.status, 200);
  assert.equal(sdk.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(sdk.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.ok(sdk.text.length > 200_000, 'the bundled SDK, not the stand-in for builds without npm ci');

  // A customer's call with the real SDK. Its signalling socket fails to resolve (see launch())
  // and its HTTPS requests are answered by the test (see open()): what matters here is that the
  // CSP lets them out.
  await page.getByRole('button', { name: 'Call support' }).click();
  let sockets = [];
  await eventually(
    async () => {
      sockets = await socketsOpened(page);
      return sockets.some((url) => /^wss:\/\/voice-js\.[a-z0-9-]+\.twilio\.com\/signal/.test(url));
    },
    () => `the SDK opened its signalling socket (it tried ${JSON.stringify(sockets)})`,
  );
  await page.waitForTimeout(1000); // let the ringtone and insights requests follow
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(problems.filter((text) => /Content Security Policy/i.test(text)), []);
  const contacted = [...sockets, ...external];
  assert.ok(
    contacted.every((url) => new URL(url).hostname.endsWith('.twilio.com')),
    `the SDK talks only to Twilio: ${JSON.stringify(contacted)}`,
  );

  // And the policy does refuse what it does not list (so the empty list above means something).
  await page.evaluate(() => fetch('https://example.com/elsewhere').catch(() => {}));
  await eventually(
    async () => (await cspViolations(page)).includes('connect-src https://example.com/elsewhere'),
    'a request to a host the CSP does not list is refused',
  );
});

async function assertFitsWidth(page, viewport) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= viewport.width, `no sideways scrolling at ${viewport.width}px (page is ${width}px wide)`);
}
