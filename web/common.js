// Helpers both pages share: the JSON API, phone and duration formatting, call timers and
// human messages for the Voice SDK's errors. Everything user-provided is rendered with
// textContent, never as HTML.
'use strict';

(function () {
  /**
   * A JSON request to our own API; never throws for HTTP errors, only for network failures.
   * `anonymous` leaves the session cookie out, so the answer is the one anybody would get.
   */
  async function api(method, path, body, { anonymous = false } = {}) {
    const options = {
      method,
      headers: { Accept: 'application/json' },
      credentials: anonymous ? 'omit' : 'same-origin',
    };
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { status: response.status, ok: response.ok, data: data || {} };
  }

  /**
   * `POST /token`: the signed-in agent's token when the session cookie goes along, else a
   * customer's. The server decides who it is for; the caller checks `identity`.
   */
  async function fetchToken({ anonymous = false } = {}) {
    const result = await api('POST', '/token', {}, { anonymous });
    if (!result.ok || typeof result.data.token !== 'string' || typeof result.data.identity !== 'string') {
      const error = new Error(result.data.error || `token request failed (${result.status})`);
      error.status = result.status;
      throw error;
    }
    return result.data;
  }

  // Two-digit country codes; 1 and 7 are the only one-digit ones, every other code has three.
  // Enough to group a number for reading; the raw E.164 is what gets dialed.
  const TWO_DIGIT_CODES = new Set(
    ('20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 ' +
      '60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98').split(' '),
  );

  /** `+15551234567` → `+1 555 123 4567`; other countries grouped in threes. */
  function formatPhone(e164) {
    const match = /^\+([1-9]\d{1,14})$/.exec(e164 || '');
    if (!match) {
      return e164 || '';
    }
    const digits = match[1];
    let codeLength = 3;
    if (digits[0] === '1' || digits[0] === '7') {
      codeLength = 1;
    } else if (TWO_DIGIT_CODES.has(digits.slice(0, 2))) {
      codeLength = 2;
    }
    const code = digits.slice(0, codeLength);
    const national = digits.slice(codeLength);
    const groups = [];
    for (let i = 0; i < national.length; i += 3) {
      groups.push(national.slice(i, i + 3));
    }
    // A lone trailing digit reads badly: fold it into the group before (… 123 4567).
    if (groups.length > 1 && groups[groups.length - 1].length === 1) {
      const last = groups.pop();
      groups[groups.length - 1] += last;
    }
    return ['+' + code].concat(groups).join(' ');
  }

  /** What people type (`+1 (555) 123-4567`) → what the API expects (`+15551234567`). */
  function normalizePhone(input) {
    return input.trim().replace(/[\s().\-]/g, '');
  }

  /** Seconds → `mm:ss`, or `h:mm:ss` past an hour. */
  function formatDuration(totalSeconds) {
    const seconds = Math.max(0, Math.floor(totalSeconds));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const mmss = `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
    return h > 0 ? `${h}:${mmss}` : mmss;
  }

  /** A running mm:ss display of a call's length. */
  class CallTimer {
    constructor(element) {
      this.element = element;
      this.startedAt = null;
      this.interval = null;
    }

    start() {
      this.stop();
      this.startedAt = Date.now();
      this.element.hidden = false;
      this.render();
      this.interval = setInterval(() => this.render(), 1000);
    }

    /** Stops the clock and returns the call's length in seconds (0 if it never started). */
    stop() {
      if (this.interval !== null) {
        clearInterval(this.interval);
        this.interval = null;
      }
      const elapsed = this.startedAt === null ? 0 : (Date.now() - this.startedAt) / 1000;
      this.startedAt = null;
      return elapsed;
    }

    hide() {
      this.stop();
      this.element.hidden = true;
      this.element.textContent = '';
    }

    render() {
      if (this.startedAt !== null) {
        this.element.textContent = formatDuration((Date.now() - this.startedAt) / 1000);
      }
    }
  }

  /** Sets a status line's text and tone (`ok`, `busy`, `error`, or none). */
  function setStatus(element, text, tone) {
    element.textContent = text;
    if (tone) {
      element.dataset.tone = tone;
    } else {
      delete element.dataset.tone;
    }
  }

  /** A message a person can act on, for an error from the Voice SDK or from our API. */
  function describeCallError(error) {
    const code = error && typeof error.code === 'number' ? error.code : null;
    if (code === 31208 || code === 31401 || code === 31402 || (error && error.name === 'NotAllowedError')) {
      return 'The browser blocked the microphone. Allow microphone access for this page and try again.';
    }
    if (code === 31201 || code === 31400 || (error && error.name === 'NotFoundError')) {
      return 'No microphone was found. Connect one and try again.';
    }
    if (code === 20101 || code === 20103 || code === 20104 || code === 31204 || code === 31205) {
      return 'The calling session expired. Reload the page and try again.';
    }
    if (code === 31000 || code === 31005 || code === 31009 || code === 53000 || code === 53405) {
      return 'The connection to the calling service was lost. Check your internet connection and try again.';
    }
    if (error && error.status === 503) {
      return 'The service is busy right now. Please try again in a moment.';
    }
    return 'Something went wrong with the call. Please try again.';
  }

  /** `describeCallError` plus the code, for agents who may need to report it. */
  function describeCallErrorWithCode(error) {
    const message = describeCallError(error);
    return error && typeof error.code === 'number' ? `${message} (error ${error.code})` : message;
  }

  /** The Voice SDK, if its script loaded. */
  function voiceSdk() {
    return typeof window.Twilio === 'object' && window.Twilio && typeof window.Twilio.Device === 'function'
      ? window.Twilio
      : null;
  }

  // Opus sounds best; PCMU is what every path to a phone supports.
  const DEVICE_OPTIONS = { codecPreferences: ['opus', 'pcmu'] };

  window.Warmline = {
    api,
    fetchToken,
    formatPhone,
    normalizePhone,
    formatDuration,
    CallTimer,
    setStatus,
    describeCallError,
    describeCallErrorWithCode,
    voiceSdk,
    DEVICE_OPTIONS,
  };
})();
