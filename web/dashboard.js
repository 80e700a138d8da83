// The agent console: go online under a roster identity, take incoming support calls, call
// customers back from their tickets, and dial a colleague into a live call (warm transfer).
'use strict';

(function () {
  const W = window.Warmline;
  const $ = (id) => document.getElementById(id);

  const agentSelect = $('agent');
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
  let deviceAgent = null;
  let deviceState = 'offline';
  let call = null;
  let callLabel = '';

  // ---- Identity ----------------------------------------------------------------------------

  const REMEMBERED_AGENT = 'warmline.agent';

  function remembered() {
    try {
      return window.localStorage.getItem(REMEMBERED_AGENT);
    } catch (_) {
      return null;
    }
  }

  function remember(agent) {
    try {
      window.localStorage.setItem(REMEMBERED_AGENT, agent);
    } catch (_) {
      // Private browsing: the choice is simply not kept.
    }
  }

  /** The colleague `POST /conference/{agent}/call` dials by default: the next on the roster. */
  function colleagueOf(agent) {
    const agents = Array.from(agentSelect.options, (option) => option.value);
    const index = agents.indexOf(agent);
    return agents.length > 1 && index >= 0 ? agents[(index + 1) % agents.length] : null;
  }

  function updateTransferLabel() {
    const colleague = colleagueOf(deviceAgent || agentSelect.value);
    transferButton.hidden = colleague === null;
    transferButton.textContent = colleague ? `Dial ${colleague} in` : '';
  }

  const previous = remembered();
  if (previous && Array.from(agentSelect.options).some((option) => option.value === previous)) {
    agentSelect.value = previous;
  }
  updateTransferLabel();
  agentSelect.addEventListener('change', () => {
    remember(agentSelect.value);
    // A device made for an outgoing call belongs to the previous agent.
    if (device) {
      goOffline();
    }
    updateTransferLabel();
  });

  /** The identity can change only while the agent is neither online nor in a call. */
  function syncAgentPicker() {
    agentSelect.disabled = deviceState === 'registering' || deviceState === 'registered' || call !== null;
  }

  // ---- Device ------------------------------------------------------------------------------

  function showDeviceState(state, detail) {
    deviceState = state;
    const online = state === 'registered' || state === 'registering';
    onlineButton.textContent = online ? 'Go offline' : 'Go online';
    syncAgentPicker();
    switch (state) {
      case 'registering':
        W.setStatus(deviceStatus, 'Going online…', 'busy');
        break;
      case 'registered':
        W.setStatus(deviceStatus, `Online as ${deviceAgent}: ready for calls.`, 'ok');
        break;
      case 'error':
        W.setStatus(deviceStatus, detail, 'error');
        break;
      default:
        W.setStatus(deviceStatus, 'Offline: you will not receive calls.');
    }
  }

  // Made on a click (browsers allow audio only after a user gesture), for the agent picked
  // then: going online, or calling a customer back.
  async function ensureDevice() {
    if (device) {
      return device;
    }
    const sdk = W.voiceSdk();
    if (!sdk) {
      throw Object.assign(new Error('the Voice SDK did not load'), { sdkMissing: true });
    }
    const agent = agentSelect.value;
    const { token } = await W.fetchToken(agent);
    if (device) {
      return device;
    }
    const created = new sdk.Device(token, Object.assign({ closeProtection: true }, W.DEVICE_OPTIONS));
    device = created;
    deviceAgent = agent;
    updateTransferLabel();
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
        const fresh = await W.fetchToken(agent);
        created.updateToken(fresh.token);
      } catch (error) {
        console.warn('could not refresh the call token', error);
        showDeviceState('error', 'Could not renew your calling session. Go offline and online again.');
      }
    });
    return created;
  }

  function goOffline() {
    const old = device;
    device = null;
    deviceAgent = null;
    updateTransferLabel();
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
      let message = W.describeCallErrorWithCode(error);
      if (error && error.sdkMissing) {
        message = 'The calling software did not load. Reload the page.';
      } else if (error && error.status === 403) {
        message = `${agentSelect.value} is not on the roster.`;
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
    syncAgentPicker();
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
    if (call) {
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
      const message = error && error.sdkMissing
        ? 'The calling software did not load. Reload the page.'
        : W.describeCallErrorWithCode(error);
      W.setStatus(callStatus, message, 'error');
      button.focus();
    }
  }

  transferButton.addEventListener('click', async () => {
    const agent = deviceAgent;
    const colleague = colleagueOf(agent);
    if (!call || !agent || !colleague) {
      return;
    }
    transferButton.disabled = true;
    W.setStatus(transferStatus, `Dialing ${colleague}…`, 'busy');
    try {
      const result = await W.api('POST', `/conference/${encodeURIComponent(agent)}/call`, {});
      if (result.status === 201) {
        W.setStatus(transferStatus, `${result.data.agent || colleague} is being dialed into this call. ` +
          'Stay on until they join, then hang up to leave them with the caller.', 'ok');
      } else if (result.status === 503) {
        W.setStatus(transferStatus, `Could not dial ${colleague} in: the service is busy. Try again in a moment.`,
          'error');
      } else {
        const reason = result.data.error || `the server answered ${result.status}`;
        W.setStatus(transferStatus, `Could not dial ${colleague} in: ${reason}.`, 'error');
      }
    } catch (_) {
      W.setStatus(transferStatus, `Could not dial ${colleague} in: the server could not be reached.`, 'error');
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
      const result = await W.api('GET', `/tickets?${query}`);
      if (!result.ok || !Array.isArray(result.data.tickets)) {
        const reason = result.status === 503 ? 'the service is busy, try again in a moment'
          : result.data.error || `the server answered ${result.status}`;
        W.setStatus(ticketsStatus, `Could not load tickets: ${reason}.`, 'error');
        return;
      }
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
