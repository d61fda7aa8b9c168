/** The console store's part for pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines) (both engines; see ../store.ts). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by its module
export interface FleetViewStore {}
