#!/usr/bin/env node
/**
 * A crowd of presence members for the tests of Pusher's 100-member limit: ``count``
 * pusher-js connections in one process, each joining ``channel`` as its own user.
 *
 * Usage: node presence_crowd.mjs '<json config>'
 *   key, secret, host, port   the soketi app (required)
 *   channel                   a presence- channel (required)
 *   count                     how many members (required)
 *   prefix                    user ids are `${prefix}${n}`, names "Crowd n" (default "crowd-")
 *
 * The members are signed here with the app secret, as a channel-auth endpoint would
 * sign them: a hundred distinct logged-in users would only test Django's login, and a
 * presence channel counts distinct user ids, so one user's hundred tabs stay one member.
 *
 * Output (JSON lines on stdout): {"type":"ready","members":<members the last one saw>}
 * once every connection is subscribed, or {"type":"error",...}. Exits when stdin closes.
 */
import { createHmac } from 'node:crypto';
import Pusher from 'pusher-js';

console.log = console.info = console.debug = (...args) => console.error(...args);
const emit = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const config = JSON.parse(process.argv[2] ?? '{}');
for (const field of ['key', 'secret', 'host', 'port', 'channel', 'count']) {
  if (config[field] === undefined) throw new Error(`config.${field} is required`);
}
const prefix = config.prefix ?? 'crowd-';

function signer(userId, name) {
  return (params, callback) => {
    const channelData = JSON.stringify({ user_id: userId, user_info: { name } });
    const signature = createHmac('sha256', config.secret)
      .update(`${params.socketId}:${params.channelName}:${channelData}`)
      .digest('hex');
    callback(null, { auth: `${config.key}:${signature}`, channel_data: channelData });
  };
}

const clients = [];
let subscribed = 0;
for (let n = 1; n <= config.count; n += 1) {
  const client = new Pusher(config.key, {
    cluster: 'mt1',
    wsHost: config.host,
    wsPort: config.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    channelAuthorization: { customHandler: signer(`${prefix}${n}`, `Crowd ${n}`) },
  });
  const channel = client.subscribe(config.channel);
  channel.bind('pusher:subscription_succeeded', (members) => {
    subscribed += 1;
    if (subscribed === config.count) emit({ type: 'ready', members: members.count });
  });
  channel.bind('pusher:subscription_error', (error) => {
    emit({ type: 'error', member: n, error: error && (error.error || error.status || String(error)) });
  });
  clients.push(client);
}

function stop() {
  for (const client of clients) client.disconnect();
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
