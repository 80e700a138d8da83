// The customer page, the sign-in page and the agent dashboard in Chromium, on the real
// `make dev` stack (the DynamoDB emulator, every function behind `cargo lambda watch`, a fake
// Twilio REST API, the roster's agents seeded with one known password), with the Voice SDK
// replaced by a fake that emits the SDK's events. Tests run in file order and share the stack:
// tickets filed by the first tests are the ones the later ones call, and the test that disables
// an agent comes last among those that sign in. An agent's presence is a 90 s lease the server
// keeps: each test that needs one says it first, closes its pages when it ends (so no dashboard
// renews it behind the next test's back), and ends the calls it started.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import {
  DESKTOP,
  PHONE,
  cspViolations,
  eventually,
  socketsOpened,
  expectText,
  fake,
  journalText,
  launch,
  location,
  note,
  open,
  reloadIfAssetsFailed,
  submitSignIn,
  unexpected,
} from './support/browser.mjs';
import {
  ACCOUNT_SID,
  AGENT_PASSWORD,
  API_KEY,
  API_SECRET,
  RECORDING_BYTES,
  ROOT,
  TWILIO_NUMBER,
  startStack,
} from './support/stack.mjs';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const CUSTOMER_CALL = 'CA' + 'ab'.repeat(16);
const AGENT1_LEG = 'CA' + '01'.repeat(16);
const SECOND_CUSTOMER_CALL = 'CA' + 'cd'.repeat(16);
const MISSED_CALL = 'CA' + '34'.repeat(16);
const PHONE_VOICEMAIL_CALL = 'CA' + '56'.repeat(16);
const BROWSER_VOICEMAIL_CALL = 'CA' + '78'.repeat(16);
const WALLBOARD_CALL = 'CA' + '9a'.repeat(16);
const SECOND_WALLBOARD_CALL = 'CA' + 'bc'.repeat(16);
const SCREEN_POP_CALL = 'CA' + 'de'.repeat(16);
const CONSULT_CALL = 'CA' + 'e1'.repeat(16);
const COLD_TRANSFER_CALL = 'CA' + 'e2'.repeat(16);
const INTRODUCED_CALL = 'CA' + 'e4'.repeat(16);
const AGENT_OUTBOUND_LEG = 'CA' + 'f1'.repeat(16);
// The open, visible dashboard asks for the wallboard this often (dashboard.js WALLBOARD_MS).
const WALLBOARD_MS = 5 * 1000;
// The dashboard renews the agent's presence this often (dashboard.js RENEW_MS).
const RENEW_MS = 30 * 1000;
const LOGIN_FOR_DASHBOARD = '/login?next=%2Fdashboard';
const WRONG_PASSWORD_MESSAGE = 'Unknown agent or wrong password.';
const SESSION_ENDED_MESSAGE = 'Your session has ended. Please sign in again.';
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

beforeEach((t) => note(`=== ${t.name}`));

// A test's pages go when it ends (an open dashboard keeps renewing its agent's presence), and
// so do the calls it started, even when it failed midway: a caller left in line would be
// offered to the next test's available agent.
const callsStarted = new Set();
afterEach(async () => {
  for (const context of contexts.splice(0)) {
    await context.close().catch(() => {});
  }
  for (const customer of callsStarted) {
    await callEnds(customer).catch((error) => note(`could not end ${customer}: ${error.message}`));
  }
  callsStarted.clear();
});

after(
  async () => {
    for (const context of contexts) {
      await context.close().catch(() => {});
    }
    await browser?.close().catch(() => {});
    writeFileSync(join(ARTIFACTS, 'browser-journal.log'), journalText());
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

// Sessions for the tests' own requests as an agent (not a page's); renewed when a test ends
// that agent's sessions.
const apiCookies = new Map();

/** `send(cookie)` with a session of `agent`, signing in again once if it has ended. */
async function asAgent(agent, send) {
  for (let attempt = 0; ; attempt += 1) {
    if (!apiCookies.has(agent)) {
      apiCookies.set(agent, await stack.sessionOf(agent));
    }
    const response = await send(apiCookies.get(agent));
    if (response.status !== 401 || attempt > 0) {
      return response;
    }
    apiCookies.delete(agent);
  }
}

async function allTickets() {
  const response = await asAgent('agent1', (cookie) => stack.get('/tickets?limit=100', { cookie }));
  assert.equal(response.status, 200);
  return JSON.parse(response.text).tickets;
}

async function ticketCount() {
  return (await allTickets()).length;
}

/** `agent` says `status` as their dashboard would (`PUT /presence`); the server's answer. */
async function setPresence(agent, status) {
  const response = await asAgent(agent, (cookie) => stack.putJson('/presence', { status }, { cookie }));
  assert.equal(response.status, 200, `${agent} says ${status}: ${response.text}`);
  return JSON.parse(response.text);
}

/** What the server says `agent` is (`GET /presence`). */
async function serverPresence(agent) {
  const response = await asAgent(agent, (cookie) => stack.get('/presence', { cookie }));
  assert.equal(response.status, 200, response.text);
  return JSON.parse(response.text);
}

/** The session cookie a browser context holds, if any. */
async function sessionCookie(context) {
  const cookies = await context.cookies();
  return cookies.find((cookie) => /session$/.test(cookie.name)) || null;
}

/** `Cookie:` header value for the context's session, for requests made by the test itself. */
async function cookieHeader(context) {
  const cookie = await sessionCookie(context);
  assert.ok(cookie, 'the context holds a session cookie');
  return `${cookie.name}=${cookie.value}`;
}

/**
 * The dashboard signed in as `agent` the way an agent gets there: `/dashboard` sends them to
 * the sign-in page, and signing in sends them back.
 */
async function signedInDashboard(agent, options) {
  const opened = await visit('/dashboard', options);
  const { page } = opened;
  assert.equal(location(page), LOGIN_FOR_DASHBOARD, 'an agent without a session is asked to sign in');
  const response = await submitSignIn(page, agent, AGENT_PASSWORD);
  assert.equal(response.status(), 303, `${agent} signs in`);
  await arriveAtDashboard(opened);
  await expectText(page.locator('#agent-id'), agent);
  return opened;
}

/** After a sign-in that sends the browser to the dashboard: there, with its scripts running. */
async function arriveAtDashboard(opened) {
  await opened.page.waitForURL((url) => url.pathname === '/dashboard');
  // The agent's id is in the HTML from the server; the buttons work only once the deferred
  // scripts have run, which 'load' guarantees (a click before that is lost).
  await opened.page.waitForLoadState('load');
  await reloadIfAssetsFailed(opened);
}

/** Every `POST /token` answer the page received, as `identity` strings. */
function recordTokens(page) {
  const identities = [];
  page.on('response', async (response) => {
    if (new URL(response.url()).pathname === '/token') {
      try {
        identities.push((await response.json()).identity ?? `status ${response.status()}`);
      } catch (_) {
        identities.push(`status ${response.status()}`);
      }
    }
  });
  return identities;
}

async function fileTicket(page, { name, phone, description }) {
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Phone number').fill(phone);
  await page.getByLabel('What happened?').fill(description);
  await page.getByRole('button', { name: 'Send ticket' }).click();
}

/**
 * The agent clicks "Available": the click makes and registers the device (the fake registers
 * when the test says Twilio did), and only then does the page say so to the server, whose
 * answer (`expected`) the status shows.
 */
async function chooseAvailable(page, expected = 'Available') {
  const name = (await page.locator('#agent-name').textContent()).trim();
  const registered = (await fake(page)).registerCalls;
  const said = page.waitForRequest((r) => new URL(r.url()).pathname === '/presence' && r.method() === 'PUT');
  await page.getByRole('button', { name: 'Available' }).click();
  await expectText(page.locator('#device-status'), 'Connecting your calling device…');
  await eventually(async () => (await fake(page)).registerCalls === registered + 1, 'device.register() was called');
  await page.evaluate(() => window.__fake.emitDevice('registered'));
  await expectText(page.locator('#device-status'), `Ready for calls as ${name}.`);
  assert.deepEqual(JSON.parse((await said).postData()), { status: 'available' });
  await expectText(page.locator('#presence-status'), expected);
  assert.equal(await page.getByRole('button', { name: 'Available' }).getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByRole('button', { name: 'Away' }).getAttribute('aria-pressed'), 'false');
}

/** The dashboard, signed in as `agent`, who has just said they are available. */
async function availableDashboard(agent, options) {
  await setPresence(agent, 'away'); // whatever an earlier test left, the click below changes it
  const opened = await signedInDashboard(agent, options);
  await expectText(opened.page.locator('#presence-status'), 'Away');
  await chooseAvailable(opened.page);
  return opened;
}

/** Every `/presence` request the page makes from now on: `GET`, or `PUT <status>`. */
function recordPresence(page) {
  const seen = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/presence') {
      seen.push(request.method() === 'PUT' ? `PUT ${JSON.parse(request.postData()).status}` : request.method());
    }
  });
  return seen;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The calls Warmline placed through the fake Twilio REST API (it may also warm up a connection). */
function dialedCalls() {
  return stack.fakeTwilio.requests.filter((request) => request.method === 'POST' && request.path.endsWith('/Calls.json'));
}

/** The calls that rang `agent` for the caller `customer`, oldest first; `sid` is each one's CallSid. */
function ringsFor(customer, agent) {
  return dialedCalls().filter(
    (r) => r.form.To?.[0].split('?')[0] === `client:${agent}` && r.form.Url?.[0] === `${stack.base}/conference/${customer}/connect/${agent}`,
  );
}

/** Twilio rings the agent's browser for `ring`: the custom parameters of its `To` (a query
 * string, `client:agent1?conference=…`) are the incoming call's `customParameters`. */
async function ringArrives(page, ring) {
  const [to, query] = ring.form.To[0].split('?');
  const customParameters = Object.fromEntries(new URLSearchParams(query));
  await page.evaluate(
    ([parameters, custom]) => window.__fake.incoming(parameters, custom),
    [{ From: TWILIO_NUMBER, To: to }, customParameters],
  );
}

/** Twilio's id (CF…) of the conference named after `customer`. */
function conferenceSid(customer) {
  return 'CF' + customer.slice(2);
}

/** A customer calls the support number (`From` a phone number): in line, in their conference. */
async function callerArrives(customer, from) {
  callsStarted.add(customer);
  const response = await stack.webhook('/conference/connect/client', {
    AccountSid: ACCOUNT_SID,
    CallSid: customer,
    From: from,
    To: TWILIO_NUMBER,
    Direction: 'inbound',
  });
  assert.equal(response.status, 200, response.text);
  assert.match(response.text, new RegExp(`>${customer}</Conference>`));
}

/**
 * A status callback of the customer's conference, as Twilio sends it; `run` is Twilio's id of the
 * conference (a customer back in line is in another conference of the same name).
 */
async function conferenceEvent(customer, name, participant, run = conferenceSid(customer)) {
  const params = {
    AccountSid: ACCOUNT_SID,
    ConferenceSid: run,
    FriendlyName: customer,
    StatusCallbackEvent: name,
    SequenceNumber: '1',
  };
  if (participant) {
    Object.assign(params, { CallSid: participant, EndConferenceOnExit: String(participant === customer) });
  }
  const response = await stack.webhook(`/conference/${customer}/events`, params);
  assert.equal(response.status, 200, `${name}: ${response.text}`);
}

/** The customer is in their conference: the router offers them to an available agent. */
const callerJoins = (customer) => conferenceEvent(customer, 'participant-join', customer);

/** The customer's call is over (the test's clean-up: nobody is offered them afterwards). */
const callEnds = (customer) => conferenceEvent(customer, 'conference-end');

/** How the call that rang `agent` for `customer` ended, as Twilio reports it. */
async function agentCallStatus(customer, agent, call, status) {
  const response = await stack.webhook(`/conference/${customer}/agents/${agent}/status`, {
    AccountSid: ACCOUNT_SID,
    CallSid: call,
    CallStatus: status,
    Direction: 'outbound-api',
    From: TWILIO_NUMBER,
    To: `client:${agent}`,
  });
  assert.equal(response.status, 200, response.text);
}

/** Twilio has the recording of the message `customer` left. */
async function recordingCompleted(customer, recording, seconds) {
  const response = await stack.webhook(`/voicemail/${customer}/recording`, {
    AccountSid: ACCOUNT_SID,
    CallSid: customer,
    RecordingSid: recording,
    RecordingUrl: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Recordings/${recording}`,
    RecordingStatus: 'completed',
    RecordingDuration: String(seconds),
    RecordingChannels: '1',
    RecordingSource: 'RecordVerb',
  });
  assert.equal(response.status, 200, response.text);
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

  const dashboard = await signedInDashboard('agent1');
  const first = dashboard.page.locator('#tickets > li').first();
  await expectText(first.locator('.ticket-name'), 'Grace <b>Hopper</b>');
  await expectText(first.locator('.ticket-phone'), '+44 207 946 0958');
  await expectText(first.locator('.ticket-description'), markup);
  const second = dashboard.page.locator('#tickets > li').nth(1);
  await expectText(second.locator('.ticket-name'), 'Ada Lovelace');
  await expectText(second.locator('.ticket-phone'), '+1 555 123 4567');
  await expectText(second.locator('.ticket-description'), 'My mallet broke.\nTwice!');
  // The UK is outside DIAL_COUNTRIES (by default the support number's US): the ticket is kept,
  // but nothing offers to call it back.
  await expectText(first.locator('.ticket-outside'), 'Outside the allowed countries: this number cannot be called back.');
  assert.equal(await first.getByRole('button').count(), 0, 'no "Call customer" outside the allowed countries');
  assert.equal(await second.locator('.ticket-outside').count(), 0);
  assert.equal(await second.getByRole('button', { name: /^Call customer Ada Lovelace/ }).count(), 1);
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
  const { page, problems } = await availableDashboard('agent1');
  // The one list of agents is of colleagues available to consult or transfer to, from the
  // wallboard; nothing lets the page choose who the agent is.
  const pickers = page.locator('select:not(#colleague-select), #agent, option:not(#colleague-select option)');
  assert.equal(await pickers.count(), 0, 'no agent picker: the agent is who signed in');
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

  await page.getByRole('button', { name: 'Away' }).click();
  await expectText(page.locator('#presence-status'), 'Away');
  await expectText(page.locator('#device-status'), 'Calls ring here only while you are available.');
  recorded = await fake(page);
  assert.deepEqual(recorded.states, ['unregistered'], 'no more incoming calls here');
  assert.deepEqual(recorded.destroyed, [false], 'the device stays, for calling customers back');

  assert.deepEqual(unexpected(problems), []);
});

test('a customer the agent calls is in the agent\'s conference: rings, then can be held and resumed', TEST_TIMEOUT, async () => {
  const { page, problems } = await availableDashboard('agent1');
  const ticket = page.locator('#tickets > li').filter({ hasText: 'Ada Lovelace' });
  await ticket.getByRole('button', { name: 'Call customer' }).click();
  await eventually(async () => (await fake(page)).connects.length === 1, 'device.connect() was called');
  const [connected] = (await fake(page)).connects;

  // Twilio brings the agent's call to the agents' app: Warmline calls the customer and puts the
  // agent in the conference named after that call.
  const before = dialedCalls().length;
  const placed = await stack.webhook('/call/agent', {
    AccountSid: ACCOUNT_SID,
    ApplicationSid: 'AP' + '0'.repeat(31) + '1',
    CallSid: AGENT_OUTBOUND_LEG,
    From: `client:${connected.identity}`,
    Direction: 'inbound',
    ...connected.params,
  });
  assert.equal(placed.status, 200, placed.text);
  const [dial] = dialedCalls().slice(before);
  assert.ok(dial, 'Warmline called the customer');
  assert.deepEqual([dial.form.To, dial.form.From, dial.form.Url], [['+15551234567'], [TWILIO_NUMBER], [`${stack.base}/call/customer/agent1`]]);
  const customer = dial.sid;
  callsStarted.add(customer);
  assert.match(placed.text, new RegExp(`>${customer}</Conference>`));
  await page.evaluate(() => window.__fake.emitCall('accept'));
  const participants = page.locator('#call-participants');
  await expectItems(participants, ['Customer: ringing', 'agent1 (you): talking']);
  assert.equal(await page.getByRole('button', { name: 'Hold' }).isDisabled(), true, 'nobody to hold yet');
  await expectText(page.locator('#caller-who'), '+1 555 123 4567');
  assert.equal(await page.locator('#caller-wait').textContent(), '', 'they never waited in line');

  // The customer picks up and joins; the agent holds them and takes them back.
  const answered = await stack.webhook('/call/customer/agent1', { AccountSid: ACCOUNT_SID, CallSid: customer, CallStatus: 'in-progress' });
  assert.equal(answered.status, 200, answered.text);
  await conferenceEvent(customer, 'participant-join', customer);
  await expectItems(participants, ['Customer: talking', 'agent1 (you): talking']);
  await page.getByRole('button', { name: 'Hold' }).click();
  await expectItems(participants, ['Customer: on hold', 'agent1 (you): talking']);
  await page.getByRole('button', { name: 'Resume' }).click();
  await expectItems(participants, ['Customer: talking', 'agent1 (you): talking']);
  assert.deepEqual(participantChanges(customer), ['hold', 'resume']);

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(page.locator('#call-status'), /^Call ended/);
  await callEnds(customer);
  callsStarted.delete(customer);
  assert.equal((await serverPresence('agent1')).status, 'available', 'free again');
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
  const { page, problems } = await availableDashboard('agent1');
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

  // A colleague's hand-over says so on the ring (its custom parameters, as Warmline sets them).
  await page.evaluate(() => window.__fake.incoming({}, { transferFrom: 'agent2', transferKind: 'cold' }));
  await expectText(status, 'agent2 is transferring their call to you.');
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

test('"Dial a colleague in" answers 409 outside a conference, then dials an available colleague in', TEST_TIMEOUT, async () => {
  await setPresence('agent2', 'away'); // agent1, available first, is offered the caller below
  const { page, problems } = await availableDashboard('agent1');
  const transfer = page.locator('#transfer-status');
  await answerIncomingCall(page);

  // The browser call above is the fake's: Warmline has no conference for agent1 yet.
  const before = dialedCalls().length;
  await page.getByRole('button', { name: 'Dial a colleague in' }).click();
  await expectText(transfer, 'Could not dial a colleague in: agent1 is not in a call right now.');
  assert.equal(dialedCalls().length, before, 'nothing was dialed');

  // What Twilio does when a customer calls: the router rings agent1, who answers.
  await callerArrives(CUSTOMER_CALL, '+15557654321');
  await callerJoins(CUSTOMER_CALL);
  const rings = ringsFor(CUSTOMER_CALL, 'agent1');
  assert.equal(rings.length, 1, 'the available agent is rung');
  const joined = await stack.webhook(`/conference/${CUSTOMER_CALL}/connect/agent1`, {
    AccountSid: ACCOUNT_SID,
    CallSid: rings[0].sid,
    From: TWILIO_NUMBER,
    To: 'client:agent1',
    Direction: 'outbound-api',
  });
  assert.equal(joined.status, 200);
  assert.match(joined.text, new RegExp(`>${CUSTOMER_CALL}</Conference>`));

  // Nobody else is available yet: the server says so.
  await page.getByRole('button', { name: 'Dial a colleague in' }).click();
  await expectText(transfer, 'Could not dial a colleague in: no colleague is available.');

  await setPresence('agent2', 'available');
  await page.getByRole('button', { name: 'Dial a colleague in' }).click();
  await expectText(transfer, /^agent2 is being dialed into this call\./);
  const calls = dialedCalls().slice(before);
  assert.deepEqual(
    calls.map((r) => [r.path, r.form.To]),
    [
      [`/2010-04-01/Accounts/${ACCOUNT_SID}/Calls.json`, [`client:agent1?conference=${CUSTOMER_CALL}`]],
      [
        `/2010-04-01/Accounts/${ACCOUNT_SID}/Calls.json`,
        [`client:agent2?conference=${CUSTOMER_CALL}&transferFrom=agent1&transferKind=warm`],
      ],
    ],
  );
  assert.deepEqual(calls[1].form, {
    To: [`client:agent2?conference=${CUSTOMER_CALL}&transferFrom=agent1&transferKind=warm`],
    From: [TWILIO_NUMBER],
    Url: [`${stack.base}/conference/${CUSTOMER_CALL}/connect/agent2`],
    // Rings for 20 s and reports how it ended, so an unanswered colleague is noticed.
    Timeout: ['20'],
    StatusCallback: [`${stack.base}/conference/${CUSTOMER_CALL}/agents/agent2/status`],
    StatusCallbackEvent: ['completed'],
    StatusCallbackMethod: ['POST'],
  });
  assert.equal((await serverPresence('agent2')).status, 'busy', 'agent2 rings for the call');

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(page.locator('#call-status'), /^Call ended/);
  await callEnds(CUSTOMER_CALL);
  assert.equal((await serverPresence('agent2')).status, 'available', 'the end of the call frees agent2');
  await setPresence('agent2', 'away');
  assert.deepEqual(unexpected(problems, 409), []);
});

test('the presence switch: Available registers the device and says so, Away unregisters it', TEST_TIMEOUT, async () => {
  await setPresence('agent1', 'away');
  const opened = await signedInDashboard('agent1');
  const { page, problems } = opened;
  const status = page.locator('#presence-status');
  const available = page.getByRole('button', { name: 'Available' });
  const away = page.getByRole('button', { name: 'Away' });
  const seen = recordPresence(page);

  // The page shows what the server says; the switch is a group of two toggle buttons.
  await expectText(status, 'Away');
  await expectText(page.locator('#presence-since'), /^since \d{1,2}:\d{2}/);
  assert.equal(await away.getAttribute('aria-pressed'), 'true');
  assert.equal(await available.getAttribute('aria-pressed'), 'false');
  assert.equal(await page.getByRole('group', { name: 'Set your status' }).count(), 1);
  assert.deepEqual((await fake(page)).identities, [], 'no device before the agent chooses Available');

  // From the keyboard: the device first, and only once it is registered, the server is told
  // (it may offer a caller at once).
  await available.focus();
  await page.keyboard.press('Enter');
  await eventually(async () => (await fake(page)).registerCalls === 1, 'device.register() was called');
  await expectText(page.locator('#device-status'), 'Connecting your calling device…');
  await sleep(300);
  assert.deepEqual(seen, [], 'nothing is said before the device can ring');
  const said = page.waitForRequest((r) => new URL(r.url()).pathname === '/presence' && r.method() === 'PUT');
  await page.evaluate(() => window.__fake.emitDevice('registered'));
  const request = await said;
  assert.deepEqual(JSON.parse(request.postData()), { status: 'available' });
  assert.equal(request.headers()['content-type'], 'application/json');
  await expectText(status, 'Available');
  await expectText(page.locator('#device-status'), 'Ready for calls as Agent 1.');
  assert.equal(await available.getAttribute('aria-pressed'), 'true');
  assert.equal(await away.getAttribute('aria-pressed'), 'false');
  assert.deepEqual((await fake(page)).identities, ['agent1']);
  assert.deepEqual((await fake(page)).states, ['registered']);
  const server = await serverPresence('agent1');
  assert.equal(server.status, 'available');
  assert.equal(server.missed_call_at, null);

  await away.click();
  await expectText(status, 'Away');
  assert.equal(seen.at(-1), 'PUT away');
  assert.equal(await away.getAttribute('aria-pressed'), 'true');
  let recorded = await fake(page);
  assert.deepEqual(recorded.states, ['unregistered']);
  assert.equal(recorded.unregisterCalls, 1);
  assert.equal((await serverPresence('agent1')).status, 'away');

  // Available again: the same device registers again.
  await chooseAvailable(page);
  assert.deepEqual((await fake(page)).identities, ['agent1']);

  // A reload shows what the server says, and an available agent's device registers at once.
  await reloadIfAssetsFailed(opened, await page.reload());
  await expectText(status, 'Available');
  assert.equal(await available.getAttribute('aria-pressed'), 'true');
  await eventually(async () => (await fake(page)).registerCalls === 1, 'the new page registered its device');
  await page.evaluate(() => window.__fake.emitDevice('registered'));
  await expectText(page.locator('#device-status'), 'Ready for calls as Agent 1.');
  await away.click();
  await expectText(status, 'Away');
  await reloadIfAssetsFailed(opened, await page.reload());
  await expectText(status, 'Away');
  assert.equal(await away.getAttribute('aria-pressed'), 'true');
  await sleep(300);
  recorded = await fake(page);
  assert.deepEqual([recorded.identities, recorded.registerCalls], [[], 0], 'away: no device');
  // Somebody else (a second dashboard, say) makes them available: the page follows at its next look.
  assert.equal((await setPresence('agent1', 'available')).status, 'available');
  await reloadIfAssetsFailed(opened, await page.reload());
  await expectText(status, 'Available');

  await page.getByRole('button', { name: 'Away' }).click();
  await expectText(status, 'Away');
  assert.deepEqual(unexpected(problems), []);
});

test('the open dashboard renews the presence every 30 s, and stops when the session ends', TEST_TIMEOUT, async () => {
  await setPresence('agent1', 'away');
  const { page, context, problems } = await signedInDashboard('agent1', { clock: true });
  const status = page.locator('#presence-status');
  await expectText(status, 'Away');
  const seen = recordPresence(page);
  await chooseAvailable(page);
  const since = (await serverPresence('agent1')).since;
  assert.deepEqual(seen, ['PUT available']);

  // The page's clock runs in real time too: a few seconds' slack for a loaded machine.
  await page.clock.fastForward(RENEW_MS - 5000);
  await sleep(300);
  assert.deepEqual(seen, ['PUT available'], 'nothing before 30 s');
  await page.clock.fastForward(5000);
  // It looks first (a missed call would have set the agent away), then says it again.
  await eventually(() => seen.length === 3, () => `renewed (${JSON.stringify(seen)})`);
  assert.deepEqual(seen, ['PUT available', 'GET', 'PUT available']);
  await expectText(status, 'Available');
  assert.equal((await serverPresence('agent1')).since, since, 'a renewal is no change');

  await page.getByRole('button', { name: 'Away' }).click();
  await expectText(status, 'Away');
  await page.clock.fastForward(RENEW_MS);
  await eventually(() => seen.length === 5, () => `renewed (${JSON.stringify(seen)})`);
  assert.deepEqual(seen.slice(3), ['PUT away', 'PUT away'], 'away is renewed as away');
  await page.clock.fastForward(RENEW_MS);
  await eventually(() => seen.length === 6, () => `renewed (${JSON.stringify(seen)})`);

  // Signed out elsewhere: the next request (the renewal, or the wallboard's, whichever comes
  // first) is refused, and the page goes to sign in, renewing nothing more.
  const out = await stack.postForm('/logout', {}, { cookie: await cookieHeader(context) });
  assert.equal(out.status, 303);
  await page.clock.fastForward(RENEW_MS);
  await page.waitForURL((url) => url.pathname + url.search === LOGIN_FOR_DASHBOARD);
  await expectText(page.locator('#login-error'), SESSION_ENDED_MESSAGE);
  const refused = seen.slice(6);
  assert.ok(refused.length <= 1 && refused.every((request) => request === 'PUT away'), JSON.stringify(refused));
  await page.clock.fastForward(RENEW_MS);
  await sleep(300);
  assert.deepEqual(seen.slice(6), refused, 'no renewal after the session ended');
  assert.deepEqual(unexpected(problems, 401), []);
});

test('a call the agent lets ring out or rejects sets them away, and the dashboard says so', TEST_TIMEOUT, async () => {
  await setPresence('agent2', 'away'); // agent1 is the one available agent
  await setPresence('agent1', 'away');
  const { page, problems } = await signedInDashboard('agent1', { clock: true });
  const status = page.locator('#presence-status');
  const notice = page.locator('#missed-call');
  await expectText(status, 'Away');
  assert.equal(await notice.isHidden(), true, 'no notice without a missed call');
  await chooseAvailable(page);

  // A customer calls and joins their conference: the router rings agent1 (Calls.json), who
  // lets it ring out: Twilio reports the call no-answer.
  await callerArrives(MISSED_CALL, '+15557654323');
  await callerJoins(MISSED_CALL);
  const rings = ringsFor(MISSED_CALL, 'agent1');
  assert.equal(rings.length, 1, 'agent1 was rung');
  assert.deepEqual(rings[0].form.Timeout, ['20']);
  assert.equal((await serverPresence('agent1')).status, 'busy');
  await agentCallStatus(MISSED_CALL, 'agent1', rings[0].sid, 'no-answer');
  const missed = await serverPresence('agent1');
  assert.equal(missed.status, 'away', 'the server set agent1 away');
  assert.match(missed.missed_call_at ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);

  // The dashboard finds out at its next renewal, and does not say "available" over it.
  await page.clock.fastForward(RENEW_MS);
  await expectText(status, 'Away');
  const text = await expectText(notice, /^You missed a call at \d{1,2}:\d{2}(\s?[AP]M)? and were set to Away\. /);
  assert.match(text, /Choose Available when you are ready for calls\.$/);
  assert.equal(await notice.getAttribute('role'), 'alert');
  assert.equal(await page.getByRole('button', { name: 'Away' }).getAttribute('aria-pressed'), 'true');
  assert.deepEqual((await fake(page)).states, ['unregistered'], 'away: the device no longer rings');
  const after = await serverPresence('agent1');
  assert.deepEqual([after.status, after.missed_call_at], ['away', missed.missed_call_at]);

  // Available again: the notice goes, and the caller still waiting is offered at once.
  await chooseAvailable(page, 'Busy');
  assert.equal(await notice.isHidden(), true, 'available again: the notice is gone');
  assert.equal(ringsFor(MISSED_CALL, 'agent1').length, 2, 'rung again for the waiting caller');
  const second = ringsFor(MISSED_CALL, 'agent1')[1];

  // This time Twilio rings the browser and the agent rejects the call; Twilio says busy.
  await page.evaluate((from) => window.__fake.incoming({ From: from, To: 'client:agent1' }), TWILIO_NUMBER);
  await expectText(page.locator('#call-status'), 'Incoming support call.');
  await agentCallStatus(MISSED_CALL, 'agent1', second.sid, 'busy');
  await page.getByRole('button', { name: 'Reject' }).click();
  await expectText(page.locator('#call-status'), 'Call rejected.');
  // Without waiting for the next renewal: the page looks again moments after a call ends.
  await expectText(status, 'Away');
  await expectText(notice, /^You missed a call at /);
  assert.deepEqual((await fake(page)).states, ['unregistered']);

  await callEnds(MISSED_CALL);
  assert.equal((await serverPresence('agent1')).status, 'away');
  assert.deepEqual(unexpected(problems), []);
});

/** The texts of a list's items, once they read `expected`. */
async function expectItems(list, expected) {
  let items = [];
  await eventually(
    async () => {
      items = await list.locator('li').allTextContents();
      return JSON.stringify(items) === JSON.stringify(expected);
    },
    () => `expected ${list} to list ${JSON.stringify(expected)}, it lists ${JSON.stringify(items)}`,
  );
}

test('an incoming call shows who is calling, their tickets, and who is in the call', TEST_TIMEOUT, async () => {
  const caller = '+15557654325';
  const filed = await stack.postJson('/tickets', { name: 'Grace Hopper', phone_number: caller, description: 'A moth in the relay.' });
  assert.equal(filed.status, 201, filed.text);
  await setPresence('agent2', 'away'); // agent1 is the one available agent
  const { page, problems } = await availableDashboard('agent1');
  const context = page.locator('#caller-context');
  const participants = page.locator('#call-participants');
  assert.equal(await context.isHidden(), true, 'nothing to show while idle');

  // A customer calls; the router rings agent1, whose browser rings.
  await callerArrives(SCREEN_POP_CALL, caller);
  await callerJoins(SCREEN_POP_CALL);
  const [ring] = ringsFor(SCREEN_POP_CALL, 'agent1');
  assert.ok(ring, 'agent1 was rung');
  const asked = page.waitForRequest((r) => new URL(r.url()).pathname === '/calls/current');
  await page.evaluate((from) => window.__fake.incoming({ From: from, To: 'client:agent1' }), TWILIO_NUMBER);
  await asked;

  // Before answering: who is calling, how long they waited, what they filed.
  await expectText(page.locator('#caller-who'), '+1 555 765 4325');
  await expectText(page.locator('#caller-wait'), /^Waited \d{2}:\d{2} in line\.$/);
  await expectItems(page.locator('#caller-tickets'), ['Grace Hopper: A moth in the relay.']);
  await expectItems(participants, ['Customer: waiting', 'agent1 (you): ringing']);

  // agent1 answers; Twilio joins their call to the conference: the next look shows them talking.
  await page.getByRole('button', { name: 'Answer' }).click();
  await expectText(page.locator('#call-status'), 'In call with a customer.');
  const joined = await stack.webhook(`/conference/${SCREEN_POP_CALL}/connect/agent1`, { CallSid: ring.sid });
  assert.equal(joined.status, 200, joined.text);
  await expectItems(participants, ['Customer: talking', 'agent1 (you): talking']);

  // Hung up: the panel goes, and the page stops asking.
  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(page.locator('#call-status'), /^Call ended/);
  assert.equal(await context.isHidden(), true, 'the panel goes with the call');
  let asking = 0;
  page.on('request', (r) => new URL(r.url()).pathname === '/calls/current' && (asking += 1));
  await sleep(2500);
  assert.equal(asking, 0, 'no polling while idle');
  assert.deepEqual(unexpected(problems), []);
});

/** What Warmline asked of the Participants API about `call`, in order: `hold`, `resume`, `remove`. */
function participantChanges(call) {
  return stack.fakeTwilio.requests
    .filter((request) => request.path.endsWith(`/Participants/${call}.json`))
    .map((request) => (request.method === 'DELETE' ? 'remove' : request.form.Hold?.[0] === 'true' ? 'hold' : 'resume'));
}

/** agent1's dashboard answers the support call of `customer` (agent2 away); the page and the ring. */
async function agent1Answers(customer, from) {
  await setPresence('agent2', 'away');
  const opened = await availableDashboard('agent1');
  await callerArrives(customer, from);
  await callerJoins(customer);
  const [ring] = ringsFor(customer, 'agent1');
  assert.ok(ring, 'agent1 was rung');
  await ringArrives(opened.page, ring);
  await opened.page.getByRole('button', { name: 'Answer' }).click();
  const joined = await stack.webhook(`/conference/${customer}/connect/agent1`, { CallSid: ring.sid });
  assert.equal(joined.status, 200, joined.text);
  await expectItems(opened.page.locator('#call-participants'), ['Customer: talking', 'agent1 (you): talking']);
  return { ...opened, ring };
}

/** agent2 says they are available; agent1's colleague list offers them at its next wallboard look. */
async function agent2IsOffered(page) {
  await setPresence('agent2', 'available');
  const colleague = page.locator('#colleague-select');
  await eventually(
    async () => (await colleague.locator('option').allTextContents()).includes('agent2'),
    'agent2 is never offered as a colleague',
    3 * WALLBOARD_MS,
  );
  await colleague.selectOption('agent2');
}

test('the agent holds, consults a colleague, cancels, consults again and completes the transfer', TEST_TIMEOUT, async () => {
  const { page, problems, ring } = await agent1Answers(CONSULT_CALL, '+15557654326');
  const participants = page.locator('#call-participants');
  const status = page.locator('#transfer-status');

  await page.getByRole('button', { name: 'Hold' }).click();
  await expectText(status, 'The customer is on hold: they hear music and cannot hear you.');
  await expectItems(participants, ['Customer: on hold', 'agent1 (you): talking']);
  const resume = page.getByRole('button', { name: 'Resume' });
  assert.equal(await resume.getAttribute('aria-pressed'), 'true');
  await resume.click();
  await expectItems(participants, ['Customer: talking', 'agent1 (you): talking']);
  assert.deepEqual(participantChanges(CONSULT_CALL), ['hold', 'resume']);

  // Consult agent2, then cancel while their browser rings.
  await agent2IsOffered(page);
  await page.getByRole('button', { name: 'Consult' }).click();
  await expectText(status, 'Consulting agent2: the customer is on hold while agent2 is rung.');
  const [first] = ringsFor(CONSULT_CALL, 'agent2');
  assert.ok(first, 'agent2 was rung');
  await expectItems(participants, ['Customer: on hold', 'agent1 (you): talking', 'agent2: ringing']);
  assert.equal(await page.getByRole('button', { name: 'Complete transfer' }).isDisabled(), true, 'agent2 is not in yet');
  assert.equal(await page.getByRole('button', { name: 'Resume' }).isDisabled(), true, 'the customer holds while agent2 is rung');
  await page.getByRole('button', { name: 'Cancel consult' }).click();
  await expectText(status, 'Consult canceled: the customer is back with you.');
  await expectItems(participants, ['Customer: talking', 'agent1 (you): talking']);
  const cancels = stack.fakeTwilio.requests.filter((request) => request.path.endsWith(`/Calls/${first.sid}.json`));
  assert.deepEqual(cancels.map((request) => request.form.Status?.[0]), ['canceled']);
  await agentCallStatus(CONSULT_CALL, 'agent2', first.sid, 'canceled');
  const colleague = await serverPresence('agent2');
  assert.deepEqual([colleague.status, colleague.missed_call_at], ['available', null], 'a canceled ring is no missed call');

  // Consult again; agent2 answers and the agents talk while the customer holds; complete.
  await page.getByRole('button', { name: 'Consult' }).click();
  await expectText(status, 'Consulting agent2: the customer is on hold while agent2 is rung.');
  const second = ringsFor(CONSULT_CALL, 'agent2')[1];
  assert.ok(second, 'agent2 was rung again');
  const joined = await stack.webhook(`/conference/${CONSULT_CALL}/connect/agent2`, { CallSid: second.sid });
  assert.equal(joined.status, 200, joined.text);
  await expectItems(participants, ['Customer: on hold', 'agent1 (you): talking', 'agent2: talking']);
  await page.getByRole('button', { name: 'Complete transfer' }).click();
  await expectText(status, 'Transfer complete: you are leaving the call.');
  assert.deepEqual(participantChanges(CONSULT_CALL), ['hold', 'resume', 'hold', 'resume', 'hold', 'resume']);
  assert.deepEqual(participantChanges(ring.sid), ['remove'], 'agent1 is taken out of the conference');

  // Twilio ends agent1's call and reports their leaving: agent1 is free, agent2 has the customer.
  await page.evaluate(() => window.__fake.emitCall('disconnect'));
  await expectText(page.locator('#call-status'), /^Call ended/);
  assert.equal(await page.locator('#workspace-actions').isHidden(), true);
  await conferenceEvent(CONSULT_CALL, 'participant-leave', ring.sid);
  assert.equal((await serverPresence('agent1')).status, 'available');
  assert.equal((await serverPresence('agent2')).status, 'busy');
  assert.deepEqual(unexpected(problems), []);
});

test('a cold transfer nobody answers sends the customer back to the front of the line', TEST_TIMEOUT, async () => {
  const { page, problems, ring } = await agent1Answers(COLD_TRANSFER_CALL, '+15557654327');
  await agent2IsOffered(page);
  await page.getByRole('button', { name: 'Transfer', exact: true }).click();
  await expectText(
    page.locator('#transfer-status'),
    'Transferred to agent2: you are leaving the call; the customer holds until agent2 answers.',
  );
  assert.deepEqual(participantChanges(COLD_TRANSFER_CALL), ['hold']);
  assert.deepEqual(participantChanges(ring.sid), ['remove'], 'agent1 leaves at once');
  await page.evaluate(() => window.__fake.emitCall('disconnect'));
  await conferenceEvent(COLD_TRANSFER_CALL, 'participant-leave', ring.sid);
  assert.equal((await serverPresence('agent1')).status, 'available', 'agent1 is free at once');

  // agent2 lets it ring out: the customer is never left holding for nobody.
  const [coldRing] = ringsFor(COLD_TRANSFER_CALL, 'agent2');
  assert.ok(coldRing, 'agent2 was rung');
  await agentCallStatus(COLD_TRANSFER_CALL, 'agent2', coldRing.sid, 'no-answer');
  const back = stack.fakeTwilio.requests.filter((request) => request.path.endsWith(`/Calls/${COLD_TRANSFER_CALL}.json`));
  assert.equal(back.length, 1, 'the customer is given new TwiML once');
  assert.match(back[0].form.Twiml[0], /you are first in line for the next agent/);
  assert.equal((await serverPresence('agent2')).status, 'away', 'a transfer let ring out is a missed call');
  // Twilio puts them in a new conference of the same name: in line again, first, they are offered
  // to agent1, free.
  const nextRun = 'CF' + 'e3'.repeat(16);
  await conferenceEvent(COLD_TRANSFER_CALL, 'participant-join', COLD_TRANSFER_CALL, nextRun);
  assert.equal(ringsFor(COLD_TRANSFER_CALL, 'agent1').length, 2, 'back in line, the customer is offered to agent1');
  await conferenceEvent(COLD_TRANSFER_CALL, 'conference-end', null, nextRun);
  assert.deepEqual(unexpected(problems), []);
});

test('a caller on the customer page gives their name and the ticket they call about; the agent sees both', TEST_TIMEOUT, async () => {
  await setPresence('agent2', 'away'); // agent1 is the one available agent
  const agent = await availableDashboard('agent1');
  const customer = await visit('/');
  const { page } = customer;
  assert.equal(await page.locator('#caller-ticket-field').isHidden(), true, 'no ticket filed from here yet');
  await fileTicket(page, { name: 'Ada Lovelace', phone: '+15557654328', description: 'The engine miscounts.' });
  await expectText(page.locator('#ticket-notice'), /^Thank you, Ada Lovelace\./);
  const picker = page.getByLabel('What is the call about?');
  await eventually(async () => (await picker.locator('option').allTextContents()).includes('Your ticket: The engine miscounts.'), 'the ticket is offered');
  const ticketId = await picker.locator('option').nth(1).getAttribute('value');
  await page.getByLabel('Name for the agent (optional)').fill('  Ada ');
  await picker.selectOption(ticketId);
  await page.getByRole('button', { name: 'Call support' }).click();
  await eventually(async () => (await fake(page)).connects.length === 1, 'device.connect() was called');
  const [connected] = (await fake(page)).connects;
  assert.deepEqual(connected.params, { callerName: 'Ada', ticketId });

  // Twilio brings the call to the customers' app with the params, and the caller joins.
  callsStarted.add(INTRODUCED_CALL);
  const arrives = await stack.webhook('/call/connect', {
    AccountSid: ACCOUNT_SID,
    ApplicationSid: 'AP' + '0'.repeat(32),
    CallSid: INTRODUCED_CALL,
    From: `client:${connected.identity}`,
    Direction: 'inbound',
    ...connected.params,
  });
  assert.equal(arrives.status, 200, arrives.text);
  await callerJoins(INTRODUCED_CALL);
  const [ring] = ringsFor(INTRODUCED_CALL, 'agent1');
  assert.ok(ring, 'agent1 was rung');

  // The ring itself names the caller (its custom parameters); the server's view follows.
  const dashboard = agent.page;
  await ringArrives(dashboard, ring);
  assert.equal(await dashboard.locator('#call-status').textContent(), 'Incoming support call from Ada.');
  await expectText(dashboard.locator('#caller-who'), 'Ada, on the customer page');
  await expectItems(dashboard.locator('#caller-tickets'), ['Says they are calling about: Ada Lovelace: The engine miscounts.']);
  await dashboard.getByRole('button', { name: 'Reject' }).click();
  await callEnds(INTRODUCED_CALL);
  assert.deepEqual(unexpected(agent.problems), []);
  assert.deepEqual(unexpected(customer.problems), []);
});

test('a voicemail is a ticket with a player; a browser caller\'s cannot be called back', TEST_TIMEOUT, async () => {
  const phoneRecording = 'RE' + 'a1'.repeat(16);
  const browserRecording = 'RE' + 'b2'.repeat(16);
  const browserCaller = 'customer_0123456789abcdef';

  // A caller on the phone and one from the customer page each leave a message; Twilio reports
  // the recordings. Then their calls end.
  await callerArrives(PHONE_VOICEMAIL_CALL, '+15557654324');
  await recordingCompleted(PHONE_VOICEMAIL_CALL, phoneRecording, 12);
  callsStarted.add(BROWSER_VOICEMAIL_CALL);
  const browserArrives = await stack.webhook('/call/connect', {
    AccountSid: ACCOUNT_SID,
    ApplicationSid: 'AP' + '0'.repeat(32), // the customers' TwiML App scripts/dev.sh sets up
    CallSid: BROWSER_VOICEMAIL_CALL,
    From: `client:${browserCaller}`,
    Direction: 'inbound',
  });
  assert.equal(browserArrives.status, 200, browserArrives.text);
  assert.match(browserArrives.text, new RegExp(`>${BROWSER_VOICEMAIL_CALL}</Conference>`));
  await recordingCompleted(BROWSER_VOICEMAIL_CALL, browserRecording, 75);
  await callEnds(PHONE_VOICEMAIL_CALL);
  await callEnds(BROWSER_VOICEMAIL_CALL);

  const tickets = await allTickets();
  const phoneTicket = tickets.find((t) => t.voicemail && t.phone_number === '+15557654324');
  const browserTicket = tickets.find((t) => t.voicemail && t.customer === browserCaller);
  assert.ok(phoneTicket && browserTicket, JSON.stringify(tickets.slice(0, 3)));
  assert.deepEqual(phoneTicket.voicemail, { duration_seconds: 12, recording_url: `/tickets/${phoneTicket.id}/recording` });
  assert.equal('phone_number' in browserTicket, false);

  const { page, problems } = await signedInDashboard('agent1');
  const recordingRequests = [];
  page.on('request', (r) => /\/recording$/.test(new URL(r.url()).pathname) && recordingRequests.push(r.url()));

  const phone = page.locator(`#tickets > li[data-ticket-id="${phoneTicket.id}"]`);
  await expectText(phone.locator('.ticket-name'), 'Phone caller');
  await expectText(phone.locator('.ticket-phone'), '+1 555 765 4324');
  await expectText(phone.locator('.ticket-kind'), 'Voicemail');
  await expectText(phone.locator('.ticket-duration'), '0:12');
  const player = phone.locator('audio');
  assert.equal(await player.count(), 1);
  assert.equal(await player.getAttribute('src'), `/tickets/${phoneTicket.id}/recording`);
  assert.equal(await player.getAttribute('preload'), 'none');
  assert.equal(await player.evaluate((audio) => audio.controls), true);
  assert.equal(await phone.getByRole('button', { name: /^Call customer Phone caller at \+1 555 765 4324$/ }).count(), 1);

  const browser = page.locator(`#tickets > li[data-ticket-id="${browserTicket.id}"]`);
  await expectText(browser.locator('.ticket-name'), 'Browser caller');
  await expectText(browser.locator('.ticket-caller'), `Called from the customer page: ${browserCaller}`);
  await expectText(browser.locator('.ticket-duration'), '1:15');
  assert.equal(await browser.locator('audio').getAttribute('src'), `/tickets/${browserTicket.id}/recording`);
  assert.equal(await browser.locator('.ticket-phone').count(), 0);
  assert.equal(await browser.getByRole('button').count(), 0, 'no number: nothing to call back');

  // Nothing is fetched before the agent plays it.
  await sleep(300);
  assert.deepEqual(recordingRequests, []);
  const fetchedBefore = stack.fakeTwilio.requests.filter((r) => r.path.includes('/Recordings/')).length;
  assert.equal(fetchedBefore, 0);

  // The page's session gets the audio, which Warmline fetches from Twilio with the API key.
  const heard = await page.evaluate(async (src) => {
    const response = await fetch(src);
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      bytes: Array.from(new Uint8Array(await response.arrayBuffer())),
    };
  }, `/tickets/${phoneTicket.id}/recording`);
  assert.equal(heard.status, 200);
  assert.equal(heard.type, 'audio/mpeg');
  assert.deepEqual(heard.bytes, Array.from(RECORDING_BYTES));
  const fetched = stack.fakeTwilio.requests.filter((r) => r.path.includes('/Recordings/'));
  assert.deepEqual(
    fetched.map((r) => [r.method, r.path, r.auth]),
    [[
      'GET',
      `/2010-04-01/Accounts/${ACCOUNT_SID}/Recordings/${phoneRecording}.mp3`,
      `Basic ${Buffer.from(`${API_KEY}:${API_SECRET}`).toString('base64')}`,
    ]],
  );

  // The player may load it: the page's CSP allows media from its own origin.
  const loaded = page.waitForResponse((r) => new URL(r.url()).pathname === `/tickets/${browserTicket.id}/recording`);
  await browser.locator('audio').evaluate((audio) => {
    audio.preload = 'auto';
    audio.load();
  });
  assert.equal((await loaded).status(), 200);
  assert.deepEqual(await cspViolations(page), []);

  // Without a session, nobody gets it, and Twilio is not asked.
  const askedTwilio = () => stack.fakeTwilio.requests.filter((r) => r.path.includes('/Recordings/')).length;
  const asked = askedTwilio();
  const anonymous = await page.evaluate(async (src) => (await fetch(src, { credentials: 'omit' })).status,
    `/tickets/${phoneTicket.id}/recording`);
  assert.equal(anonymous, 401);
  assert.equal(askedTwilio(), asked);

  assert.deepEqual(unexpected(problems, 401), []);
});

/** Makes the page hidden (another tab in front) or visible again, as the browser says it. */
async function showPage(page, visible) {
  await page.evaluate((state) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
    document.dispatchEvent(new Event('visibilitychange'));
  }, visible ? 'visible' : 'hidden');
}

test('the wallboard shows callers queueing and hanging up as it happens, asking only while visible', TEST_TIMEOUT, async () => {
  await setPresence('agent2', 'away');
  await setPresence('agent1', 'away');
  const { page, problems } = await signedInDashboard('agent1', { clock: true });
  const figure = (name) => page.locator(`#wb-${name}`);
  const polls = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/wallboard') {
      polls.push(request.method());
    }
  });
  // At once when the page opens: the line is empty, both agents away.
  await expectText(figure('waiting'), '0');
  await expectText(figure('longest'), '–');
  await expectText(figure('away'), '2');
  await expectText(figure('available'), '0');
  await expectText(figure('busy'), '0');
  const abandoned = Number(await figure('abandoned').textContent());
  assert.match(await page.locator('#wallboard-status').textContent(), /^As of /);

  // Two callers queue with nobody to answer; the page shows each within one poll.
  await callerArrives(WALLBOARD_CALL, '+15557654325');
  await page.clock.fastForward(WALLBOARD_MS);
  await expectText(figure('waiting'), '1');
  await expectText(figure('longest'), /^\d+ s$/);
  await callerArrives(SECOND_WALLBOARD_CALL, '+15557654326');
  await page.clock.fastForward(WALLBOARD_MS);
  await expectText(figure('waiting'), '2');

  // The first hangs up in line: out of the line, and today's abandoned calls count them (once,
  // though Twilio reports the end twice).
  await callEnds(WALLBOARD_CALL);
  await callEnds(WALLBOARD_CALL);
  await page.clock.fastForward(WALLBOARD_MS);
  await expectText(figure('waiting'), '1');
  await expectText(figure('abandoned'), String(abandoned + 1));

  // Hidden, the page asks nothing; shown again, it asks at once.
  await showPage(page, false);
  await sleep(300);
  const asked = polls.length;
  await page.clock.fastForward(4 * WALLBOARD_MS);
  await sleep(300);
  assert.equal(polls.length, asked, 'a hidden page asks nothing');
  await callEnds(SECOND_WALLBOARD_CALL);
  await showPage(page, true);
  await expectText(figure('waiting'), '0');
  await expectText(figure('abandoned'), String(abandoned + 2));
  assert.ok(polls.every((method) => method === 'GET'));
  assert.deepEqual(unexpected(problems), []);
});

test('signing in: /dashboard → sign-in page → back; a wrong password gets a general refusal', TEST_TIMEOUT, async () => {
  const opened = await visit('/dashboard');
  const { page, context, problems } = opened;
  assert.equal(location(page), LOGIN_FOR_DASHBOARD, 'no session: sent to sign in, with the way back');
  assert.equal(await page.title(), 'Sign in · Agent console');
  assert.equal(await page.locator('input[type="hidden"][name="next"]').inputValue(), '/dashboard');
  assert.equal(await page.locator('#login-error').isHidden(), true, 'no error before an attempt');
  assert.equal(await page.getByLabel('Agent ID').getAttribute('autocomplete'), 'username');
  assert.equal(await page.getByLabel('Password').getAttribute('autocomplete'), 'current-password');
  assert.equal(await page.getByLabel('Password').getAttribute('type'), 'password');
  assert.equal(await page.locator('form').getAttribute('method'), 'post');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'agent_id', 'the first field has focus');
  assert.equal(await sessionCookie(context), null);

  let response = await submitSignIn(page, 'agent1', 'not-the-password');
  assert.equal(response.status(), 401);
  await expectText(page.locator('#login-error'), WRONG_PASSWORD_MESSAGE);
  assert.equal(await page.locator('#login-error').isVisible(), true);
  assert.equal(await page.locator('#login-error').getAttribute('role'), 'alert');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(await page.locator('input[name="next"]').inputValue(), '/dashboard', 'the way back is kept');
  assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is never sent back');
  assert.equal(await sessionCookie(context), null, 'no session after a wrong password');

  response = await submitSignIn(page, 'agent1', AGENT_PASSWORD);
  assert.equal(response.status(), 303);
  await arriveAtDashboard(opened);
  assert.equal(location(page), '/dashboard');
  await expectText(page.locator('#agent-id'), 'agent1');
  assert.notEqual((await page.locator('#agent-name').textContent()).trim(), '', 'the agent\'s name is shown');
  await page.locator('#tickets > li').first().waitFor(); // the ticket list is theirs to see now
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), true);

  const cookie = await sessionCookie(context);
  assert.equal(cookie.name, 'warmline_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/');
  assert.equal(cookie.secure, false, 'no Secure on plain-HTTP loopback');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session');

  // Already signed in: the sign-in page sends the agent straight on.
  await page.goto(stack.base + LOGIN_FOR_DASHBOARD);
  assert.equal(location(page), '/dashboard');

  assert.deepEqual(unexpected(problems, 401), []);
  assert.deepEqual(await cspViolations(page), []);
});

test('signing in and out works without JavaScript', TEST_TIMEOUT, async () => {
  const { page, context } = await visit(LOGIN_FOR_DASHBOARD, { javaScriptEnabled: false });
  const response = await submitSignIn(page, 'agent2', AGENT_PASSWORD);
  assert.equal(response.status(), 303);
  await page.waitForURL((url) => url.pathname === '/dashboard');
  assert.equal((await page.locator('#agent-id').textContent()).trim(), 'agent2');
  assert.ok(await sessionCookie(context));

  await Promise.all([
    page.waitForURL((url) => url.pathname === '/login'),
    page.getByRole('button', { name: 'Sign out' }).click(),
  ]);
  assert.equal(await sessionCookie(context), null);
});

test('a customer page never receives an agent token, even in a signed-in agent\'s browser', TEST_TIMEOUT, async () => {
  // A customer's browser: the call, a token refresh, and a script naming an agent outright.
  const customer = await visit('/');
  const seen = recordTokens(customer.page);
  await customer.page.getByRole('button', { name: 'Call support' }).click();
  await eventually(async () => (await fake(customer.page)).connects.length === 1, 'device.connect() was called');
  await customer.page.evaluate(() => window.__fake.emitDevice('tokenWillExpire'));
  await eventually(async () => (await fake(customer.page)).tokenUpdates.length === 1, 'device.updateToken()');
  const asked = await customer.page.evaluate(async () => {
    const bodies = [
      ['application/json', JSON.stringify({ agent: 'agent1' })],
      ['application/x-www-form-urlencoded', 'agent=agent1&identity=agent1'],
    ];
    const answers = [];
    for (const [type, body] of bodies) {
      const response = await fetch('/token', { method: 'POST', headers: { 'Content-Type': type }, body });
      answers.push([response.status, (await response.json()).identity]);
    }
    return answers;
  });
  assert.equal(asked.length, 2);
  for (const [status, identity] of asked) {
    assert.equal(status, 200);
    assert.match(identity, /^customer_[0-9a-f]{16}$/);
  }
  await eventually(() => seen.length === 4, () => `every /token answer was seen (${JSON.stringify(seen)})`);
  assert.ok(seen.every((identity) => /^customer_/.test(identity)), `only customer tokens: ${JSON.stringify(seen)}`);
  const recorded = await fake(customer.page);
  assert.ok(recorded.identities.every((identity) => /^customer_/.test(identity)));
  assert.ok(recorded.tokenUpdates.every((identity) => /^customer_/.test(identity)));

  // The customer page opened where an agent is signed in still calls as a customer.
  const agent = await signedInDashboard('agent1');
  const page = await agent.context.newPage();
  const seenThere = recordTokens(page);
  await page.goto(stack.base + '/');
  await page.getByRole('button', { name: 'Call support' }).click();
  await eventually(async () => (await fake(page)).connects.length === 1, 'device.connect() was called');
  assert.match((await fake(page)).connects[0].identity, /^customer_/);
  await eventually(() => seenThere.length === 1, 'the /token answer was seen');
  assert.match(seenThere[0], /^customer_/);

  assert.deepEqual(unexpected(customer.problems), []);
});

test('an agent cannot dial a colleague into another agent\'s call', TEST_TIMEOUT, async () => {
  // agent1 is in a support call: a customer called, the router rang agent1, and agent1 answered.
  await setPresence('agent2', 'away');
  await setPresence('agent1', 'available');
  await callerArrives(SECOND_CUSTOMER_CALL, '+15557654322');
  await callerJoins(SECOND_CUSTOMER_CALL);
  const [ring] = ringsFor(SECOND_CUSTOMER_CALL, 'agent1');
  assert.ok(ring, 'agent1 was rung');
  const joined = await stack.webhook(`/conference/${SECOND_CUSTOMER_CALL}/connect/agent1`, { CallSid: ring.sid });
  assert.equal(joined.status, 200);
  assert.match(joined.text, new RegExp(`>${SECOND_CUSTOMER_CALL}</Conference>`));
  await setPresence('agent2', 'available'); // a colleague anyone in a call could dial in
  const before = dialedCalls().length;

  // agent2's dashboard asks for agent1's transfer, as a script there could, and so does a client
  // with agent2's cookie.
  const { page, context, problems } = await signedInDashboard('agent2');
  const fromPage = await page.evaluate(async () => {
    const response = await fetch('/conference/agent1/call', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    return response.status;
  });
  assert.equal(fromPage, 403);
  const cookie = await cookieHeader(context);
  for (const body of [{}, { to: 'agent2' }]) {
    const response = await stack.postJson('/conference/agent1/call', body, { cookie });
    assert.equal(response.status, 403, JSON.stringify(body));
    assert.doesNotMatch(response.text, new RegExp(SECOND_CUSTOMER_CALL), 'nothing about agent1\'s call is told');
  }
  assert.equal(dialedCalls().length, before, 'nothing was dialed');

  // agent1 may (so what was refused above is who asked, not the request).
  const own = await asAgent('agent1', (cookie) => stack.postJson('/conference/agent1/call', {}, { cookie }));
  assert.equal(own.status, 201, own.text);
  assert.equal(dialedCalls().length, before + 1);
  // The ring names the call and who dials agent2 in (its custom parameters).
  assert.deepEqual(dialedCalls().at(-1).form.To, [
    `client:agent2?conference=${SECOND_CUSTOMER_CALL}&transferFrom=agent1&transferKind=warm`,
  ]);

  // The customer hangs up: the conference ends and nobody is left in it.
  await callEnds(SECOND_CUSTOMER_CALL);
  await setPresence('agent2', 'away');
  await setPresence('agent1', 'away');
  assert.deepEqual(unexpected(problems, 403), []);
});

test('signing out ends every session of that agent, in every browser', TEST_TIMEOUT, async () => {
  const { page, context, problems } = await availableDashboard('agent1');
  const firstCookie = await cookieHeader(context);
  const other = await signedInDashboard('agent1'); // the same agent in a second browser
  await other.page.locator('#tickets > li').first().waitFor();
  const otherCookie = await cookieHeader(other.context);
  assert.notEqual(otherCookie, firstCookie);

  await Promise.all([
    page.waitForURL((url) => url.pathname === '/login'),
    page.getByRole('button', { name: 'Sign out' }).click(),
  ]);
  assert.equal(await sessionCookie(context), null, 'the browser forgot the cookie');
  assert.equal((await serverPresence('agent1')).status, 'away', 'an agent who signs out is offered no calls');
  await page.goto(stack.base + '/dashboard');
  assert.equal(location(page), LOGIN_FOR_DASHBOARD);

  for (const cookie of [firstCookie, otherCookie]) {
    const token = await stack.postJson('/token', {}, { cookie });
    assert.equal(token.status, 200);
    assert.match(JSON.parse(token.text).identity, /^customer_[0-9a-f]{16}$/, 'an old cookie gets a customer token');
    const tickets = await stack.get('/tickets', { cookie });
    assert.equal(tickets.status, 401);
    assert.deepEqual(JSON.parse(tickets.text), { error: 'sign in first' });
    const dashboard = await stack.get('/dashboard', { cookie });
    assert.equal(dashboard.status, 303);
    const target = new URL(dashboard.headers.get('location'), stack.base);
    assert.equal(target.pathname + target.search, LOGIN_FOR_DASHBOARD);
  }

  // The second browser's dashboard finds out at its next request (a click, or the wallboard's
  // every 5 s) and sends its agent to sign in.
  await other.page.getByRole('button', { name: 'Refresh' }).click({ timeout: 5000 }).catch(() => {});
  await other.page.waitForURL((url) => url.pathname + url.search === LOGIN_FOR_DASHBOARD);
  await expectText(other.page.locator('#login-error'), SESSION_ENDED_MESSAGE);
  assert.deepEqual(unexpected(problems, 401), []);
  assert.deepEqual(unexpected(other.problems, 401), []);
});

test('a session ending during a call lets the agent finish it, then asks them to sign in', TEST_TIMEOUT, async () => {
  const { page, context, problems } = await availableDashboard('agent1');
  await answerIncomingCall(page);
  const tokens = recordTokens(page);

  // The cookie no longer carries a valid signature (as if forged, or signed with an old secret).
  const cookie = await sessionCookie(context);
  await context.addCookies([{ ...cookie, value: tampered(cookie.value) }]);

  await page.evaluate(() => window.__fake.emitDevice('tokenWillExpire'));
  await expectText(
    page.locator('#session-status'),
    'Your session has ended. You can finish this call; then sign in again.',
  );
  await eventually(() => tokens.length === 1, 'the page asked for a token');
  assert.match(tokens[0], /^customer_/, 'the server no longer takes the cookie for agent1');
  assert.deepEqual((await fake(page)).tokenUpdates, [], 'a customer token never replaces the agent\'s');
  await expectText(page.locator('#call-status'), 'In call with a customer.');
  assert.equal(await page.getByRole('link', { name: 'Sign in again' }).getAttribute('href'), LOGIN_FOR_DASHBOARD);

  const before = dialedCalls().length;
  await page.getByRole('button', { name: 'Dial a colleague in' }).click();
  await expectText(page.locator('#transfer-status'), 'Could not dial a colleague in: you are signed out.');
  assert.equal(dialedCalls().length, before, 'nothing was dialed');
  assert.equal(location(page), '/dashboard', 'nobody is taken away in the middle of a call');

  await page.getByRole('button', { name: 'Hang up' }).click();
  await page.waitForURL((url) => url.pathname + url.search === LOGIN_FOR_DASHBOARD);
  await expectText(page.locator('#login-error'), SESSION_ENDED_MESSAGE);
  assert.deepEqual(unexpected(problems, 401), []);
});

test('the pages render without console errors at desktop and phone widths', TEST_TIMEOUT, async () => {
  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const login = await visit(LOGIN_FOR_DASHBOARD, { viewport });
    await assertFitsWidth(login.page, viewport);
    await login.page.screenshot({ path: join(ARTIFACTS, `login-${label}.png`), fullPage: true });
    // An id no test signs in as: this refusal counts against nobody's attempts.
    assert.equal((await submitSignIn(login.page, `nobody${label}`, 'wrong')).status(), 401);
    await expectText(login.page.locator('#login-error'), WRONG_PASSWORD_MESSAGE);
    await assertFitsWidth(login.page, viewport);
    await login.page.screenshot({ path: join(ARTIFACTS, `login-${label}-error.png`), fullPage: true });
    assert.deepEqual(unexpected(login.problems, 401), []);
    assert.deepEqual(await cspViolations(login.page), []);

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

    const dashboard = await availableDashboard('agent1', { viewport });
    await dashboard.page.locator('#tickets > li').first().waitFor();
    await answerIncomingCall(dashboard.page);
    await assertFitsWidth(dashboard.page, viewport);
    await dashboard.page.screenshot({ path: join(ARTIFACTS, `dashboard-${label}.png`), fullPage: true });
    assert.deepEqual(dashboard.problems, []);
    assert.deepEqual(await cspViolations(dashboard.page), []);
    assert.deepEqual(
      [...login.external, ...customer.external, ...dashboard.external],
      [],
      'with the fake SDK nothing leaves the origin',
    );
  }
});

test('a disabled agent is signed out at their next request and cannot sign in again', TEST_TIMEOUT, async () => {
  // Runs after every other test that signs in as agent2: the admin tool cannot enable again.
  const { page, problems } = await signedInDashboard('agent2');
  await page.locator('#tickets > li').first().waitFor();

  await stack.admin('disable', 'agent2');
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.waitForURL((url) => url.pathname + url.search === LOGIN_FOR_DASHBOARD);
  await expectText(page.locator('#login-error'), SESSION_ENDED_MESSAGE);

  // The same answer as a wrong password: nothing tells a disabled account from a mistake.
  const response = await submitSignIn(page, 'agent2', AGENT_PASSWORD);
  assert.equal(response.status(), 401);
  await expectText(page.locator('#login-error'), WRONG_PASSWORD_MESSAGE);
  assert.deepEqual(unexpected(problems, 401), []);
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

/** The cookie's value with one character changed: its signature no longer matches. */
function tampered(value) {
  const at = value.length - 8;
  const replacement = value[at] === 'A' ? 'B' : 'A';
  return value.slice(0, at) + replacement + value.slice(at + 1);
}

async function assertFitsWidth(page, viewport) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= viewport.width, `no sideways scrolling at ${viewport.width}px (page is ${width}px wide)`);
}
