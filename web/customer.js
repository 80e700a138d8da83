// The customer page: file a ticket, or call support from the browser.
'use strict';

(function () {
  const W = window.Warmline;

  // ---- Ticket form -------------------------------------------------------------------------

  const form = document.getElementById('ticket-form');
  const submit = document.getElementById('ticket-submit');
  const notice = document.getElementById('ticket-notice');
  const FIELDS = { name: 'Your name', phone_number: 'The phone number', description: 'The description' };

  function showFieldErrors(errors) {
    let first = null;
    for (const field of Object.keys(FIELDS)) {
      const input = document.getElementById(field);
      const message = document.getElementById(`${field}-error`);
      const problem = errors[field];
      if (problem) {
        input.setAttribute('aria-invalid', 'true');
        message.textContent = `${FIELDS[field]} ${problem}.`;
        message.hidden = false;
        first = first || input;
      } else {
        input.removeAttribute('aria-invalid');
        message.textContent = '';
        message.hidden = true;
      }
    }
    return first;
  }

  function showNotice(text, tone) {
    notice.textContent = text;
    if (tone) {
      notice.dataset.tone = tone;
    } else {
      delete notice.dataset.tone;
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showNotice('');
    submit.disabled = true;
    const ticket = {
      name: form.elements.name.value,
      phone_number: W.normalizePhone(form.elements.phone_number.value),
      description: form.elements.description.value,
    };
    try {
      const result = await W.api('POST', '/tickets', ticket);
      if (result.status === 201) {
        showFieldErrors({});
        form.reset();
        // Filed again while this number's ticket is open: the server added it to that ticket.
        const what = result.data.added_to_open_ticket === true
          ? 'We added this to your open ticket'
          : 'We have your ticket';
        showNotice(`Thank you, ${result.data.name}. ${what} and will call you at ` +
          `${W.formatPhone(result.data.phone_number)}.`);
        rememberTicket(result.data);
      } else if (result.status === 400 && result.data.fields) {
        const first = showFieldErrors(result.data.fields);
        showNotice('Please correct the highlighted fields.', 'error');
        if (first) {
          first.focus();
        }
      } else if (result.status === 413) {
        showNotice('That is too long to send. Please shorten the description.', 'error');
      } else if (result.status === 503) {
        showNotice('We could not save your ticket just now. Please try again in a moment.', 'error');
      } else {
        showNotice(result.data.error ? `We could not save your ticket: ${result.data.error}.`
          : 'We could not save your ticket. Please try again.', 'error');
      }
    } catch (_) {
      showNotice('We could not reach the server. Check your internet connection and try again.', 'error');
    } finally {
      submit.disabled = false;
    }
  });

  // ---- What the call is about ---------------------------------------------------------------

  // The tickets filed from this browser, so a caller can say which one they call about: only
  // their ids (unguessable, which is what lets the agent trust the pick) and a short label.
  const TICKETS_KEY = 'warmline.tickets';
  const TICKETS_KEPT = 5;
  const callerName = document.getElementById('caller-name');
  const callerTicket = document.getElementById('caller-ticket');
  const callerTicketField = document.getElementById('caller-ticket-field');

  function rememberedTickets() {
    try {
      const stored = JSON.parse(window.localStorage.getItem(TICKETS_KEY) || '[]');
      return Array.isArray(stored) ? stored.filter((t) => t && typeof t.id === 'string' && typeof t.label === 'string') : [];
    } catch (_) {
      return [];
    }
  }

  function showRememberedTickets() {
    const tickets = rememberedTickets();
    callerTicket.replaceChildren(new Option('Something new', ''), ...tickets.map((t) => new Option(t.label, t.id)));
    callerTicketField.hidden = tickets.length === 0;
  }

  function rememberTicket(ticket) {
    const short = ticket.description.length > 40 ? `${ticket.description.slice(0, 40)}…` : ticket.description;
    const entry = { id: ticket.id, label: `Your ticket: ${short}` };
    const tickets = [entry, ...rememberedTickets().filter((t) => t.id !== ticket.id)].slice(0, TICKETS_KEPT);
    try {
      window.localStorage.setItem(TICKETS_KEY, JSON.stringify(tickets));
    } catch (_) {
      // Storage refused (private browsing): the pick is a convenience, the ticket is filed.
    }
    showRememberedTickets();
  }

  /** What the caller says before calling, as the Voice SDK's params; only what they filled in. */
  function callParams() {
    const params = {};
    const name = callerName.value.trim();
    if (name) {
      params.callerName = name;
    }
    if (callerTicket.value) {
      params.ticketId = callerTicket.value;
    }
    return params;
  }

  showRememberedTickets();

  // ---- Call support ------------------------------------------------------------------------

  const callButton = document.getElementById('call-button');
  const hangupButton = document.getElementById('hangup-button');
  const status = document.getElementById('call-status');
  const timer = new W.CallTimer(document.getElementById('call-timer'));
  let device = null;
  let call = null;

  function setCallControls(inCall) {
    callButton.hidden = inCall;
    callButton.disabled = false;
    hangupButton.hidden = !inCall;
  }

  function callEnded(text, tone) {
    const seconds = timer.stop();
    const hadFocus = document.activeElement === hangupButton;
    call = null;
    setCallControls(false);
    if (hadFocus) {
      callButton.focus();
    }
    W.setStatus(status, seconds > 0 ? `${text} (${W.formatDuration(seconds)}).` : `${text}.`, tone);
  }

  // The device is made on the first click, not on page load: browsers only allow audio after a
  // user gesture. It is kept for later calls and handed fresh tokens before its own expires.
  async function ensureDevice() {
    if (device) {
      return device;
    }
    const sdk = W.voiceSdk();
    if (!sdk) {
      throw Object.assign(new Error('the Voice SDK did not load'), { sdkMissing: true });
    }
    // Without the cookie: even in a signed-in agent's browser, this page is a customer's.
    const { token } = await W.fetchToken({ anonymous: true });
    device = new sdk.Device(token, W.DEVICE_OPTIONS);
    device.on('error', (error) => {
      console.warn('Voice SDK device error', error && error.code, error && error.message);
      if (!call) {
        W.setStatus(status, W.describeCallError(error), 'error');
      }
    });
    device.on('tokenWillExpire', async () => {
      try {
        const fresh = await W.fetchToken({ anonymous: true });
        device.updateToken(fresh.token);
      } catch (error) {
        console.warn('could not refresh the call token', error);
      }
    });
    return device;
  }

  function watchCall(current) {
    current.on('ringing', () => {
      if (call === current) {
        W.setStatus(status, 'Ringing…', 'busy');
      }
    });
    current.on('accept', () => {
      if (call === current) {
        W.setStatus(status, 'Connected. Please stay on the line.', 'ok');
        timer.start();
      }
    });
    current.on('disconnect', () => {
      if (call === current) {
        callEnded('Call ended');
      }
    });
    current.on('cancel', () => {
      if (call === current) {
        callEnded('The call was cancelled');
      }
    });
    current.on('reject', () => {
      if (call === current) {
        callEnded('Support could not take the call. Please try again or leave a ticket', 'error');
      }
    });
    current.on('error', (error) => {
      console.warn('Voice SDK call error', error && error.code, error && error.message);
      if (call === current) {
        timer.stop();
        W.setStatus(status, W.describeCallError(error), 'error');
      }
    });
  }

  callButton.addEventListener('click', async () => {
    if (call) {
      return;
    }
    callButton.disabled = true;
    timer.hide();
    W.setStatus(status, 'Connecting…', 'busy');
    try {
      const ready = await ensureDevice();
      const params = callParams();
      // Nothing said: no params at all, as a call always was.
      const current = await (Object.keys(params).length > 0 ? ready.connect({ params }) : ready.connect());
      call = current;
      watchCall(current);
      setCallControls(true);
      hangupButton.focus();
    } catch (error) {
      console.warn('could not start the call', error);
      call = null;
      setCallControls(false);
      const message = error && error.sdkMissing
        ? 'Calling from the browser is not available right now. Please leave a ticket instead.'
        : W.describeCallError(error);
      W.setStatus(status, message, 'error');
    }
  });

  hangupButton.addEventListener('click', () => {
    const current = call;
    if (current) {
      current.disconnect();
      // A call that already failed may never say 'disconnect': end it here either way.
      if (call === current) {
        callEnded('Call ended');
      }
    }
  });
})();
