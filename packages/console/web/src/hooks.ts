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

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
