// Working tickets on the dashboard in Chromium, on the real `make dev` stack (as
// pages.test.mjs runs it): closing and reopening a ticket, adding a note, finding tickets by
// number or name, and a customer filing again while their ticket is open. What the page shows
// is checked against what the server stored.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { eventually, expectText, launch, location, note, open, reloadIfAssetsFailed, submitSignIn, unexpected } from './support/browser.mjs';
import { AGENT_PASSWORD, ROOT, startStack } from './support/stack.mjs';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const TEST_TIMEOUT = { timeout: 90 * 1000 };

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
    await stack?.stop(join(ARTIFACTS, 'browser-tickets-stack.log'));
  },
  { timeout: 60 * 1000 },
);

async function visit(path) {
  const opened = await open(browser, stack.base + path);
  contexts.push(opened.context);
  return opened;
}

async function dashboard(agent = 'agent1') {
  const opened = await visit('/dashboard');
  const { page } = opened;
  assert.equal(location(page), '/login?next=%2Fdashboard');
  assert.equal((await submitSignIn(page, agent, AGENT_PASSWORD)).status(), 303);
  await page.waitForURL((url) => url.pathname === '/dashboard');
  await page.waitForLoadState('load');
  await reloadIfAssetsFailed(opened);
  return opened;
}

/** A ticket as a customer files it, straight to the API; the stored ticket. */
async function file(name, phone, description) {
  const response = await stack.postJson('/tickets', { name, phone_number: phone, description });
  assert.equal(response.status, 201, response.text);
  return JSON.parse(response.text);
}

/** What the server holds, as agent2 reads it. */
async function listed(query) {
  const response = await stack.get(`/tickets${query}`, { cookie });
  assert.equal(response.status, 200, response.text);
  return JSON.parse(response.text).tickets;
}

function item(page, name) {
  return page.locator('#tickets > li').filter({ has: page.getByRole('link', { name, exact: true }) });
}

test('an agent closes a ticket, finds it among the closed ones, and reopens it', TEST_TIMEOUT, async () => {
  const ticket = await file('Closing Carla', '+15550101010', 'Please close me.');
  const { page, problems } = await dashboard('agent1');
  await expectText(item(page, 'Closing Carla').locator('.ticket-name'), 'Closing Carla');

  await page.getByRole('link', { name: 'Closing Carla', exact: true }).click();
  const detail = page.locator('#ticket-detail');
  await expectText(detail.locator('#detail-heading'), 'Closing Carla');
  await expectText(detail.locator('#detail-status'), 'Open.');
  await expectText(detail.locator('#calls-status'), 'No calls yet.');

  await page.getByRole('button', { name: 'Close ticket' }).click();
  await expectText(detail.locator('#detail-status'), /^Closed by agent1 on .+\.$/);
  await expectText(detail.locator('#detail-note'), 'Ticket closed.');
  const closed = (await listed('?status=closed')).find((t) => t.id === ticket.id);
  assert.equal(closed.status, 'closed');
  assert.equal(closed.closed_by, 'agent1');
  assert.equal((await listed('?status=open')).some((t) => t.id === ticket.id), false);
  await expectText(page.locator('#tickets'), /^(?!.*Closing Carla)/s);

  await page.getByRole('button', { name: 'Closed', exact: true }).click();
  assert.equal(await page.getByRole('button', { name: 'Closed', exact: true }).getAttribute('aria-pressed'), 'true');
  await expectText(item(page, 'Closing Carla').locator('.ticket-closed'), 'Closed');

  await page.getByRole('button', { name: 'Reopen ticket' }).click();
  await expectText(detail.locator('#detail-status'), /^Open: reopened by agent1 on .+\.$/);
  const reopened = (await listed('?status=open')).find((t) => t.id === ticket.id);
  assert.deepEqual(reopened.status_history.map((change) => [change.status, change.by]), [
    ['closed', 'agent1'],
    ['open', 'agent1'],
  ]);
  // Until the ledger answers for this ticket, its calls are a 404 the page expects.
  assert.deepEqual(unexpected(problems, 404), []);
});

test('an agent adds a note, shown as text; a customer filing again adds to the open ticket', TEST_TIMEOUT, async () => {
  const ticket = await file('Noted Nora', '+15550202020', 'The net is torn.');
  const { page, problems } = await dashboard('agent1');
  await page.getByRole('link', { name: 'Noted Nora', exact: true }).click();
  await expectText(page.locator('#notes'), 'No notes yet.');

  const markup = 'Called back <img src=x onerror="window.__pwned=1">\nwill send a <b>new</b> net';
  await page.getByLabel('Add a note').fill(markup);
  await page.getByRole('button', { name: 'Add note' }).click();
  await expectText(page.locator('#detail-note'), 'Note added.');
  await expectText(page.locator('#notes .note-text'), markup);
  await expectText(page.locator('#notes .note-by'), 'agent1');
  assert.equal(await page.getByLabel('Add a note').inputValue(), '', 'the form is cleared');
  assert.equal(await page.locator('#ticket-detail img, #ticket-detail b').count(), 0, 'a note is text, never markup');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await expectText(item(page, 'Noted Nora').locator('.ticket-notes'), '1 note');
  const stored = (await listed('?status=open')).find((t) => t.id === ticket.id);
  assert.deepEqual(stored.notes.map((n) => [n.author, n.by, n.text]), [['agent', 'agent1', markup]]);

  // The customer files again from the same number: the page says it went to their open ticket.
  const customer = await visit('/');
  await customer.page.getByLabel('Your name').fill('Nora');
  await customer.page.getByLabel('Phone number').fill('+1 555 020 2020');
  await customer.page.getByLabel('What happened?').fill('Any news on the net?');
  await customer.page.getByRole('button', { name: 'Send ticket' }).click();
  await expectText(customer.page.locator('#ticket-notice'),
    'Thank you, Nora. We added this to your open ticket and will call you at +1 555 020 2020.');
  const after = (await listed('?phone=%2B15550202020'));
  assert.equal(after.length, 1, 'no second ticket');
  assert.deepEqual(after[0].notes.map((n) => [n.author, n.text]), [
    ['agent', markup],
    ['customer', 'Any news on the net?'],
  ]);

  await page.getByRole('button', { name: 'Refresh' }).click();
  await expectText(item(page, 'Noted Nora').locator('.ticket-notes'), '2 notes');
  assert.deepEqual(unexpected(problems, 404), []);
  assert.deepEqual(unexpected(customer.problems), []);
});

test('an agent finds tickets by number, as typed, and by the start of a name', TEST_TIMEOUT, async () => {
  await file('Searchable Sam', '+15550303030', 'Find me by number.');
  await file('Grace Searched', '+15550404040', 'Find me by name.');
  const { page, problems } = await dashboard('agent2');
  const search = page.getByLabel('Find by number or name');
  const names = () => page.locator('#tickets .ticket-open').allTextContents();
  const listShows = async (expected) => {
    let shown = [];
    await eventually(async () => {
      shown = await names();
      return JSON.stringify(shown) === JSON.stringify(expected);
    }, () => `the list shows ${JSON.stringify(shown)}, not ${JSON.stringify(expected)}`);
  };

  // Searched at once, while the first list may still be loading: the search is what shows.
  await search.fill('+1 (555) 030-3030');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await listShows(['Searchable Sam']);

  await search.fill('grace s');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await listShows(['Grace Searched']);
  assert.equal(await page.getByRole('button', { name: 'Clear' }).isVisible(), true);

  await search.fill('+1 555 999 9999');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expectText(page.locator('#tickets-status'), 'No ticket matches.');

  await page.getByRole('button', { name: 'Clear' }).click();
  await expectText(page.locator('#tickets'), /Searchable Sam.*Grace Searched|Grace Searched.*Searchable Sam/s);
  assert.deepEqual(unexpected(problems), []);
});
