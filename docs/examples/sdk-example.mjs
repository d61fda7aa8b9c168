// A product embedding the volact client SDK: read the licence, react to changes, keep it
// renewed in the background. Usage: node docs/examples/sdk-example.mjs STATE_DIR
import { Licence } from '@volact/client';

const stateDir = process.argv[2];
if (!stateDir) {
  console.error('usage: node docs/examples/sdk-example.mjs STATE_DIR (see `volact client init`)');
  process.exit(1);
}

const licence = Licence.open({ stateDir });
const show = (s) => console.log(`${s.group}: ${s.state}${s.expiresAt ? ` until ${s.expiresAt}` : ''}`);
show(licence.status());

licence.onChange((status) => {
  show(status);
  if (status.state === 'notification') console.log('Please activate this product.');
});

const outcome = await licence.activate();
console.log(outcome.ok ? `activated: ${outcome.message}` : `not activated (${outcome.code}): ${outcome.message}`);

licence.startSchedule(); // timers are unref'd: a real app keeps running for its own reasons
