// The call ledger on the dashboard in Chromium, on the real `make dev` stack (as pages.test.mjs
// runs it): a call from a ticket's number, reported by signed webhooks as Twilio sends them
// (the end twice), appears in that ticket's calls, once, with how it ended; the page renders
// what `GET /tickets/{ticket_id}/calls` answers.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { eventually, expectText, launch, location, note, open, reloadIfAssetsFailed, submitSignIn, unexpected } from './support/browser.mjs';
import { ACCOUNT_SID, AGENT_PASSWORD, ROOT, TWILIO_NUMBER, startStack } from './support/stack.mjs';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const TEST_TIMEOUT = { timeout: 90 * 1000 };
const CALLER = '+15550303030';
const CUSTOMER_CALL = 'CA' + 'c'.repeat(30) + '01';

let stack;
let browser;
const contexts = [];
let cookie;

before(
  async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack();
    browser = await launch();
    cookie = await stack.sessionOf('agent2');
    // agent2 is available (the fake Twilio takes the call that rings them), agent1 away.
    for (const [agent, status] of [['agent1', 'away'], ['agent2', 'available']]) {
      const response = await stack.putJson('/presence', { status }, { cookie: await stack.sessionOf(agent) });
      assert.equal(response.status, 200, response.text);
    }
  },
  { timeout: 12 * 60 * 1000 },
);

beforeEach((t) => note(`=== ${t.name}`));

afterEach(async () => {
  for (const context of contexts.splice(0)) {
    await context.close().catch(() => {});
  }
});

after(
  async () => {
    await browser?.close().catch(() => {});
    await stack?.stop(join(ARTIFACTS, 'browser-ledger-stack.log'));
  },
  { timeout: 60 * 1000 },
);

async function dashboard(agent) {
  const opened = await open(browser, stack.base + '/dashboard');
  contexts.push(opened.context);
  const { page } = opened;
  assert.equal(location(page), '/login?next=%2Fdashboard');
  assert.equal((await submitSignIn(page, agent, AGENT_PASSWORD)).status(), 303);
  await page.waitForURL((url) => url.pathname === '/dashboard');
  await page.waitForLoadState('load');
  await reloadIfAssetsFailed(opened);
  return opened;
}

/** A status callback of the customer's conference, as Twilio sends it. */
async function conferenceEvent(customer, name, sequence, participant) {
  const params = {
    ConferenceSid: 'CF' + customer.slice(2),
    FriendlyName: customer,
    StatusCallbackEvent: name,
    SequenceNumber: String(sequence),
  };
  if (participant) {
    Object.assign(params, { CallSid: participant, EndConferenceOnExit: 'true' });
  }
  const response = await stack.webhook(`/conference/${customer}/events`, params);
  assert.equal(response.status, 200, `${name}: ${response.text}`);
}

test('a call from a ticket\'s number appears in that ticket\'s calls, once, with how it ended', TEST_TIMEOUT, async () => {
  const filed = await stack.postJson('/tickets', { name: 'Ledger Lena', phone_number: CALLER, description: 'Call me.' });
  assert.equal(filed.status, 201, filed.text);
  const ticket = JSON.parse(filed.text);

  // The caller dials the support number, joins their conference (agent2 rings), and hangs up
  // before anyone answers; Twilio reports the end twice.
  const arrived = await stack.webhook('/conference/connect/client', {
    AccountSid: ACCOUNT_SID,
    CallSid: CUSTOMER_CALL,
    From: CALLER,
    To: TWILIO_NUMBER,
    Direction: 'inbound',
  });
  assert.equal(arrived.status, 200, arrived.text);
  await conferenceEvent(CUSTOMER_CALL, 'participant-join', 1, CUSTOMER_CALL);
  await conferenceEvent(CUSTOMER_CALL, 'conference-end', 3);
  await conferenceEvent(CUSTOMER_CALL, 'conference-end', 3);

  // What the server answers: one call, inbound from the number, abandoned while agent2 rang.
  const response = await stack.get(`/tickets/${ticket.id}/calls`, { cookie });
  assert.equal(response.status, 200, response.text);
  const { calls, next } = JSON.parse(response.text);
  assert.equal(next, null);
  assert.deepEqual(
    calls.map((call) => [call.call_id, call.direction, call.channel, call.caller, call.outcome]),
    [[CUSTOMER_CALL, 'inbound', 'phone', CALLER, 'abandoned']],
  );
  assert.deepEqual(calls[0].agents, [{ agent: 'agent2', role: 'offered' }]);

  // What the agent sees on the ticket.
  const { page, problems } = await dashboard('agent1');
  await page.getByRole('link', { name: 'Ledger Lena', exact: true }).click();
  const detail = page.locator('#ticket-detail');
  await expectText(detail.locator('#detail-heading'), 'Ledger Lena');
  const shown = detail.locator('#calls > li');
  await eventually(async () => (await shown.count()) === 1, async () => `${await shown.count()} calls shown`);
  await expectText(shown.first().locator('.call-kind'), 'Inbound phone call');
  await expectText(shown.first().locator('.call-outcome'), `${CALLER}: hung up while waiting`);
  await expectText(shown.first().locator('.call-agents'), 'Agents: agent2 (offered)');
  assert.deepEqual(unexpected(problems), []);
});
