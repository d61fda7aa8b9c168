import { VolactError } from '@volact/core';

/** The simulator's error catalogue (kept in sync with docs/errors.md by test/error-catalogue.test.ts). */
export const simulatorErrors = {
  SCENARIO_UNREADABLE: 'the scenario file cannot be read, or is not YAML or JSON',
  SCENARIO_INVALID: 'the scenario breaks a rule of its format (the field is named)',
  OUTPUT_UNWRITABLE: 'the output directory cannot be created or written',
  SIMULATION_FAILED: 'the fleet could not be set up (the authority refused to certify a host or mint a key)',
} as const;

export type SimulatorErrorCode = keyof typeof simulatorErrors;

export class SimulatorError extends VolactError<SimulatorErrorCode> {
  override readonly name = 'SimulatorError';
}
