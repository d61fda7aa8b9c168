import { describe, expect, it } from 'vitest';
import { REPORT_COLUMNS, REPORT_NAMES } from './reports.js';
import { REPORT_COLUMN_LABELS } from './web/contract.js';

describe('report columns', () => {
  it.each(REPORT_NAMES)('%s: every column has its human label (the UI table headers)', (name) => {
    for (const column of REPORT_COLUMNS[name]) expect(REPORT_COLUMN_LABELS[column], column).toMatch(/\S/);
  });
});
