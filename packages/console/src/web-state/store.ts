/** The console store's part for web sessions and jobs that survive a restart (both engines; see ../store.ts). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by its module
export interface WebStateStore {}
