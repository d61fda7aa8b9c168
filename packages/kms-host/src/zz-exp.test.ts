import { it } from 'vitest';
import { connect } from 'node:net';
import { frame } from '@volact/core';
import { startKmsHost } from './host.js';
import { createActivatedHost, requestPayload } from './test-fixture.js';
it('x', async () => {
  const fx = await createActivatedHost();
  const host = await startKmsHost({ dataDir: fx.hostDir, listen: { host: '127.0.0.1', port: 0 }, clock: fx.clock });
  const huge = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const garbage = Buffer.concat(Array.from({ length: 10 }, () => frame(Buffer.alloc(68, 7))));
  for (let i = 0; i < 200; i++) {
    await new Promise<void>((resolve) => {
      const s = connect(host.address.port, '127.0.0.1', () => { s.write(huge); setImmediate(() => { s.write(garbage); s.write(frame(requestPayload(fx.group.id))); s.end(); }); });
      s.on('error', () => undefined); s.on('close', () => resolve());
    });
  }
  console.log('stats', host.statistics(), 'count', host.counts()[0]?.count);
  await host.close(); await fx.cleanup();
});
