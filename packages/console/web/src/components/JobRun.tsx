import { useCallback, useEffect, useRef, useState } from 'react';
import { get, post } from '../api';
import { href } from '../router';
import type { Job, JobRequest } from '../types';
import { formError, type FormError } from './FieldError';

const POLL_MS = 400;

/**
 * A job started from a page that stays on it (one machine's action, collecting installation IDs):
 * POST /api/jobs, then GET /api/jobs/:id until it finishes.
 */
export function useJobRun(onFinished?: (job: Job) => void) {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);
  const timer = useRef<number | undefined>(undefined);
  const alive = useRef(true);
  const finished = useRef(onFinished);
  finished.current = onFinished;

  useEffect(
    () => () => {
      alive.current = false;
      window.clearTimeout(timer.current);
    },
    [],
  );

  const poll = useCallback((id: string) => {
    get<Job>(`/api/jobs/${encodeURIComponent(id)}`).then(
      (j) => {
        if (!alive.current) return;
        setJob(j);
        if (j.finished) {
          setBusy(false);
          finished.current?.(j);
        } else timer.current = window.setTimeout(() => poll(id), POLL_MS);
      },
      (err: unknown) => {
        if (!alive.current) return;
        setError(formError(err));
        setBusy(false);
      },
    );
  }, []);

  const start = useCallback(
    (request: JobRequest) => {
      window.clearTimeout(timer.current);
      setBusy(true);
      setError(null);
      setJob(null);
      post<{ job: Job }>('/api/jobs', request).then(
        ({ job: j }) => {
          if (!alive.current) return;
          setJob(j);
          if (j.finished) {
            setBusy(false);
            finished.current?.(j);
          } else poll(j.id);
        },
        (err: unknown) => {
          if (!alive.current) return;
          setError(formError(err));
          setBusy(false);
        },
      );
    },
    [poll],
  );
  const clear = useCallback(() => {
    setJob(null);
    setError(null);
  }, []);
  return { job, error, busy, start, clear };
}

/** One line on a job started here: progress, then its outcome, with a link to its page. */
export function JobLine({ job, label }: { job: Job; label: string }) {
  const ok = job.results.filter((r) => r.ok).length;
  const failed = job.results.filter((r) => !r.ok);
  const text = !job.finished
    ? `${label}: ${job.done} / ${job.total}…`
    : job.state === 'failed'
      ? `${label} failed: ${job.error ? `${job.error.code}: ${job.error.message}` : (job.outcome ?? '')}`
      : job.state === 'interrupted'
        ? `${label} was interrupted: ${job.outcome ?? ''}`
        : job.resultsTotal > job.results.length
          ? `${label} finished (${job.done} of ${job.total}).`
          : `${label} finished: ${ok} ok, ${failed.length} failed.`;
  const bad = job.finished && (job.state !== 'finished' || failed.length > 0);
  return (
    <div className={bad ? 'error job-line' : job.finished ? 'success job-line' : 'job-line'} role="status">
      <span data-testid="job-line">{text}</span>{' '}
      {job.finished && failed.length > 0 && failed.length <= 3 && (
        <span>{failed.map((r) => `${r.displayName ?? r.machine}: ${r.code ?? ''} ${r.message}`).join('; ')} </span>
      )}
      <a href={href(`/jobs/${job.id}`)}>the job</a>
    </div>
  );
}
