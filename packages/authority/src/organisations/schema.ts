/**
 * Organisations, key ownership, issued artefacts, audit columns (migration 6). Owner: the
 * organisations module. Placeholder until its tables are written (a fresh database only).
 */
export const ORGANISATIONS_MIGRATION_SQLITE = 'SELECT 1;';
export const ORGANISATIONS_MIGRATION_POSTGRES = 'SELECT 1;';
