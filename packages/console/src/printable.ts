// printable() lives in @volact/core (a text utility about terminals, which the CLI uses without
// loading the console); the console keeps exporting it from here.
export { printable } from '@volact/core';
