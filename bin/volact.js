#!/usr/bin/env node
// The `volact` command: the built CLI package (run `npm run build` after changing sources).
import { main } from '../packages/cli/dist/index.js';

await main(process.argv);
