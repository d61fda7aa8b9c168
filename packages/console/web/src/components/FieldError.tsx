import { ApiError, errorText } from '../api';

/**
 * An API error split by the field it names: the server's validation messages start with the
 * field's path (`token: …`, `discover.range: …`, `addresses.2: …`). A form shows the message
 * next to that field, and anything it cannot place above its buttons.
 */
export interface FormError {
  readonly code: string;
  /** The field path the message starts with, or null. */
  readonly field: string | null;
  readonly message: string;
}

const FIELD = /^([A-Za-z][\w-]*(?:[.[][\w-]+\]?)*): (.+)$/s;

export function formError(err: unknown): FormError {
  if (err instanceof ApiError) {
    const m = FIELD.exec(err.message);
    return m
      ? { code: err.code, field: m[1] ?? null, message: m[2] ?? err.message }
      : { code: err.code, field: null, message: err.message };
  }
  return { code: 'ERROR', field: null, message: errorText(err) };
}

/** Whether `error` names one of `names` (a path segment: `range` matches `discover.range`, `addresses` matches `addresses.2`). */
export function namesField(error: FormError | null, names: readonly string[]): boolean {
  if (!error?.field) return false;
  const parts = error.field.split(/[.[\]]+/).filter(Boolean);
  return names.some((n) => error.field === n || parts.includes(n));
}

/** The message under a field when `error` names it. */
export function FieldError({ error, names, id }: { error: FormError | null; names: readonly string[]; id: string }) {
  if (!namesField(error, names)) return null;
  return (
    <span className="field-error" id={id} role="alert">
      {error?.field}: {error?.message}
    </span>
  );
}

/** The error when it names none of the form's fields (shown above the buttons). */
export function FormErrorLine({ error, fields }: { error: FormError | null; fields: readonly string[] }) {
  if (!error || namesField(error, fields)) return null;
  return (
    <p className="error" role="alert">
      {error.code}: {error.field ? `${error.field}: ` : ''}
      {error.message}
    </p>
  );
}
