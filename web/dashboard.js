// The agent console: the signed-in agent says whether they are available or away, takes the
// support calls the server offers them, calls customers back from their tickets, listens to
// voicemails, and dials a colleague into a live call (warm transfer). It lists open or closed
// tickets, finds them by number or name, and opens one to close or reopen it, note it, and see
// its calls. Who the agent is comes
// from the session the server checked; the page only shows it. When the session ends (signed
// out elsewhere, expired, account disabled), the server answers 401, and the agent is sent to
// sign in again, but never in the middle of a call.
'use strict';

(function () {
  const W = window.Warmline;
  const $ = (id) => document.getElementById(id);

  const agentId = $('agent-id').textContent.trim();
  const agentName = $('agent-name').textContent.trim() || agentId;
  const sessionStatus = $('session-status');
  const signInAgain = $('signin-again');
  const signOutForm = $('signout-form');
  const presenceBox = $('presence');
  const presenceStatus = $('presence-status');
  const presenceSince = $('presence-since');
  const availableButton = $('available-button');
  const awayButton = $('away-button');
  const missedCall = $('missed-call');
  const presenceNote = $('presence-note');
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
  const workspaceActions = $('workspace-actions');
  const holdButton = $('hold-button');
  const handOver = $('hand-over');
  const colleagueSelect = $('colleague-select');
  const consultButton = $('consult-button');
  const coldTransferButton = $('cold-transfer-button');
  const consultActions = $('consult-actions');
  const completeButton = $('complete-button');
  const cancelConsultButton = $('cancel-consult-button');
  const callerContext = $('caller-context');
  const callerWho = $('caller-who');
  const callerWait = $('caller-wait');
  const callerTickets = $('caller-tickets');
  const callParticipants = $('call-participants');
  const ticketList = $('tickets');
  const ticketsStatus = $('tickets-status');
  const refreshButton = $('refresh-button');
  const moreButton = $('more-button');
  const showOpen = $('show-open');
  const showClosed = $('show-closed');
  const searchForm = $('search-form');
  const searchInput = $('search-input');
  const clearSearch = $('clear-search');
  const detail = $('ticket-detail');
  const detailHeading = $('detail-heading');
  const detailWho = $('detail-who');
  const detailDescription = $('detail-description');
  const detailStatus = $('detail-status');
  const closeTicketButton = $('close-ticket');
  const reopenTicketButton = $('reopen-ticket');
  const detailNote = $('detail-note');
  const notesList = $('notes');
  const noteForm = $('note-form');
  const noteText = $('note-text');
  const noteButton = $('note-button');
  const callsStatus = $('calls-status');
  const callsList = $('calls');
  const moreCalls = $('more-calls');

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
    stopPresence();
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

  // How long signing out waits for the server to hear that the agent is away.
  const SIGN_OUT_AWAY_MS = 3 * 1000;
  let signingOut = false;

  signOutForm.addEventListener('submit', (event) => {
    if (call) {
      event.preventDefault();
      W.setStatus(deviceStatus, 'Finish the call before signing out.', 'error');
      return;
    }
    if (signingOut) {
      return;
    }
    signingOut = true;
    const wasAvailable = choice === 'available' || (presence && (presence.status === 'available' || presence.status === 'busy'));
    stopPresence();
    // Leaving the page would tear the device down anyway; this unregisters it first.
    if (device) {
      goOffline();
    }
    if (!wasAvailable) {
      return;
    }
    // An agent who signs out takes no more calls: say so first (briefly; signing out goes on
    // whatever the answer), so no caller rings for them until their presence lapses.
    event.preventDefault();
    const away = W.api('PUT', '/presence', { status: 'away' }).catch(() => null);
    const late = new Promise((resolve) => setTimeout(resolve, SIGN_OUT_AWAY_MS));
    Promise.race([away, late]).then(() => signOutForm.submit());
  });

  // ---- Device ------------------------------------------------------------------------------

  function showDeviceState(state, detail) {
    deviceState = state;
    switch (state) {
      case 'registering':
        W.setStatus(deviceStatus, 'Connecting your calling device…', 'busy');
        break;
      case 'registered':
        W.setStatus(deviceStatus, `Ready for calls as ${agentName}.`, 'ok');
        break;
      case 'error':
        W.setStatus(deviceStatus, detail, 'error');
        break;
      default:
        W.setStatus(deviceStatus, 'Calls ring here only while you are available.');
    }
  }

  // Made on a click (browsers allow audio only after a user gesture): the first "Available",
  // or calling a customer back. A page opened while its agent is available already (a reload)
  // makes it at once, so the calls offered to them still ring here.
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
          showDeviceState('error', 'Could not renew your calling session. Reload the page.');
        }
      }
    });
    return created;
  }

  let registration = null;

  /** The device, registered for incoming calls (one registration at a time). */
  function registerDevice() {
    if (!registration) {
      registration = (async () => {
        const ready = await ensureDevice();
        if (device === ready && deviceState !== 'registered') {
          showDeviceState('registering');
          await ready.register();
        }
        return ready;
      })().finally(() => {
        registration = null;
      });
    }
    return registration;
  }

  /** No more incoming calls here; the device stays, for calling customers back. */
  function unregisterDevice() {
    const current = device;
    if (!current || (deviceState !== 'registered' && deviceState !== 'registering')) {
      return;
    }
    Promise.resolve()
      .then(() => current.unregister())
      .catch((error) => console.warn('could not unregister the device', error && error.message));
    if (device === current) {
      showDeviceState('unregistered');
    }
  }

  function showRegisterError(error) {
    console.warn('could not get ready for calls', error);
    if (error && error.sessionEnded) {
      showDeviceState('error', 'Signed out: you cannot take calls until you sign in again.');
      return;
    }
    let message = W.describeCallErrorWithCode(error);
    if (error && error.sdkMissing) {
      message = 'The calling software did not load. Reload the page.';
    }
    showDeviceState('error', message);
  }

  function goOffline() {
    const old = device;
    device = null;
    showDeviceState('offline');
    if (old) {
      old.destroy();
    }
  }

  // ---- Presence ----------------------------------------------------------------------------
  // The server says what the agent is (`GET /presence`, `PUT /presence`): available, away, busy
  // (ringing or on a call) or offline (nobody renewed it for 90 s); only an available agent is
  // offered calls. Presence is a lease: while the page is open it says the agent's choice again
  // every RENEW_MS, even in a background tab (which still takes calls), and never after signing
  // out or a 401. The device is registered only while the server says available or busy.
  // Before saying "available" again the page looks first: an agent the server set away (they
  // let an offered call ring out, or rejected it) stays away until they choose otherwise.

  const RENEW_MS = 30 * 1000;
  // After a call or a ring ends, the server has the news within moments (its status callbacks).
  const REFRESH_AFTER_CALL_MS = 2 * 1000;
  const PRESENCE_LABELS = { available: 'Available', away: 'Away', busy: 'Busy', offline: 'Offline' };

  let presence = null; // the server's latest answer
  let choice = null; // 'available' or 'away': what renewals say; null: nothing (offline)
  let goingAvailable = false; // "Available" was clicked; the device is getting ready
  let presenceStopped = false;
  let presenceQueue = Promise.resolve();
  let renewTimer = null;
  let refreshTimer = null;

  /** Presence requests one at a time, so answers are adopted in the order they were asked. */
  function serially(task) {
    const run = presenceQueue.then(task);
    presenceQueue = run.catch(() => {});
    return run;
  }

  function formatClock(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) {
      return '';
    }
    const time = date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
    if (date.toDateString() === new Date().toDateString()) {
      return time;
    }
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function renderPresence() {
    const status = presence ? presence.status : 'unknown';
    presenceBox.dataset.presence = status;
    presenceStatus.textContent = PRESENCE_LABELS[status] || 'Unknown';
    const since = presence && Date.parse(presence.since) > 0 ? formatClock(presence.since) : '';
    presenceSince.textContent = since ? `since ${since}` : '';
    availableButton.setAttribute('aria-pressed', choice === 'available' ? 'true' : 'false');
    awayButton.setAttribute('aria-pressed', choice === 'away' ? 'true' : 'false');
    const missedAt = presence && presence.missed_call_at ? formatClock(presence.missed_call_at) : '';
    W.setStatus(missedCall, missedAt
      ? `You missed a call at ${missedAt} and were set to Away. Choose Available when you are ready for calls.`
      : '', 'busy');
  }

  /** Registers or unregisters the device for what the server says the agent is. */
  function syncDevice() {
    if (sessionEnded || presenceStopped || !presence) {
      return;
    }
    const wanted = presence.status === 'available' || presence.status === 'busy';
    // A device in error stays so until the agent acts: registering again would hide the error.
    const idle = deviceState === 'offline' || deviceState === 'unregistered';
    if (wanted && !goingAvailable && idle) {
      registerDevice().catch((error) => {
        showRegisterError(error);
        // Available with no device to ring: say away rather than miss the calls offered.
        if (presence && presence.status === 'available' && !(error && error.sessionEnded)) {
          serially(() => sayPresence('away'));
        }
      });
    } else if (!wanted && !goingAvailable && !call) {
      // During a call the device stays; it goes once the call has ended.
      unregisterDevice();
    }
  }

  function adopt(answer) {
    const before = presence;
    presence = answer;
    if (answer.status !== 'offline') {
      W.setStatus(presenceNote, ''); // heard: whatever failed before works again
    }
    if (answer.status === 'available' || answer.status === 'away') {
      choice = answer.status;
    } else if (answer.status === 'offline') {
      if (choice === 'available' && before && before.status !== 'offline') {
        W.setStatus(presenceNote, 'Your status lapsed while this page could not reach the server. ' +
          'Choose Available to take calls again.', 'error');
      }
      choice = null;
    } else if (answer.status === 'busy' && choice === null) {
      choice = 'available'; // only an available agent is offered a call
    }
    renderPresence();
    syncDevice();
  }

  /** `GET /presence` (no status) or `PUT /presence`; adopts the answer, or says what failed. */
  async function presenceRequest(status) {
    if (sessionEnded || presenceStopped) {
      return null;
    }
    const method = status ? 'PUT' : 'GET';
    if (status) {
      scheduleRenewal(); // the lease runs from the last time the page said it
    }
    let result;
    try {
      result = await agentApi(method, '/presence', status ? { status } : undefined);
    } catch (_) {
      W.setStatus(presenceNote, 'Could not reach the server to keep your status. Trying again…', 'error');
      return null;
    }
    if (result.status === 401 || sessionEnded || presenceStopped) {
      return null;
    }
    if (!result.ok || typeof result.data.status !== 'string') {
      const reason = result.status === 503 ? 'the service is busy, trying again in a moment'
        : result.data.error || `the server answered ${result.status}`;
      W.setStatus(presenceNote, `Could not ${status ? 'change' : 'check'} your status: ${reason}.`, 'error');
      return null;
    }
    forgetLoginTrip();
    if (status) {
      choice = status; // heard: what renewals say from now on, whatever busy hides
    }
    adopt(result.data);
    return result.data;
  }

  const sayPresence = (status) => presenceRequest(status);
  const lookAtPresence = () => presenceRequest(null);

  /** The lease: look first while available (a missed call set them away), then say it again. */
  async function renew() {
    if (choice !== 'away' && !(await lookAtPresence())) {
      scheduleRenewal();
      return;
    }
    if (choice) {
      await sayPresence(choice);
    } else {
      scheduleRenewal(); // nothing to say (offline): look again later
    }
  }

  /** The next renewal, RENEW_MS from now (replacing the one planned). */
  function scheduleRenewal() {
    clearTimeout(renewTimer);
    if (!presenceStopped) {
      renewTimer = setTimeout(() => serially(renew), RENEW_MS);
    }
  }

  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => serially(lookAtPresence), REFRESH_AFTER_CALL_MS);
  }

  function stopPresence() {
    presenceStopped = true;
    clearTimeout(renewTimer);
    clearTimeout(refreshTimer);
  }

  availableButton.addEventListener('click', async () => {
    if (goingAvailable || sessionEnded || presenceStopped) {
      return;
    }
    goingAvailable = true;
    W.setStatus(presenceNote, '');
    try {
      // Ready to ring before the server may offer a call: it offers one at once.
      await registerDevice();
    } catch (error) {
      const stillWanted = goingAvailable;
      goingAvailable = false;
      if (stillWanted) {
        showRegisterError(error);
      }
      return;
    }
    if (!goingAvailable) {
      syncDevice(); // "Away" was clicked meanwhile
      return;
    }
    goingAvailable = false;
    if (!(await serially(() => sayPresence('available')))) {
      syncDevice(); // not heard: the device follows what the server said last
    }
  });

  awayButton.addEventListener('click', () => {
    if (sessionEnded || presenceStopped) {
      return;
    }
    goingAvailable = false;
    choice = 'away';
    renderPresence();
    if (!call) {
      unregisterDevice();
    }
    serially(() => sayPresence('away'));
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
    stopWatchingCallState();
    showControls('idle');
    showMuted(false);
    W.setStatus(callStatus, seconds > 0 ? `${text} (${W.formatDuration(seconds)}).` : `${text}.`, tone);
    if (sessionEnded) {
      endSession();
      return;
    }
    // The server knows by now, or moments later, whether the agent is free, or away after a
    // ring they did not take; the device follows.
    syncDevice();
    refreshSoon();
    if (hadFocus) {
      (choice === 'away' ? awayButton : availableButton).focus();
    }
  }

  // ---- Who is calling, and who is in the call (GET /calls/current) --------------------------

  /** How often the dashboard asks who is in the call while a support call lasts. */
  const CALL_STATE_POLL_MS = 2000;
  let callStatePoll = null;
  // Each look is numbered: an answer that comes after a later one's is not shown over it.
  let callStateAsked = 0;
  let callStateShown = 0;

  function describeCaller(caller) {
    if (caller.kind === 'phone') {
      return W.formatPhone(caller.number);
    }
    if (caller.kind === 'web') {
      // The name the caller typed on the page: text only, as they wrote it.
      return caller.name ? `${caller.name}, on the customer page` : 'A caller on the customer page';
    }
    return 'A caller whose number is withheld';
  }

  /** What a participant's `state` from `GET /calls/current` reads as. */
  const PARTICIPANT_STATES = {
    waiting: 'waiting',
    talking: 'talking',
    ringing: 'ringing',
    'on-hold': 'on hold',
    'no-answer': 'did not answer',
    declined: 'declined',
    canceled: 'ring canceled',
    unreached: 'could not be reached',
    left: 'left',
  };

  function describeParticipant(participant) {
    const state = PARTICIPANT_STATES[participant.state] || participant.state;
    if (participant.role === 'customer') {
      return `Customer: ${state}`;
    }
    const you = participant.agent === agentId ? ' (you)' : '';
    return `${participant.agent}${you}: ${state}`;
  }

  function showCallerContext(current) {
    if (!current) {
      callerContext.hidden = true;
      return;
    }
    callerWho.textContent = describeCaller(current.caller);
    callerWait.textContent = typeof current.waited_seconds === 'number'
      ? `Waited ${W.formatDuration(current.waited_seconds)} in line.`
      : '';
    const tickets = current.tickets.map((ticket) => {
      const item = document.createElement('li');
      const name = document.createElement('strong');
      name.textContent = ticket.name;
      const status = ticket.status === 'closed' ? ' (closed)' : '';
      if (ticket.id === current.about_ticket) {
        // The caller's pick, not proof: a ticket's id is no secret to whoever filed for that number.
        item.append('Says they are calling about: ');
      }
      item.append(name, `${status}: ${ticket.description}`);
      return item;
    });
    if (current.new_caller) {
      const item = document.createElement('li');
      item.textContent = 'New caller: no tickets from this number.';
      tickets.push(item);
    } else if (current.tickets.length === 0) {
      const item = document.createElement('li');
      item.textContent = 'No tickets to show for this caller.';
      tickets.push(item);
    } else if (current.more_tickets) {
      const item = document.createElement('li');
      item.textContent = 'More tickets: search for this number below.';
      tickets.push(item);
    }
    callerTickets.replaceChildren(...tickets);
    // A live region: replaced only when something changed, so it is not read out every 2 s.
    const participants = current.participants.map(describeParticipant);
    const shown = Array.from(callParticipants.children, (item) => item.textContent);
    if (participants.join('\n') !== shown.join('\n')) {
      callParticipants.replaceChildren(...participants.map((text) => {
        const item = document.createElement('li');
        item.textContent = text;
        return item;
      }));
    }
    callerContext.hidden = false;
    showWorkspace(current);
  }

  // ---- Hold, consult, complete, cancel, transfer (POST /calls/{id}/{action}) ------------------

  // The server's view of the page's call, as last shown: what the buttons act on.
  let shownCall = null;
  let acting = false;

  /** The buttons that fit the call as the server last described it. */
  function showWorkspace(current) {
    shownCall = current;
    const me = current && current.participants.find((p) => p.role === 'agent' && p.agent === agentId);
    const inCall = Boolean(me) && me.state === 'talking';
    workspaceActions.hidden = !inCall;
    if (!inCall) {
      return;
    }
    const customer = current.participants.find((p) => p.role === 'customer');
    const onHold = Boolean(customer) && customer.state === 'on-hold';
    // A customer the agent called whose phone still rings: nobody to hold or hand over yet.
    const reached = Boolean(customer) && customer.state !== 'ringing';
    const transfer = current.transfer;
    const engaged = Boolean(transfer) && (transfer.colleague === 'ringing' || transfer.colleague === 'talking');
    const mine = Boolean(transfer) && transfer.kind === 'consult' && transfer.from === agentId;
    holdButton.setAttribute('aria-pressed', onHold ? 'true' : 'false');
    holdButton.textContent = onHold ? 'Resume' : 'Hold';
    // While a consult's colleague is on their way in, the customer holds until it is completed
    // or canceled.
    holdButton.disabled = acting || !reached || (engaged && transfer.kind === 'consult');
    // A cold transfer of the agent's own that left them in the call (their leaving failed) may
    // be sent again.
    handOver.hidden = Boolean(transfer) && !(transfer.kind === 'cold' && transfer.from === agentId);
    consultButton.disabled = acting || !reached;
    coldTransferButton.disabled = acting || !reached;
    transferButton.disabled = !reached;
    consultActions.hidden = !mine;
    completeButton.disabled = acting || !mine || transfer.colleague !== 'talking';
    cancelConsultButton.disabled = acting;
  }

  function updateColleagues(available) {
    const colleagues = available.filter((id) => id !== agentId);
    const listed = Array.from(colleagueSelect.options).slice(1).map((option) => option.value);
    if (colleagueSelect.options.length > 0 && listed.join('\n') === colleagues.join('\n')) {
      return;
    }
    const chosen = colleagueSelect.value;
    colleagueSelect.replaceChildren(new Option('Next available', ''), ...colleagues.map((id) => new Option(id, id)));
    colleagueSelect.value = colleagues.includes(chosen) ? chosen : '';
  }

  const ACTION_LABELS = {
    hold: 'put the customer on hold',
    resume: 'take the customer off hold',
    consult: 'consult a colleague',
    complete: 'complete the transfer',
    cancel: 'cancel the consult',
    transfer: 'transfer the call',
  };

  function actionDone(action, answer) {
    const to = answer.transfer ? answer.transfer.to : 'your colleague';
    return {
      hold: 'The customer is on hold: they hear music and cannot hear you.',
      resume: 'The customer is back with you.',
      consult: `Consulting ${to}: the customer is on hold while ${to} is rung.`,
      complete: 'Transfer complete: you are leaving the call.',
      cancel: 'Consult canceled: the customer is back with you.',
      transfer: `Transferred to ${to}: you are leaving the call; the customer holds until ${to} answers.`,
    }[action];
  }

  async function actOnCall(action, body) {
    if (!shownCall || acting) {
      return;
    }
    const current = call;
    acting = true;
    showWorkspace(shownCall);
    const label = ACTION_LABELS[action];
    W.setStatus(transferStatus, `Trying to ${label}…`, 'busy');
    try {
      const result = await agentApi('POST', `/calls/${encodeURIComponent(shownCall.id)}/${action}`, body || {});
      if (result.status === 200 && result.data.call) {
        W.setStatus(transferStatus, actionDone(action, result.data.call), 'ok');
      } else if (result.status === 401) {
        W.setStatus(transferStatus, `Could not ${label}: you are signed out.`, 'error');
      } else if (result.status === 503) {
        W.setStatus(transferStatus, `Could not ${label}: the service is busy. Try again in a moment.`, 'error');
      } else {
        const reason = (result.data && result.data.error) || `the server answered ${result.status}`;
        W.setStatus(transferStatus, `Could not ${label}: ${reason}.`, 'error');
      }
    } catch (_) {
      W.setStatus(transferStatus, `Could not ${label}: the server could not be reached.`, 'error');
    } finally {
      acting = false;
      showWorkspace(shownCall);
    }
    if (call === current && current) {
      refreshCallState(current);
    }
  }

  function chosenColleague() {
    return colleagueSelect.value ? { to: colleagueSelect.value } : {};
  }

  updateColleagues([]);
  holdButton.addEventListener('click', () => {
    actOnCall(holdButton.getAttribute('aria-pressed') === 'true' ? 'resume' : 'hold');
  });
  consultButton.addEventListener('click', () => actOnCall('consult', chosenColleague()));
  coldTransferButton.addEventListener('click', () => actOnCall('transfer', chosenColleague()));
  completeButton.addEventListener('click', () => actOnCall('complete'));
  cancelConsultButton.addEventListener('click', () => actOnCall('cancel'));

  /** Asks the server about the call `current` while it is still the page's call. */
  async function refreshCallState(current) {
    const asked = ++callStateAsked;
    let result;
    try {
      result = await agentApi('GET', '/calls/current');
    } catch (error) {
      console.warn('could not read the current call', error);
      return;
    }
    if (sessionEnded) {
      // Signed out mid-call: the call goes on, but the server will say no more about it.
      clearInterval(callStatePoll);
      callStatePoll = null;
      return;
    }
    if (call !== current || callStatePoll === null || result.status !== 200 || asked < callStateShown) {
      return;
    }
    callStateShown = asked;
    showCallerContext(result.data.call);
  }

  /** From the ring (or the dial) to the hang-up of a call: at once, then every 2 s; never while idle. */
  function watchCallState(current) {
    stopWatchingCallState();
    callStatePoll = setInterval(() => refreshCallState(current), CALL_STATE_POLL_MS);
    refreshCallState(current);
  }

  function stopWatchingCallState() {
    clearInterval(callStatePoll);
    callStatePoll = null;
    callerContext.hidden = true;
    showWorkspace(null);
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

  /** What Warmline put on the ring (its custom parameters), known before any request: who
   * hands the call over, and the name a browser caller typed (text only). */
  function ringContext(incoming) {
    const custom = incoming.customParameters instanceof Map ? incoming.customParameters : new Map();
    return {
      callerName: custom.get('callerName') || '',
      transferFrom: custom.get('transferFrom') || '',
      transferKind: custom.get('transferKind') || '',
    };
  }

  const HAND_OVERS = { warm: 'dialing you into their call', consult: 'consulting you', cold: 'transferring their call to you' };

  function describeRing(ring) {
    const handOver = HAND_OVERS[ring.transferKind];
    if (ring.transferFrom && handOver) {
      return `${ring.transferFrom} is ${handOver}.`;
    }
    return ring.callerName ? `Incoming support call from ${ring.callerName}.` : 'Incoming support call.';
  }

  function onIncoming(incoming) {
    if (call || sessionEnded) {
      // The SDK already turns calls away while busy; this keeps the page's one-call model true.
      incoming.reject();
      return;
    }
    call = incoming;
    const ring = ringContext(incoming);
    callLabel = ring.callerName || 'a customer';
    timer.hide();
    W.setStatus(transferStatus, '');
    W.setStatus(callStatus, describeRing(ring), 'busy');
    watchCall(incoming);
    watchCallState(incoming);
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
      // The raw E.164 number: /call/agent calls exactly what it receives, if a ticket has it.
      const current = await ready.connect({ params: { phoneNumber: ticket.phone_number } });
      call = current;
      callLabel = who;
      watchCall(current);
      // The customer is called into a conference of the agent's: hold and transfer as on a
      // support call, and the participants as they change.
      watchCallState(current);
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
  // Each reload (another list, a search) supersedes the one in flight: only the latest renders.
  let generation = 0;

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

  /** A voicemail's length as `m:ss`. */
  function formatLength(totalSeconds) {
    const seconds = Math.max(0, Math.floor(Number(totalSeconds) || 0));
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  }

  /** Only our own paths are played: `/tickets/{id}/recording`. */
  function isOwnPath(url) {
    return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') && !url.includes('\\');
  }

  function renderVoicemail(ticket) {
    const box = element('div', 'ticket-voicemail');
    const label = element('p', 'ticket-voicemail-label');
    const seconds = Math.max(0, Math.floor(Number(ticket.voicemail.duration_seconds) || 0));
    const length = element('time', 'ticket-duration', formatLength(seconds));
    length.dateTime = `PT${seconds}S`;
    label.append(element('span', 'ticket-kind', 'Voicemail'), ' ', length);
    box.append(label);
    if (isOwnPath(ticket.voicemail.recording_url)) {
      const audio = element('audio', 'ticket-audio');
      audio.controls = true;
      audio.preload = 'none';
      audio.src = ticket.voicemail.recording_url;
      audio.setAttribute('aria-label', `Voicemail from ${ticket.name}, ${formatLength(seconds)}`);
      audio.textContent = 'Your browser cannot play this voicemail.';
      box.append(audio);
    }
    return box;
  }

  function renderTicket(ticket) {
    const item = element('li', 'ticket');
    item.dataset.ticketId = ticket.id;

    const head = element('div', 'ticket-head');
    const title = element('h3', 'ticket-name');
    // A link, not a button: the ticket's controls are in its detail, below the list.
    const open = element('a', 'ticket-open', ticket.name);
    open.href = `#ticket-${encodeURIComponent(ticket.id)}`;
    open.addEventListener('click', (event) => {
      event.preventDefault();
      showDetail(ticket);
    });
    title.append(open);
    head.append(title);
    const time = element('time', 'ticket-time', formatTime(ticket.created_at));
    time.dateTime = ticket.created_at;
    head.append(time);
    item.append(head);
    if (ticket.status === 'closed') {
      item.dataset.status = 'closed';
      head.append(element('span', 'ticket-closed', 'Closed'));
    }
    const notes = Array.isArray(ticket.notes) ? ticket.notes.length : 0;
    if (notes > 0) {
      item.append(element('p', 'ticket-notes', notes === 1 ? '1 note' : `${notes} notes`));
    }

    const hasNumber = typeof ticket.phone_number === 'string' && ticket.phone_number !== '';
    if (hasNumber) {
      item.append(element('p', 'ticket-phone', W.formatPhone(ticket.phone_number)));
    } else if (typeof ticket.customer === 'string' && ticket.customer !== '') {
      const caller = element('p', 'ticket-caller', 'Called from the customer page: ');
      caller.append(element('span', 'ticket-customer', ticket.customer));
      item.append(caller);
    } else {
      item.append(element('p', 'ticket-caller', 'No number to call back'));
    }

    const voicemail = ticket.voicemail && typeof ticket.voicemail === 'object';
    if (voicemail) {
      item.append(renderVoicemail(ticket));
    }
    // A voicemail's description is "Voicemail", which the player above says already.
    if (!voicemail || ticket.description !== 'Voicemail') {
      item.append(element('p', 'ticket-description', ticket.description));
    }

    // Filed from a number outside DIAL_COUNTRIES: Warmline refuses to dial it, so no button
    // invites a call that cannot be placed (and that would be paid for if it could).
    const outside = ticket.outside_dial_countries === true;
    if (hasNumber && outside) {
      item.append(element('p', 'ticket-outside', 'Outside the allowed countries: this number cannot be called back.'));
    } else if (hasNumber) {
      const button = element('button', 'call-customer', 'Call customer');
      button.type = 'button';
      button.setAttribute('aria-label', `Call customer ${ticket.name} at ${W.formatPhone(ticket.phone_number)}`);
      button.disabled = Boolean(call);
      button.addEventListener('click', () => callCustomer(ticket, button));
      item.append(button);
    }
    return item;
  }

  async function loadTickets(reset) {
    if (loading && !reset) {
      return;
    }
    generation += 1;
    const mine = generation;
    loading = true;
    ticketList.setAttribute('aria-busy', 'true');
    refreshButton.disabled = true;
    moreButton.disabled = true;
    const hadFocus = document.activeElement === moreButton;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (searching) {
      query.set(searching.by, searching.text);
    } else {
      query.set('status', listStatus);
    }
    if (!reset && nextCursor) {
      query.set('cursor', nextCursor);
    }
    try {
      const result = await agentApi('GET', `/tickets?${query}`);
      if (mine !== generation) {
        return;
      }
      if (result.status === 401) {
        W.setStatus(ticketsStatus, 'Sign in again to see the tickets.', 'error');
        return;
      }
      if (!result.ok || !Array.isArray(result.data.tickets)) {
        const fields = result.data.fields || {};
        const reason = result.status === 503 ? 'the service is busy, try again in a moment'
          : fields.phone ? `the number ${fields.phone}`
            : fields.name ? `the name ${fields.name}`
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
        W.setStatus(ticketsStatus, searching ? 'No ticket matches.'
          : listStatus === 'closed' ? 'No closed tickets.' : 'No tickets yet.');
      } else {
        W.setStatus(ticketsStatus, '');
      }
      if (hadFocus && moreButton.hidden && added.length > 0) {
        // The first new ticket's control, or the ticket itself when it has none.
        const target = added[0].querySelector('button, audio') || added[0];
        if (target === added[0]) {
          target.tabIndex = -1;
        }
        target.focus();
      }
    } catch (_) {
      if (mine === generation) {
        W.setStatus(ticketsStatus, 'Could not load tickets: the server could not be reached.', 'error');
      }
    } finally {
      if (mine === generation) {
        loading = false;
        ticketList.removeAttribute('aria-busy');
        refreshButton.disabled = false;
        moreButton.disabled = false;
      }
    }
  }

  // ---- Which tickets: open or closed, or a search ------------------------------------------

  let listStatus = 'open';
  let searching = null;

  /** A search by number when it looks like one (digits, spaces, + - . ( )), else by name. */
  function searchOf(text) {
    const trimmed = text.trim();
    if (trimmed === '') {
      return null;
    }
    const phone = /^[+0-9][0-9 ().-]*$/.test(trimmed) && /[0-9]/.test(trimmed);
    return { by: phone ? 'phone' : 'name', text: trimmed };
  }

  function showStatus(status) {
    listStatus = status;
    showOpen.setAttribute('aria-pressed', String(status === 'open'));
    showClosed.setAttribute('aria-pressed', String(status === 'closed'));
    searching = null;
    searchInput.value = '';
    clearSearch.hidden = true;
    loadTickets(true);
  }

  showOpen.addEventListener('click', () => showStatus('open'));
  showClosed.addEventListener('click', () => showStatus('closed'));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    searching = searchOf(searchInput.value);
    clearSearch.hidden = !searching;
    loadTickets(true);
  });
  clearSearch.addEventListener('click', () => {
    searchInput.value = '';
    searching = null;
    clearSearch.hidden = true;
    loadTickets(true);
    searchInput.focus();
  });

  // ---- One ticket: its status, notes and calls ---------------------------------------------

  let shown = null;
  // The id of the note being sent, kept until the server has it: a retry after a lost answer
  // sends the same id, and the server appends the note once.
  let pendingNote = null;

  function newNoteId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      return window.crypto.randomUUID();
    }
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function renderNote(note) {
    const item = element('li', 'note');
    const head = element('p', 'note-head');
    const who = note.author === 'customer' ? 'The customer, filing again' : String(note.by);
    head.append(element('strong', 'note-by', who), ' ');
    const time = element('time', 'note-time', formatTime(note.at));
    time.dateTime = note.at;
    head.append(time);
    item.append(head, element('p', 'note-text', note.text));
    return item;
  }

  function statusText(ticket) {
    if (ticket.status === 'closed') {
      const by = ticket.closed_by ? ` by ${ticket.closed_by}` : '';
      const at = ticket.closed_at ? ` on ${formatTime(ticket.closed_at)}` : '';
      return `Closed${by}${at}.`;
    }
    const history = Array.isArray(ticket.status_history) ? ticket.status_history : [];
    const last = history[history.length - 1];
    return last ? `Open: reopened by ${last.by} on ${formatTime(last.at)}.` : 'Open.';
  }

  function renderDetail(ticket) {
    shown = ticket;
    detail.dataset.ticketId = ticket.id;
    detail.dataset.status = ticket.status;
    detailHeading.textContent = ticket.name;
    const who = [];
    if (typeof ticket.phone_number === 'string' && ticket.phone_number !== '') {
      who.push(W.formatPhone(ticket.phone_number));
    } else if (typeof ticket.customer === 'string' && ticket.customer !== '') {
      who.push(`Called from the customer page: ${ticket.customer}`);
    }
    who.push(`filed ${formatTime(ticket.created_at)}`);
    detailWho.textContent = who.join(', ');
    detailDescription.textContent = ticket.description;
    detailStatus.textContent = statusText(ticket);
    closeTicketButton.hidden = ticket.status === 'closed';
    reopenTicketButton.hidden = ticket.status !== 'closed';
    const notes = Array.isArray(ticket.notes) ? ticket.notes : [];
    notesList.replaceChildren(...notes.map(renderNote));
    if (notes.length === 0) {
      notesList.append(element('li', 'note empty', 'No notes yet.'));
    }
  }

  async function showDetail(ticket) {
    renderDetail(ticket);
    W.setStatus(detailNote, '');
    noteText.value = '';
    pendingNote = null;
    detail.hidden = false;
    detailHeading.tabIndex = -1;
    detailHeading.focus();
    await loadCalls(true);
  }

  $('detail-back').addEventListener('click', () => {
    const id = shown && shown.id;
    detail.hidden = true;
    shown = null;
    const link = id && ticketList.querySelector(`li[data-ticket-id="${CSS.escape(id)}"] .ticket-open`);
    (link || ticketList).focus();
  });

  function failure(result, doing) {
    if (result.status === 503 || result.status === 429) {
      return `Could not ${doing}: the service is busy, try again in a moment.`;
    }
    const fields = result.data.fields || {};
    const field = Object.entries(fields)[0];
    const reason = field ? `${field[0]} ${field[1]}` : result.data.error || `the server answered ${result.status}`;
    return `Could not ${doing}: ${reason}.`;
  }

  async function setTicketStatus(status) {
    if (!shown) {
      return;
    }
    const id = shown.id;
    const doing = status === 'closed' ? 'close the ticket' : 'reopen the ticket';
    closeTicketButton.disabled = true;
    reopenTicketButton.disabled = true;
    try {
      const result = await agentApi('POST', `/tickets/${encodeURIComponent(id)}/status`, { status });
      if (result.status === 401) {
        return;
      }
      if (!result.ok || result.data.id !== id) {
        W.setStatus(detailNote, failure(result, doing), 'error');
        return;
      }
      renderDetail(result.data);
      W.setStatus(detailNote, status === 'closed' ? 'Ticket closed.' : 'Ticket reopened.', 'ok');
      (status === 'closed' ? reopenTicketButton : closeTicketButton).focus();
      loadTickets(true);
    } catch (_) {
      W.setStatus(detailNote, `Could not ${doing}: the server could not be reached.`, 'error');
    } finally {
      closeTicketButton.disabled = false;
      reopenTicketButton.disabled = false;
    }
  }

  closeTicketButton.addEventListener('click', () => setTicketStatus('closed'));
  reopenTicketButton.addEventListener('click', () => setTicketStatus('open'));

  noteForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!shown) {
      return;
    }
    const text = noteText.value.trim();
    if (text === '') {
      W.setStatus(detailNote, 'Write the note first.', 'error');
      noteText.focus();
      return;
    }
    const id = shown.id;
    if (!pendingNote || pendingNote.text !== text) {
      pendingNote = { id: newNoteId(), text };
    }
    noteButton.disabled = true;
    try {
      const result = await agentApi('POST', `/tickets/${encodeURIComponent(id)}/notes`,
        { note_id: pendingNote.id, text });
      if (result.status === 401) {
        return;
      }
      if (!result.ok || result.data.id !== id) {
        W.setStatus(detailNote, failure(result, 'add the note'), 'error');
        return;
      }
      pendingNote = null;
      noteText.value = '';
      renderDetail(result.data);
      W.setStatus(detailNote, 'Note added.', 'ok');
      const item = ticketList.querySelector(`li[data-ticket-id="${CSS.escape(id)}"]`);
      if (item) {
        item.replaceWith(renderTicket(result.data));
      }
    } catch (_) {
      W.setStatus(detailNote, 'Could not add the note: the server could not be reached. Send it again.', 'error');
    } finally {
      noteButton.disabled = false;
    }
  });

  // The ticket's calls, from the call ledger (`GET /tickets/{id}/calls`), newest first.
  let callsCursor = null;

  const OUTCOMES = {
    answered: 'answered',
    abandoned: 'hung up while waiting',
    voicemail: 'left a voicemail',
    'after-hours': 'after hours',
    failed: 'failed',
    'no-agent': 'nobody available',
    'in-progress': 'in progress',
  };

  function seconds(value) {
    return typeof value === 'number' && Number.isFinite(value) ? formatLength(value) : '–';
  }

  function renderCall(entry) {
    const item = element('li', 'call');
    const head = element('p', 'call-head');
    const direction = entry.direction === 'outbound' ? 'Outbound' : 'Inbound';
    const channel = entry.channel === 'browser' ? 'browser' : entry.channel === 'agent' ? 'agent' : 'phone';
    head.append(element('strong', 'call-kind', `${direction} ${channel} call`), ' ');
    const time = element('time', 'call-time', formatTime(entry.started_at));
    time.dateTime = String(entry.started_at);
    head.append(time);
    item.append(head);
    const outcome = OUTCOMES[entry.outcome] || String(entry.outcome);
    item.append(element('p', 'call-outcome', `${String(entry.caller || '')}: ${outcome}`));
    item.append(element('p', 'call-times',
      `Waited ${seconds(entry.waited_seconds)}, talked ${seconds(entry.talked_seconds)}` +
      `, holds ${Number(entry.holds) || 0}, transfers ${Number(entry.transfers) || 0}`));
    const agents = Array.isArray(entry.agents) ? entry.agents : [];
    if (agents.length > 0) {
      item.append(element('p', 'call-agents',
        `Agents: ${agents.map((a) => `${a.agent} (${a.role})`).join(', ')}`));
    }
    if (isOwnPath(entry.recording_url)) {
      const audio = element('audio', 'call-audio');
      audio.controls = true;
      audio.preload = 'none';
      audio.src = entry.recording_url;
      audio.setAttribute('aria-label', `Recording of the call on ${formatTime(entry.started_at)}`);
      item.append(audio);
    }
    return item;
  }

  async function loadCalls(reset) {
    if (!shown) {
      return;
    }
    const id = shown.id;
    if (reset) {
      callsList.replaceChildren();
      callsCursor = null;
      moreCalls.hidden = true;
    }
    const query = !reset && callsCursor ? `?cursor=${encodeURIComponent(callsCursor)}` : '';
    let result;
    try {
      result = await agentApi('GET', `/tickets/${encodeURIComponent(id)}/calls${query}`);
    } catch (_) {
      W.setStatus(callsStatus, 'Could not load the calls: the server could not be reached.', 'error');
      return;
    }
    if (!shown || shown.id !== id || result.status === 401) {
      return;
    }
    // 404: the ticket has no calls on record (or the ledger is not there yet).
    const calls = result.ok && Array.isArray(result.data.calls) ? result.data.calls : null;
    if (result.status === 404 || (calls && calls.length === 0 && callsList.children.length === 0)) {
      W.setStatus(callsStatus, 'No calls yet.');
      return;
    }
    if (!calls) {
      W.setStatus(callsStatus, failure(result, 'load the calls'), 'error');
      return;
    }
    callsList.append(...calls.map(renderCall));
    callsCursor = result.data.next || null;
    moreCalls.hidden = !callsCursor;
    W.setStatus(callsStatus, '');
  }

  moreCalls.addEventListener('click', () => loadCalls(false));

  // ---- Wallboard ---------------------------------------------------------------------------
  // `GET /wallboard` every WALLBOARD_MS while the page is visible: a hidden tab asks nothing,
  // and a tab shown again asks at once.

  const WALLBOARD_MS = 5000;
  const wallboardStatus = $('wallboard-status');
  let wallboardTimer = null;

  function waitText(seconds) {
    if (seconds === null || seconds === undefined) {
      return '–';
    }
    const whole = Math.round(seconds);
    return whole < 60 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`;
  }

  function renderWallboard(board) {
    const figures = {
      'wb-waiting': String(board.waiting),
      'wb-longest': waitText(board.longest_wait_seconds),
      'wb-available': String(board.agents.available),
      'wb-busy': String(board.agents.busy),
      'wb-away': String(board.agents.away),
      'wb-offline': String(board.agents.offline),
      'wb-answered': String(board.today.answered),
      'wb-abandoned': String(board.today.abandoned),
      'wb-voicemails': String(board.today.voicemails),
      'wb-average': waitText(board.today.average_wait_seconds),
    };
    for (const [id, text] of Object.entries(figures)) {
      $(id).textContent = text;
    }
    $('wallboard').dataset.asOf = board.as_of;
    updateColleagues(Array.isArray(board.available_agents) ? board.available_agents : []);
    W.setStatus(wallboardStatus, `As of ${formatClock(board.as_of)}`);
  }

  async function refreshWallboard() {
    clearTimeout(wallboardTimer);
    wallboardTimer = null;
    if (sessionEnded || document.visibilityState !== 'visible') {
      return;
    }
    try {
      const result = await agentApi('GET', '/wallboard');
      if (result.ok && result.data.agents && result.data.today) {
        renderWallboard(result.data);
      } else if (result.status !== 401) {
        W.setStatus(wallboardStatus, 'The wallboard could not be updated. Trying again…', 'error');
      }
    } catch (_) {
      W.setStatus(wallboardStatus, 'The wallboard could not reach the server. Trying again…', 'error');
    }
    if (!sessionEnded && document.visibilityState === 'visible' && wallboardTimer === null) {
      wallboardTimer = setTimeout(refreshWallboard, WALLBOARD_MS);
    }
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      refreshWallboard();
    } else {
      clearTimeout(wallboardTimer);
      wallboardTimer = null;
    }
  });
  refreshWallboard();

  refreshButton.addEventListener('click', () => loadTickets(true));
  moreButton.addEventListener('click', () => loadTickets(false));
  loadTickets(true);
  serially(lookAtPresence);
  scheduleRenewal();
})();
