// The `make dev` stack for browser tests, started like tests/e2e/test_dev_stack.py starts it:
// scripts/dev.sh on free ports, with a fake Twilio REST API and a known auth token, so the
// tests can sign webhooks the way Twilio does, and one known password for every seeded agent
// (WARMLINE_DEV_AGENT_PASSWORD), so they can sign in.

import { execFile, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const AUTH_TOKEN = 'browser-auth-token';
export const ACCOUNT_SID = 'AC' + '2'.repeat(32);
export const TWILIO_NUMBER = '+15552220000';
// The API key Warmline calls Twilio's REST API with (HTTP Basic auth: key, secret).
export const API_KEY = 'SK' + '3'.repeat(32);
export const API_SECRET = 'browser-api-secret';
// What the fake Twilio serves as a recording's MP3 (not real audio: only its bytes matter).
export const RECORDING_BYTES = Buffer.from('ID3\u0003\u0000\u0000\u0000\u0000\u0000\u0000warmline-browser-test-voicemail', 'latin1');
// Every agent dev.sh seeds (the roster: agent1, agent2) gets this password.
export const AGENT_PASSWORD = 'browser-test-agent-password';
export const AGENTS = ['agent1', 'agent2'];

const STARTUP_TIMEOUT_MS = 10 * 60 * 1000; // the first start may compile the workspace
const STOP_TIMEOUT_MS = 20 * 1000;
const REQUEST_TIMEOUT_MS = 30 * 1000;

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Answers `Calls.json` like Twilio (201 with a fresh CallSid, kept as the request's `sid`), a
 * recording's `.mp3` with `RECORDING_BYTES`, and the Participants API's update (200, the
 * participant) and removal (204), and remembers every request; anything else is a 404.
 */
export async function startFakeTwilio() {
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const form = {};
      for (const [name, value] of new URLSearchParams(Buffer.concat(chunks).toString())) {
        (form[name] = form[name] || []).push(value);
      }
      const recorded = { method: req.method, path: req.url, auth: req.headers.authorization, form };
      requests.push(recorded);
      const isCalls = req.method === 'POST' && /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Calls\.json$/.test(req.url);
      const isRecording =
        req.method === 'GET' && /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Recordings\/RE[0-9a-f]{32}\.mp3$/.test(req.url);
      if (isRecording) {
        res.writeHead(200, { 'Content-Type': 'audio/mpeg', 'Content-Length': RECORDING_BYTES.length });
        res.end(RECORDING_BYTES);
        return;
      }
      const participant = /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Conferences\/(CF[0-9a-f]{32})\/Participants\/(CA[0-9a-f]{32})\.json$/.exec(req.url);
      if (participant && req.method === 'DELETE') {
        res.writeHead(204);
        res.end();
        return;
      }
      if (participant && req.method === 'POST') {
        const payload = JSON.stringify({
          conference_sid: participant[1],
          call_sid: participant[2],
          hold: form.Hold?.[0] === 'true',
          muted: false,
          status: 'connected',
        });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
        res.end(payload);
        return;
      }
      if (isCalls) {
        recorded.sid = 'CA' + requests.length.toString(16).padStart(32, '0');
      }
      const body = isCalls ? { sid: recorded.sid, status: 'queued' } : { code: 20404, message: 'not found', status: 404 };
      const payload = JSON.stringify(body);
      res.writeHead(isCalls ? 201 : 404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
      res.end(payload);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** X-Twilio-Signature: HMAC-SHA1 over the URL and the sorted form parameters, Base64. */
export function twilioSignature(url, params) {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, name) => acc + name + params[name], url);
  return createHmac('sha1', AUTH_TOKEN).update(data, 'utf8').digest('base64');
}

async function request(method, url, { body, headers, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  try {
    const response = await fetch(url, {
      method,
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text };
  } catch (error) {
    // fetch's own errors name neither the request nor the cause.
    const cause = error.cause ? `: ${error.cause.code || error.cause.message}` : '';
    throw new Error(`${method} ${url} failed: ${error.name} ${error.message}${cause}`);
  }
}

export async function startStack() {
  const fakeTwilio = await startFakeTwilio();
  const port = await freePort();
  const dynamodbPort = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const state = mkdtempSync(join(tmpdir(), 'warmline-browser-'));
  const settings = join(state, 'settings.env');
  writeFileSync(
    settings,
    [
      `TWILIO_ACCOUNT_SID=${ACCOUNT_SID}`,
      `TWILIO_AUTH_TOKEN=${AUTH_TOKEN}`,
      `TWILIO_API_BASE_URL=${fakeTwilio.url}`,
      `TWILIO_API_KEY=${API_KEY}`,
      `TWILIO_API_SECRET=${API_SECRET}`,
      `TWILIO_NUMBER=${TWILIO_NUMBER}`,
      `PUBLIC_BASE_URL=${base}`,
      '',
    ].join('\n'),
  );
  const logPath = join(state, 'dev.log');
  const log = openSync(logPath, 'w');
  const child = spawn('bash', ['scripts/dev.sh'], {
    cwd: ROOT,
    env: {
      ...process.env,
      WARMLINE_PORT: String(port),
      WARMLINE_DYNAMODB_PORT: String(dynamodbPort),
      WARMLINE_ENV_FILE: settings,
      WARMLINE_STATE_DIR: state,
      WARMLINE_DEV_AGENT_PASSWORD: AGENT_PASSWORD,
      // The functions dev.sh built, for the whole run: an edit elsewhere in the tree while the
      // tests run must not rebuild and restart them mid-test.
      WARMLINE_NO_RELOAD: '1',
    },
    stdio: ['ignore', log, log],
    detached: true, // its own process group, so stopping it stops the emulator and the functions
  });
  closeSync(log);
  let exited = false;
  const exitedPromise = new Promise((resolve) => child.on('exit', () => {
    exited = true;
    resolve();
  }));
  // If the test runner dies first, take the stack down with it.
  const killOnExit = () => {
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (_) {
        // already gone
      }
    }
  };
  process.on('exit', killOnExit);

  /**
   * A request as the pages make it: same-origin (`Origin` is the stack's own unless `origin`
   * says otherwise, `null` to leave it out) and with the session `cookie` when given.
   */
  const call = (method, path, { body, headers = {}, cookie, origin = base } = {}) => {
    const all = { ...headers };
    if (origin !== null) {
      all.Origin = origin;
    }
    if (cookie) {
      all.Cookie = cookie;
    }
    return request(method, base + path, { body, headers: all });
  };

  const stack = {
    base,
    fakeTwilio,
    logPath,
    log: () => readFileSync(logPath, 'utf8'),
    request: call,
    get: (path, options = {}) => call('GET', path, { ...options, origin: null }),
    postJson: (path, value, options = {}) =>
      call('POST', path, { ...options, body: JSON.stringify(value), headers: { 'Content-Type': 'application/json' } }),
    putJson: (path, value, options = {}) =>
      call('PUT', path, { ...options, body: JSON.stringify(value), headers: { 'Content-Type': 'application/json' } }),
    postForm: (path, params, options = {}) =>
      call('POST', path, {
        ...options,
        body: new URLSearchParams(params).toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      }),
    /** `POST /login` as the form sends it; `cookie` is `name=value` of the session, if one was set. */
    async signIn(agent, password = AGENT_PASSWORD) {
      const response = await stack.postForm('/login', { agent_id: agent, password, next: '/dashboard' });
      const setCookie = response.headers.getSetCookie();
      const session = setCookie.map((header) => header.split(';')[0]).find((pair) => /session=/.test(pair));
      return { ...response, setCookie, cookie: session || null };
    },
    /** The session cookie of `agent`, or a failed assertion saying why there is none. */
    async sessionOf(agent) {
      const signedIn = await stack.signIn(agent);
      if (signedIn.status !== 303 || !signedIn.cookie) {
        throw new Error(`${agent} could not sign in: ${signedIn.status} ${signedIn.text.slice(0, 300)}`);
      }
      return signedIn.cookie;
    },
    /** The admin command line (`warmline-admin`) against this stack's Agents table. */
    admin: (...args) => runAdmin(state, dynamodbPort, args),
    /**
     * A webhook as Twilio sends it: form-encoded and signed for PUBLIC_BASE_URL + path, naming
     * the account as every Twilio webhook does.
     */
    webhook: (path, params) => {
      const sent = { AccountSid: ACCOUNT_SID, ...params };
      return request('POST', base + path, {
        body: new URLSearchParams(sent).toString(),
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          'X-Twilio-Signature': twilioSignature(base + path, sent),
        },
      });
    },
    /** Stops everything; keeps the stack's log at `keepLogAt` when given. */
    async stop(keepLogAt) {
      if (!exited) {
        try {
          process.kill(-child.pid, 'SIGINT');
        } catch (_) {
          // already gone
        }
        const timedOut = await Promise.race([
          exitedPromise.then(() => false),
          new Promise((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS, true)),
        ]);
        if (timedOut) {
          killOnExit();
          await exitedPromise;
        }
      }
      // dev.sh is gone, but the functions it started may take a moment to follow.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (_) {
        // the group is empty
      }
      process.off('exit', killOnExit);
      await fakeTwilio.close();
      if (keepLogAt) {
        copyFileSync(logPath, keepLogAt);
      }
      rmSync(state, { recursive: true, force: true });
    },
  };

  try {
    await waitUntilServing(stack, () => exited);
  } catch (error) {
    await stack.stop().catch(() => {});
    throw error;
  }
  return stack;
}

/**
 * Until every function answers. `cargo lambda watch` starts (and, after a source change,
 * rebuilds) a function on its first request, so each is asked until it answers: a test's
 * first click is then never the one that waits. None of these requests changes any state.
 */
async function waitUntilServing(stack, hasExited) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  const json = { 'Content-Type': 'application/json' };
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
  const sameOrigin = { Origin: stack.base };
  const probes = [
    ['GET', '/', {}, 200],
    ['GET', '/login', {}, 200],
    ['GET', '/dashboard', {}, 303],
    ['GET', '/tickets?limit=1', {}, 401],
    ['POST', '/token', { body: '{}', headers: { ...json, ...sameOrigin } }, 200],
    ['POST', '/conference/agent2/call', { body: '{}', headers: { ...json, ...sameOrigin } }, 401],
    ['GET', '/presence', {}, 401],
    ['POST', '/call/connect', { body: '', headers: form }, 403],
    ['POST', '/conference/connect/client', { body: '', headers: form }, 403],
    ['POST', `/conference/CA${'0'.repeat(32)}/connect/agent1`, { body: '', headers: form }, 403],
    ['POST', `/conference/CA${'0'.repeat(32)}/events`, { body: '', headers: form }, 403],
    ['POST', `/voicemail/CA${'0'.repeat(32)}/recording`, { body: '', headers: form }, 403],
  ];
  for (const [method, path, options, expected] of probes) {
    let last = 'no answer yet';
    for (;;) {
      if (hasExited()) {
        throw new Error(`dev.sh exited early:\n${stack.log()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${method} ${path} did not answer ${expected} in time (${last}):\n${stack.log()}`);
      }
      try {
        const remaining = Math.max(1000, deadline - Date.now());
        const response = await request(method, stack.base + path, { ...options, timeoutMs: remaining });
        if (response.status === expected) {
          break;
        }
        last = `${response.status} ${response.text.slice(0, 200)}`;
      } catch (error) {
        last = error.message;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** The Agents table's name, as dev.sh gave it to the functions. */
function agentsTable(state) {
  const settings = readFileSync(join(state, 'functions.env'), 'utf8');
  const line = settings.split('\n').find((l) => /^AGENTS?_TABLE=./.test(l));
  if (!line) {
    throw new Error(`no AGENTS_TABLE in ${join(state, 'functions.env')}`);
  }
  return line.slice(line.indexOf('=') + 1).trim();
}

/**
 * `warmline-admin --table <Agents> ...args` against the stack's emulator: the binary dev.sh
 * built (and seeded the agents with), so no build races the running stack.
 */
function runAdmin(state, dynamodbPort, args) {
  const binary = join(resolvePath(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'debug', 'warmline-admin');
  const endpoint = `http://127.0.0.1:${dynamodbPort}`;
  const argv = ['--endpoint-url', endpoint, '--table', agentsTable(state), ...args];
  const env = {
    ...process.env,
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  };
  return new Promise((resolve, reject) => {
    execFile(binary, argv, { cwd: ROOT, env, timeout: 60 * 1000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`warmline-admin ${args.join(' ')} failed (${error.code}):\n${stderr}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}
