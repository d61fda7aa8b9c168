import { useCallback, useEffect, useRef, useState } from 'react';
import { errorText, get } from './api';

export interface Loaded<T> {
  readonly data: T | null;
  readonly error: string | null;
  readonly loading: boolean;
  readonly reload: () => void;
}

/** GETs `path` (again when it changes, or on reload()); the latest answer wins. */
export function useGet<T>(path: string | null): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(path !== null);
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    if (path === null) return;
    const call = ++latest.current;
    setLoading(true);
    get<T>(path).then(
      (d) => {
        if (call !== latest.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (call !== latest.current) return;
        setError(errorText(err));
        setLoading(false);
      },
    );
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Runs an action with a busy flag and a success or error message for the form. */
export function useAction(): {
  busy: boolean;
  message: { ok: boolean; text: string } | null;
  run: <T>(action: () => Promise<T>, done?: (result: T) => string | void) => void;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const run = useCallback(<T>(action: () => Promise<T>, done?: (result: T) => string | void) => {
    setBusy(true);
    setMessage(null);
    action().then(
      (result) => {
        setBusy(false);
        const text = done?.(result);
        if (text) setMessage({ ok: true, text });
      },
      (err: unknown) => {
        setBusy(false);
        setMessage({ ok: false, text: errorText(err) });
      },
    );
  }, []);
  const clear = useCallback(() => setMessage(null), []);
  return { busy, message, run, clear };
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
