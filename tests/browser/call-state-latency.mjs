// `make call-state-latency`: how long a participant change Twilio reports takes to show on the
// agent's dashboard. On the `make dev` stack with a fake Twilio (tests/browser/support), agent1's
// dashboard in Chromium is in a support call; SAMPLES times, a colleague's answer (Twilio fetching
// their TwiML) and then their leaving (the conference's participant-leave) are sent to the stack,
// and the time from Warmline's answer to the dashboard's participants list showing the change is
// taken. Prints p50, p90, p99 and the maximum; a benchmark, not a test.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { eventually, launch, open, reloadIfAssetsFailed, submitSignIn } from './support/browser.mjs';
import { ACCOUNT_SID, AGENT_PASSWORD, ROOT, TWILIO_NUMBER, startStack } from './support/stack.mjs';

const SAMPLES = Number(process.env.SAMPLES || 40);
const CUSTOMER = 'CA' + 'f1'.repeat(16);
const RUN = 'CF' + 'f1'.repeat(16);

// The dashboard asks every 2 s: a change made just after it showed the last one would always
// wait a whole turn. Changes come at a random moment of the turn instead, as Twilio's do.
const POLL_MS = 2000;
const atAnyMoment = () => new Promise((resolve) => setTimeout(resolve, Math.random() * POLL_MS));

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function ok(response, what) {
  if (response.status !== 200 && response.status !== 201) {
    throw new Error(`${what}: ${response.status} ${response.text}`);
  }
  return response;
}

const stack = await startStack();
const browser = await launch();
try {
  const cookies = { agent1: await stack.sessionOf('agent1'), agent2: await stack.sessionOf('agent2') };
  const say = (agent, status) => stack.putJson('/presence', { status }, { cookie: cookies[agent] });
  const conferenceEvent = (name, participant) =>
    stack.webhook(`/conference/${CUSTOMER}/events`, {
      AccountSid: ACCOUNT_SID,
      ConferenceSid: RUN,
      FriendlyName: CUSTOMER,
      StatusCallbackEvent: name,
      SequenceNumber: '1',
      ...(participant ? { CallSid: participant, EndConferenceOnExit: String(participant === CUSTOMER) } : {}),
    });
  const dialed = (agent) =>
    stack.fakeTwilio.requests.filter(
      (r) => r.method === 'POST' && r.path.endsWith('/Calls.json') && r.form.Url?.[0]?.endsWith(`/conference/${CUSTOMER}/connect/${agent}`),
    );

  await ok(await say('agent2', 'away'), 'agent2 away');
  const opened = await open(browser, `${stack.base}/dashboard`);
  const { page } = opened;
  await submitSignIn(page, 'agent1', AGENT_PASSWORD);
  await page.waitForURL((url) => url.pathname === '/dashboard');
  await page.waitForLoadState('load');
  await reloadIfAssetsFailed(opened);
  await page.getByRole('button', { name: 'Available' }).click();
  await eventually(async () => (await page.evaluate(() => window.__fake.summary())).registerCalls > 0, 'the device registers');
  await page.evaluate(() => window.__fake.emitDevice('registered'));
  await eventually(async () => (await page.locator('#presence-status').textContent()) === 'Available', 'agent1 is available');

  // A customer calls; agent1's browser rings and they answer.
  await ok(
    await stack.webhook('/conference/connect/client', {
      AccountSid: ACCOUNT_SID,
      CallSid: CUSTOMER,
      From: '+15557659999',
      To: TWILIO_NUMBER,
      Direction: 'inbound',
    }),
    'the customer calls',
  );
  await ok(await conferenceEvent('participant-join', CUSTOMER), 'the customer joins');
  const [ring] = dialed('agent1');
  await page.evaluate((from) => window.__fake.incoming({ From: from, To: 'client:agent1' }), TWILIO_NUMBER);
  await page.getByRole('button', { name: 'Answer' }).click();
  await ok(await stack.webhook(`/conference/${CUSTOMER}/connect/agent1`, { CallSid: ring.sid }), 'agent1 joins');

  const lists = (text) =>
    page.waitForFunction(
      (expected) => Array.from(document.querySelectorAll('#call-participants li'), (li) => li.textContent).join('|') === expected,
      text,
      { polling: 'raf', timeout: 10_000 },
    );
  await lists('Customer: talking|agent1 (you): talking');

  const samples = [];
  while (samples.length < SAMPLES) {
    await ok(await say('agent2', 'available'), 'agent2 available');
    await ok(await stack.postJson('/conference/agent1/call', { to: 'agent2' }, { cookie: cookies.agent1 }), 'dial agent2 in');
    const call = dialed('agent2').at(-1);
    await lists('Customer: talking|agent1 (you): talking|agent2: ringing');

    await atAnyMoment();
    await ok(await stack.webhook(`/conference/${CUSTOMER}/connect/agent2`, { CallSid: call.sid }), 'agent2 joins');
    const answered = performance.now();
    await lists('Customer: talking|agent1 (you): talking|agent2: talking');
    samples.push(performance.now() - answered);

    await atAnyMoment();
    await ok(await conferenceEvent('participant-leave', call.sid), 'agent2 leaves');
    const left = performance.now();
    await lists('Customer: talking|agent1 (you): talking');
    samples.push(performance.now() - left);
  }
  await conferenceEvent('conference-end');

  const sorted = [...samples].sort((a, b) => a - b);
  const result = {
    samples: sorted.length,
    p50_ms: Math.round(percentile(sorted, 50)),
    p90_ms: Math.round(percentile(sorted, 90)),
    p99_ms: Math.round(percentile(sorted, 99)),
    max_ms: Math.round(sorted.at(-1)),
  };
  writeFileSync(join(ROOT, 'target', 'call-state-latency.json'), JSON.stringify({ ...result, sorted_ms: sorted.map(Math.round) }));
  console.log(
    `a participant change → the dashboard shows it, over ${result.samples} changes: ` +
      `p50 ${result.p50_ms} ms, p90 ${result.p90_ms} ms, p99 ${result.p99_ms} ms, max ${result.max_ms} ms`,
  );
} finally {
  await browser.close().catch(() => {});
  await stack.stop().catch(() => {});
}
