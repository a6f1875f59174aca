// Replays captured offer events through offers_live.js in many random orders (Node, no browser).
//
//   node tests/browser/replay_events.cjs < input.json > result.json
//
// input: {initial: {staff, public, stamp}, events: [{name, data}], final: {staff, public},
//         permutations, seed}. For each permutation, a staff store and a guest store start
// from the initial lists (version `stamp`, microseconds), take every event in a shuffled
// order with about one in ten delivered twice, and must then show exactly the final lists.
// Any fetch they would make fails the run: the events alone must be enough.
'use strict';

const path = require('path');
const live = require(path.join(__dirname, '..', '..', 'example_project', 'hotel', 'static', 'hotel', 'offers_live.js'));

/** mulberry32: a small seeded generator, so a failing order can be replayed. */
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled(items, random) {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function replay(input, list, project, order) {
  const fetches = [];
  const store = live.createStore({
    loadList: async () => {
      fetches.push('list');
      return { offers: fetches.length === 1 ? list : [], stamp: input.initial.stamp };
    },
    loadOne: async (id) => {
      fetches.push(id);
      throw new Error('no fetch expected');
    },
    project,
    setTimeout: () => 0,
  });
  await store.refresh(); // the initial list (the only fetch allowed)
  for (const event of order) store.handle(event.name, event.data);
  await Promise.resolve();
  return { shown: store.offers(), fetches: fetches.slice(1) };
}

function view(offers, fields) {
  return offers.map((offer) => Object.fromEntries(fields.map((name) => [name, offer[name] ?? null])));
}

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const random = generator(input.seed);
  const staffFields = Object.keys(input.final.staff[0] || { id: 0 }).filter((name) => name !== 'photo');
  const publicFields = [...Object.keys(live.publicView({})), 'photo_url'];
  const expected = {
    staff: view(input.final.staff, staffFields),
    public: view(input.final.public, publicFields),
  };
  const failures = [];
  let redelivered = 0;
  for (let run = 0; run < input.permutations; run += 1) {
    const order = shuffled(input.events, random);
    for (let i = order.length - 1; i >= 0; i -= 1) {
      if (random() < 0.1) {
        order.splice(i + 1 + Math.floor(random() * (order.length - i)), 0, order[i]);
        redelivered += 1;
      }
    }
    for (const [kind, list, project, fields] of [
      ['staff', input.initial.staff, undefined, staffFields],
      ['public', input.initial.public, live.publicView, publicFields],
    ]) {
      const result = await replay(input, list, project, order);
      const shown = view(result.shown, fields);
      if (JSON.stringify(shown) !== JSON.stringify(expected[kind]) || result.fetches.length) {
        failures.push({ run, kind, fetches: result.fetches, shown, order: order.map((e) => e.data.event_id) });
      }
    }
  }
  const summary = { runs: input.permutations, redelivered, failed: failures.length, failures: failures.slice(0, 3) };
  process.stdout.write(JSON.stringify(summary));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack));
  process.exit(1);
});
