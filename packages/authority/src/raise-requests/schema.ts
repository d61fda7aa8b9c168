/** Limit-raise requests (migration 8). Owner: the raise-requests module. */
export const RAISE_REQUESTS_MIGRATION_SQLITE = 'SELECT 1;';
export const RAISE_REQUESTS_MIGRATION_POSTGRES = 'SELECT 1;';
