// The agent console: the signed-in agent goes online, takes incoming support calls, calls
// customers back from their tickets, and dials a colleague into a live call (warm transfer).
// Who the agent is comes from the session the server checked; the page only shows it. When the
// session ends (signed out elsewhere, expired, account disabled), the server answers 401, and
// the agent is sent to sign in again, but never in the middle of a call.
'use strict';

(function () {
  const W = window.Warmline;
  const $ = (id) => document.getElementById(id);

  const agentId = $('agent-id').textContent.trim();
  const agentName = $('agent-name').textContent.trim() || agentId;
  const sessionStatus = $('session-status');
  const signInAgain = $('signin-again');
  const signOutForm = $('signout-form');
  const onlineButton = $('online-button');
  const deviceStatus = $('device-status');
  const callStatus = $('call-status');
  const timer = new W.CallTimer($('call-timer'));
  const incomingActions = $('incoming-actions');
  const answerButton = $('answer-button');
  const rejectButton = $('reject-button');
  const callActions = $('call-actions');
  const muteButton = $('mute-button');
  const hangupButton = $('hangup-button');
  const transferButton = $('transfer-button');
  const transferStatus = $('transfer-status');
  const ticketList = $('tickets');
  const ticketsStatus = $('tickets-status');
  const refreshButton = $('refresh-button');
  const moreButton = $('more-button');

  let device = null;
  let deviceState = 'offline';
  let call = null;
  let callLabel = '';

  // ---- Session ----------------------------------------------------------------------------

  const LOGIN_URL = '/login?next=%2Fdashboard';
  // When the dashboard itself was served, the session was valid. If the API still says 401 right
  // after a trip to the sign-in page, going there again would only loop: stay and say so.
  const RELOGIN_KEY = 'warmline.relogin';
  const RELOGIN_LOOP_MS = 15 * 1000;
  let sessionEnded = false;

  function recentlySentToLogin() {
    try {
      const at = Number(window.sessionStorage.getItem(RELOGIN_KEY));
      return Number.isFinite(at) && at > 0 && Date.now() - at < RELOGIN_LOOP_MS;
    } catch (_) {
      return false;
    }
  }

  /** The session works: a later 401 is a new one, worth a trip to the sign-in page. */
  function forgetLoginTrip() {
    try {
      window.sessionStorage.removeItem(RELOGIN_KEY);
    } catch (_) {
      // nothing kept, nothing to forget
    }
  }

  function goToLogin() {
    if (recentlySentToLogin()) {
      W.setStatus(sessionStatus, 'Your session could not be confirmed. Sign in again, or reload the page.', 'error');
      signInAgain.hidden = false;
      return;
    }
    try {
      window.sessionStorage.setItem(RELOGIN_KEY, String(Date.now()));
    } catch (_) {
      // Private browsing: no loop guard, the server's redirects still end somewhere sensible.
    }
    window.location.assign(LOGIN_URL);
  }

  /**
   * The server no longer knows this agent. With no call, straight to the sign-in page; during
   * a call the agent keeps talking and is told, and goes there when the call ends.
   */
  function endSession() {
    if (!sessionEnded) {
      sessionEnded = true;
      console.warn('the session has ended');
    }
    signInAgain.hidden = false;
    if (call) {
      W.setStatus(sessionStatus, 'Your session has ended. You can finish this call; then sign in again.', 'error');
      return;
    }
    W.setStatus(sessionStatus, 'Your session has ended. Taking you to sign in again…', 'error');
    if (device) {
      goOffline();
    }
    goToLogin();
  }

  /** `W.api` for the agent's own endpoints: a 401 ends the session here too. */
  async function agentApi(method, path, body) {
    const result = await W.api(method, path, body);
    if (result.status === 401) {
      endSession();
    }
    return result;
  }

  /** A token for the signed-in agent; a customer's token means the session is gone. */
  async function fetchAgentToken() {
    let fresh;
    try {
      fresh = await W.fetchToken();
    } catch (error) {
      if (error && error.status === 401) {
        endSession();
        error.sessionEnded = true;
      }
      throw error;
    }
    if (fresh.identity !== agentId) {
      endSession();
      throw Object.assign(new Error('signed out: the server issued a token for someone else'), { sessionEnded: true });
    }
    return fresh;
  }

  signOutForm.addEventListener('submit', (event) => {
    if (call) {
      event.preventDefault();
      W.setStatus(deviceStatus, 'Finish the call before signing out.', 'error');
      return;
    }
    // Leaving the page would tear the device down anyway; this unregisters it first.
    if (device) {
      goOffline();
    }
  });

  // ---- Device ------------------------------------------------------------------------------

  function showDeviceState(state, detail) {
    deviceState = state;
    const online = state === 'registered' || state === 'registering';
    onlineButton.textContent = online ? 'Go offline' : 'Go online';
    switch (state) {
      case 'registering':
        W.setStatus(deviceStatus, 'Going online…', 'busy');
        break;
      case 'registered':
        W.setStatus(deviceStatus, `Online as ${agentName}: ready for calls.`, 'ok');
        break;
      case 'error':
        W.setStatus(deviceStatus, detail, 'error');
        break;
      default:
        W.setStatus(deviceStatus, 'Offline: you will not receive calls.');
    }
  }

  // Made on a click (browsers allow audio only after a user gesture): going online, or calling
  // a customer back.
  async function ensureDevice() {
    if (device) {
      return device;
    }
    const sdk = W.voiceSdk();
    if (!sdk) {
      throw Object.assign(new Error('the Voice SDK did not load'), { sdkMissing: true });
    }
    const { token } = await fetchAgentToken();
    if (device) {
      return device;
    }
    const created = new sdk.Device(token, Object.assign({ closeProtection: true }, W.DEVICE_OPTIONS));
    device = created;
    created.on('registering', () => device === created && showDeviceState('registering'));
    created.on('registered', () => device === created && showDeviceState('registered'));
    created.on('unregistered', () => device === created && showDeviceState('unregistered'));
    created.on('error', (error) => {
      console.warn('Voice SDK device error', error && error.code, error && error.message);
      if (device === created) {
        showDeviceState('error', W.describeCallErrorWithCode(error));
      }
    });
    created.on('incoming', (incoming) => device === created && onIncoming(incoming));
    created.on('tokenWillExpire', async () => {
      try {
        const fresh = await fetchAgentToken();
        created.updateToken(fresh.token);
      } catch (error) {
        console.warn('could not refresh the call token', error);
        if (!(error && error.sessionEnded) && device === created) {
          showDeviceState('error', 'Could not renew your calling session. Go offline and online again.');
        }
      }
    });
    return created;
  }

  function goOffline() {
    const old = device;
    device = null;
    showDeviceState('offline');
    if (old) {
      old.destroy();
    }
  }

  onlineButton.addEventListener('click', async () => {
    if (deviceState === 'registered' || deviceState === 'registering') {
      if (call) {
        W.setStatus(deviceStatus, 'Finish the call before going offline.', 'error');
        return;
      }
      goOffline();
      return;
    }
    onlineButton.disabled = true;
    showDeviceState('registering');
    let ready = null;
    try {
      ready = await ensureDevice();
      onlineButton.disabled = false;
      await ready.register();
    } catch (error) {
      if (ready && device !== ready) {
        return; // the agent went offline meanwhile
      }
      console.warn('could not go online', error);
      if (error && error.sessionEnded) {
        showDeviceState('error', 'Signed out: you cannot go online until you sign in again.');
        return;
      }
      let message = W.describeCallErrorWithCode(error);
      if (error && error.sdkMissing) {
        message = 'The calling software did not load. Reload the page.';
      }
      showDeviceState('error', message);
    } finally {
      onlineButton.disabled = false;
    }
  });

  // ---- Calls -------------------------------------------------------------------------------

  function setTicketButtonsDisabled(disabled) {
    for (const button of ticketList.querySelectorAll('button.call-customer')) {
      button.disabled = disabled;
    }
  }

  function showControls(mode) {
    incomingActions.hidden = mode !== 'incoming';
    callActions.hidden = mode !== 'call';
    setTicketButtonsDisabled(mode !== 'idle');
  }

  function showMuted(muted) {
    muteButton.setAttribute('aria-pressed', muted ? 'true' : 'false');
    muteButton.textContent = muted ? 'Unmute' : 'Mute';
  }

  function callEnded(text, tone) {
    const seconds = timer.stop();
    const hadFocus = callActions.contains(document.activeElement) || incomingActions.contains(document.activeElement);
    call = null;
    showControls('idle');
    showMuted(false);
    W.setStatus(callStatus, seconds > 0 ? `${text} (${W.formatDuration(seconds)}).` : `${text}.`, tone);
    if (sessionEnded) {
      endSession();
      return;
    }
    if (hadFocus) {
      onlineButton.focus();
    }
  }

  function watchCall(current) {
    const mine = (handler) => (...args) => {
      if (call === current) {
        handler(...args);
      }
    };
    current.on('ringing', mine(() => W.setStatus(callStatus, `Ringing ${callLabel}…`, 'busy')));
    current.on('accept', mine(() => {
      W.setStatus(callStatus, `In call with ${callLabel}.`, 'ok');
      W.setStatus(transferStatus, '');
      showControls('call');
      timer.start();
      hangupButton.focus();
    }));
    current.on('disconnect', mine(() => callEnded('Call ended')));
    current.on('cancel', mine(() => callEnded('Missed call: the caller hung up')));
    current.on('reject', mine(() => callEnded('Call rejected')));
    current.on('mute', mine((muted) => showMuted(Boolean(muted))));
    current.on('error', (error) => {
      console.warn('Voice SDK call error', error && error.code, error && error.message);
      if (call === current) {
        W.setStatus(callStatus, W.describeCallErrorWithCode(error), 'error');
      }
    });
  }

  function onIncoming(incoming) {
    if (call || sessionEnded) {
      // The SDK already turns calls away while busy; this keeps the page's one-call model true.
      incoming.reject();
      return;
    }
    call = incoming;
    callLabel = 'a customer';
    timer.hide();
    W.setStatus(transferStatus, '');
    W.setStatus(callStatus, 'Incoming support call.', 'busy');
    watchCall(incoming);
    showControls('incoming');
  }

  answerButton.addEventListener('click', () => {
    if (call) {
      call.accept();
    }
  });

  rejectButton.addEventListener('click', () => {
    const current = call;
    if (current) {
      current.reject();
      if (call === current) {
        callEnded('Call rejected');
      }
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

  muteButton.addEventListener('click', () => {
    if (call) {
      const muted = !call.isMuted();
      call.mute(muted);
      showMuted(muted);
    }
  });

  async function callCustomer(ticket, button) {
    if (call) {
      return;
    }
    const who = `${ticket.name} at ${W.formatPhone(ticket.phone_number)}`;
    setTicketButtonsDisabled(true);
    timer.hide();
    W.setStatus(transferStatus, '');
    W.setStatus(callStatus, `Calling ${who}…`, 'busy');
    try {
      const ready = await ensureDevice();
      // The raw E.164 number: /call/connect dials exactly what it receives.
      const current = await ready.connect({ params: { phoneNumber: ticket.phone_number } });
      call = current;
      callLabel = who;
      watchCall(current);
      showControls('call');
      hangupButton.focus();
    } catch (error) {
      console.warn('could not place the call', error);
      call = null;
      showControls('idle');
      if (error && error.sessionEnded) {
        W.setStatus(callStatus, 'Signed out: sign in again to call customers.', 'error');
        return;
      }
      const message = error && error.sdkMissing
        ? 'The calling software did not load. Reload the page.'
        : W.describeCallErrorWithCode(error);
      W.setStatus(callStatus, message, 'error');
      button.focus();
    }
  }

  transferButton.addEventListener('click', async () => {
    if (!call) {
      return;
    }
    transferButton.disabled = true;
    W.setStatus(transferStatus, 'Dialing a colleague in…', 'busy');
    try {
      // The server dials the next agent on the roster; it names them in its answer.
      const result = await agentApi('POST', `/conference/${encodeURIComponent(agentId)}/call`, {});
      if (result.status === 201) {
        const colleague = typeof result.data.agent === 'string' ? result.data.agent : 'Your colleague';
        W.setStatus(transferStatus, `${colleague} is being dialed into this call. ` +
          'Stay on until they join, then hang up to leave them with the caller.', 'ok');
      } else if (result.status === 401) {
        W.setStatus(transferStatus, 'Could not dial a colleague in: you are signed out.', 'error');
      } else if (result.status === 503) {
        W.setStatus(transferStatus, 'Could not dial a colleague in: the service is busy. Try again in a moment.',
          'error');
      } else {
        const reason = result.data.error || `the server answered ${result.status}`;
        W.setStatus(transferStatus, `Could not dial a colleague in: ${reason}.`, 'error');
      }
    } catch (_) {
      W.setStatus(transferStatus, 'Could not dial a colleague in: the server could not be reached.', 'error');
    } finally {
      transferButton.disabled = false;
    }
  });

  // ---- Tickets -----------------------------------------------------------------------------

  const PAGE_SIZE = 20;
  let nextCursor = null;
  let loading = false;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) {
      return iso;
    }
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function renderTicket(ticket) {
    const item = element('li', 'ticket');
    item.dataset.ticketId = ticket.id;

    const head = element('div', 'ticket-head');
    head.append(element('h3', 'ticket-name', ticket.name));
    const time = element('time', 'ticket-time', formatTime(ticket.created_at));
    time.dateTime = ticket.created_at;
    head.append(time);

    const phone = W.formatPhone(ticket.phone_number);
    const button = element('button', 'call-customer', 'Call customer');
    button.type = 'button';
    button.setAttribute('aria-label', `Call customer ${ticket.name} at ${phone}`);
    button.disabled = Boolean(call);
    button.addEventListener('click', () => callCustomer(ticket, button));

    item.append(head, element('p', 'ticket-phone', phone), element('p', 'ticket-description', ticket.description),
      button);
    return item;
  }

  async function loadTickets(reset) {
    if (loading) {
      return;
    }
    loading = true;
    ticketList.setAttribute('aria-busy', 'true');
    refreshButton.disabled = true;
    moreButton.disabled = true;
    const hadFocus = document.activeElement === moreButton;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (!reset && nextCursor) {
      query.set('cursor', nextCursor);
    }
    try {
      const result = await agentApi('GET', `/tickets?${query}`);
      if (result.status === 401) {
        W.setStatus(ticketsStatus, 'Sign in again to see the tickets.', 'error');
        return;
      }
      if (!result.ok || !Array.isArray(result.data.tickets)) {
        const reason = result.status === 503 ? 'the service is busy, try again in a moment'
          : result.data.error || `the server answered ${result.status}`;
        W.setStatus(ticketsStatus, `Could not load tickets: ${reason}.`, 'error');
        return;
      }
      forgetLoginTrip();
      if (reset) {
        ticketList.replaceChildren();
      }
      const added = result.data.tickets.map(renderTicket);
      ticketList.append(...added);
      nextCursor = result.data.next_cursor || null;
      moreButton.hidden = !nextCursor;
      if (ticketList.children.length === 0) {
        W.setStatus(ticketsStatus, 'No tickets yet.');
      } else {
        W.setStatus(ticketsStatus, '');
      }
      if (hadFocus && moreButton.hidden && added.length > 0) {
        added[0].querySelector('button').focus();
      }
    } catch (_) {
      W.setStatus(ticketsStatus, 'Could not load tickets: the server could not be reached.', 'error');
    } finally {
      loading = false;
      ticketList.removeAttribute('aria-busy');
      refreshButton.disabled = false;
      moreButton.disabled = false;
    }
  }

  refreshButton.addEventListener('click', () => loadTickets(true));
  moreButton.addEventListener('click', () => loadTickets(false));
  loadTickets(true);
})();
