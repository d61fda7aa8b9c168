#!/usr/bin/env -S node --max-semi-space-size=4
// The `volact` command: the built CLI package (run `npm run build` after changing sources).
// The node flags are the KMS host daemon's (HOST_NODE_FLAGS in packages/kms-host).
import { main } from '../packages/cli/dist/index.js';

await main(process.argv);
