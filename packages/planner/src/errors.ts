import { VolactError } from '@volact/core';

/** The planner's error catalogue (reading and checking an inventory of sites). */
export const plannerErrors = {
  INVENTORY_UNREADABLE: 'the inventory file cannot be read (missing, a folder, no permission) or is larger than 4 MiB',
  INVENTORY_SYNTAX:
    'the inventory is not YAML or JSON (the message names the line and column when the parser does), or repeats a key',
  INVENTORY_INVALID:
    'a field of the inventory is missing, unknown or out of bounds; the message names the site and field ("sites[2].computers: …")',
} as const;

export type PlannerErrorCode = keyof typeof plannerErrors;

export class PlannerError extends VolactError<PlannerErrorCode> {
  override readonly name = 'PlannerError';
}
