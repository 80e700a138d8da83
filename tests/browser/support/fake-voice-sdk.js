// Stands in for @twilio/voice-sdk 2.x in browser tests (the real one needs Twilio's servers).
// Same surface the pages use: `new Twilio.Device(token, options)`, `register()`, `unregister()`,
// `connect()`, `updateToken()`, `destroy()`, and Device/Call events. Like the real one, a
// registration completes when Twilio says so: the test emits 'registered'. It records what the page asked for on
// `window.__fake`, and lets the test emit the events Twilio would.
'use strict';

(function () {
  class Emitter {
    constructor() {
      this.listeners = new Map();
    }

    on(event, listener) {
      if (!this.listeners.has(event)) {
        this.listeners.set(event, []);
      }
      this.listeners.get(event).push(listener);
      return this;
    }

    addListener(event, listener) {
      return this.on(event, listener);
    }

    removeListener(event, listener) {
      this.listeners.set(event, (this.listeners.get(event) || []).filter((l) => l !== listener));
      return this;
    }

    off(event, listener) {
      return this.removeListener(event, listener);
    }

    emit(event, ...args) {
      fake.events.push([this.kind, event]);
      for (const listener of (this.listeners.get(event) || []).slice()) {
        listener(...args);
      }
      return true;
    }
  }

  function identityOf(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload)).grants.identity;
    } catch (_) {
      return null;
    }
  }

  class Call extends Emitter {
    constructor(device, direction, parameters, customParameters) {
      super();
      this.kind = 'call';
      this.device = device;
      this.direction = direction;
      this.parameters = parameters;
      this.customParameters = new Map(Object.entries(customParameters || {}));
      this.muted = false;
      this.state = direction === 'INCOMING' ? 'pending' : 'connecting';
      this.log = [];
    }

    accept() {
      this.log.push('accept');
      this.state = 'open';
      this.emit('accept', this);
    }

    reject() {
      this.log.push('reject');
      this.state = 'closed';
      this.emit('reject');
    }

    ignore() {
      this.log.push('ignore');
      this.state = 'closed';
    }

    disconnect() {
      this.log.push('disconnect');
      if (this.state === 'closed') {
        return;
      }
      this.state = 'closed';
      this.emit('disconnect', this);
    }

    mute(shouldMute = true) {
      this.log.push(shouldMute ? 'mute' : 'unmute');
      this.muted = Boolean(shouldMute);
      this.emit('mute', this.muted, this);
    }

    isMuted() {
      return this.muted;
    }

    status() {
      return this.state;
    }
  }

  class Device extends Emitter {
    constructor(token, options) {
      super();
      this.kind = 'device';
      this.token = token;
      this.options = options;
      this.identity = identityOf(token);
      this.state = 'unregistered';
      this.destroyed = false;
      this.pendingRegistration = null;
      fake.devices.push(this);
    }

    // Like the real SDK: resolves once registered, rejects on a device error meanwhile.
    register() {
      fake.registerCalls += 1;
      this.state = 'registering';
      this.emit('registering');
      return new Promise((resolve, reject) => {
        this.pendingRegistration = { resolve, reject };
      });
    }

    unregister() {
      fake.unregisterCalls += 1;
      this.state = 'unregistered';
      this.emit('unregistered');
      return Promise.resolve();
    }

    async connect(options) {
      const params = options && options.params ? Object.assign({}, options.params) : null;
      fake.connects.push({ identity: this.identity, params });
      const call = new Call(this, 'OUTGOING', { To: params && params.phoneNumber }, params);
      fake.calls.push(call);
      return call;
    }

    updateToken(token) {
      fake.tokenUpdates.push(identityOf(token));
      this.token = token;
    }

    disconnectAll() {
      for (const call of fake.calls.filter((c) => c.device === this)) {
        call.disconnect();
      }
    }

    destroy() {
      this.destroyed = true;
      this.disconnectAll();
      this.state = 'destroyed';
      this.emit('unregistered');
      this.emit('destroyed');
    }

    emit(event, ...args) {
      if (event === 'registered') {
        this.state = 'registered';
        if (this.pendingRegistration) {
          this.pendingRegistration.resolve();
          this.pendingRegistration = null;
        }
      }
      const result = super.emit(event, ...args);
      if (event === 'error' && this.pendingRegistration) {
        this.pendingRegistration.reject(args[0]);
        this.pendingRegistration = null;
      }
      return result;
    }
  }

  const fake = {
    devices: [],
    calls: [],
    connects: [],
    registerCalls: 0,
    unregisterCalls: 0,
    tokenUpdates: [],
    events: [],

    device() {
      return this.devices[this.devices.length - 1];
    },

    call() {
      return this.calls[this.calls.length - 1];
    },

    /** Twilio rings this device: an incoming call with these parameters, and the custom
     * parameters Warmline put on the ring. */
    incoming(parameters, customParameters) {
      const device = this.device();
      const call = new Call(
        device,
        'INCOMING',
        Object.assign({ CallSid: 'CA' + '7'.repeat(32) }, parameters),
        customParameters,
      );
      this.calls.push(call);
      device.emit('incoming', call);
      return this.calls.length - 1;
    },

    emitDevice(event, ...args) {
      this.device().emit(event, ...args);
    },

    emitCall(event, ...args) {
      const call = this.call();
      if (event === 'accept' || event === 'ringing') {
        call.state = event === 'accept' ? 'open' : 'ringing';
      }
      if (event === 'disconnect' || event === 'cancel' || event === 'reject') {
        call.state = 'closed';
      }
      call.emit(event, ...(args.length ? args : event === 'accept' || event === 'disconnect' ? [call] : []));
    },

    /** A plain-data view for assertions from the test. */
    summary() {
      return {
        identities: this.devices.map((d) => d.identity),
        options: this.devices.map((d) => d.options),
        destroyed: this.devices.map((d) => d.destroyed),
        registerCalls: this.registerCalls,
        unregisterCalls: this.unregisterCalls,
        // Each device's state: 'unregistered', 'registering', 'registered' or 'destroyed'.
        states: this.devices.map((d) => d.state),
        connects: this.connects,
        tokenUpdates: this.tokenUpdates,
        callLogs: this.calls.map((c) => c.log),
      };
    },
  };

  window.__fake = fake;
  window.Twilio = { Device, Call };
})();
