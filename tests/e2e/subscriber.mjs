#!/usr/bin/env node
/**
 * A real pusher-js client for the end-to-end tests (driven by harness.py).
 *
 * Usage:
 *   node subscriber.mjs '<json config>'
 *   E2E_SUBSCRIBER_CONFIG='<json config>' node subscriber.mjs
 *
 * Config (JSON object):
 *   key            app key (required)
 *   host           soketi host, e.g. "127.0.0.1" (required)
 *   port           soketi port (required)
 *   channels       list of channel names to subscribe to (default [])
 *   forceTLS       default false
 *   cluster        placeholder, pusher-js requires one (default "mt1")
 *   authEndpoint   optional channel-authorization URL (private-/presence- channels)
 *   headers        optional extra headers sent to authEndpoint
 *
 * Output: exactly one JSON object per line on stdout, one per thing that happens:
 *   {"type":"connected","socket_id":...}
 *   {"type":"state","previous":...,"current":...}
 *   {"type":"subscribed","channel":...}            (presence channels add "me" and "members")
 *   {"type":"member_added","channel":...,"member":{"id":...,"info":...}}     (presence channels)
 *   {"type":"member_removed","channel":...,"member":{"id":...,"info":...}}   (presence channels)
 *   {"type":"subscription_error","channel":...,"status":...,"error":...}
 *   {"type":"event","channel":...,"event":...,"data":<parsed>,"received_at_ms":...}
 *   {"type":"error","error":...}
 * Diagnostics (pusher-js logging) go to stderr, so stdout stays machine-readable.
 *
 * Lifetime: exits cleanly on SIGTERM/SIGINT, or when stdin closes. The harness keeps
 * stdin open as a pipe, so if the Python test process dies (even by SIGKILL) the pipe
 * closes and this process exits instead of lingering. Consequently, running it with
 * stdin at /dev/null makes it exit at once.
 */
import Pusher from 'pusher-js';

/** Write one protocol line to stdout (synchronous for pipes on Linux). */
function emit(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

// Anything a library prints with console.log must not corrupt the JSON-lines protocol.
console.log = console.info = console.debug = (...args) => console.error(...args);

function loadConfig() {
  const raw = process.argv[2] ?? process.env.E2E_SUBSCRIBER_CONFIG;
  if (!raw) {
    throw new Error('config missing: pass a JSON object as argv[2] or in E2E_SUBSCRIBER_CONFIG');
  }
  const config = JSON.parse(raw);
  for (const field of ['key', 'host', 'port']) {
    if (config[field] === undefined || config[field] === null || config[field] === '') {
      throw new Error(`config.${field} is required`);
    }
  }
  return config;
}

function describeError(err) {
  if (err === undefined || err === null) return null;
  if (err instanceof Error) return err.message;
  try {
    return JSON.parse(JSON.stringify(err));
  } catch {
    return String(err);
  }
}

let pusher = null;
let shuttingDown = false;

function shutdown(code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  try {
    pusher?.disconnect();
  } catch {
    // Exiting anyway; a failed disconnect must not block it.
  }
  process.exit(code);
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
// The parent holds stdin open; EOF means it is gone (or wants us gone).
process.stdin.on('end', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();

let config;
try {
  config = loadConfig();
} catch (err) {
  emit({ type: 'error', error: `bad config: ${describeError(err)}` });
  process.exit(2);
}

// Route pusher-js logging to stderr (it would otherwise use console.*).
Pusher.log = (message) => process.stderr.write(`[pusher-js] ${message}\n`);

const options = {
  cluster: config.cluster ?? 'mt1',
  wsHost: config.host,
  wsPort: Number(config.port),
  wssPort: Number(config.port),
  forceTLS: Boolean(config.forceTLS ?? false),
  // Only plain WebSockets: soketi has no HTTP fallback transports, and trying them
  // would only slow down failure detection.
  enabledTransports: ['ws'],
};
if (config.authEndpoint) {
  options.channelAuthorization = {
    endpoint: config.authEndpoint,
    transport: 'ajax',
    headers: config.headers ?? {},
  };
}

pusher = new Pusher(config.key, options);

pusher.connection.bind('state_change', ({ previous, current }) => {
  emit({ type: 'state', previous, current });
});
pusher.connection.bind('connected', () => {
  emit({ type: 'connected', socket_id: pusher.connection.socket_id });
});
pusher.connection.bind('error', (err) => {
  emit({ type: 'error', error: describeError(err?.error ?? err) });
});

for (const name of config.channels ?? []) {
  const channel = pusher.subscribe(name);
  channel.bind('pusher:subscription_succeeded', (members) => {
    if (!name.startsWith('presence-')) {
      emit({ type: 'subscribed', channel: name });
      return;
    }
    const all = [];
    members.each((member) => all.push({ id: member.id, info: member.info }));
    emit({ type: 'subscribed', channel: name, me: members.me, members: all });
  });
  if (name.startsWith('presence-')) {
    for (const [event, type] of [['pusher:member_added', 'member_added'], ['pusher:member_removed', 'member_removed']]) {
      channel.bind(event, (member) => emit({ type, channel: name, member: { id: member.id, info: member.info } }));
    }
  }
  channel.bind('pusher:subscription_error', (err) => {
    emit({
      type: 'subscription_error',
      channel: name,
      status: err?.status ?? null,
      error: describeError(err?.error ?? err),
    });
  });
  channel.bind_global((event, data) => {
    if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
    emit({ type: 'event', channel: name, event, data, received_at_ms: Date.now() });
  });
}
