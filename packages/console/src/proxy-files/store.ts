/** The console store's part for installation-ID files collected for isolated networks (both engines; see ../store.ts). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by its module
export interface ProxyFileStore {}
