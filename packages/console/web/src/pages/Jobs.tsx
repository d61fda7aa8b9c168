import { createColumnHelper } from '@tanstack/react-table';
import { useEffect, useMemo, useState } from 'react';
import { errorText, get } from '../api';
import { DataTable } from '../components/DataTable';
import { OkBadge, StateBadge } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href } from '../router';
import type { Job, JobSummary, MachineResult } from '../types';

const POLL_MS = 400;
const resultCol = createColumnHelper<MachineResult>();
const jobCol = createColumnHelper<JobSummary>();

function ProgressBar({ done, total }: { done: number; total: number }) {
  const percent = total === 0 ? 100 : Math.round((done / total) * 100);
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label="job progress"
      aria-valuemin={0}
      aria-valuemax={total}
      aria-valuenow={done}
    >
      <div className="progress-fill" style={{ width: `${percent}%` }} />
      <span className="progress-text">
        {done} / {total}
      </span>
    </div>
  );
}

/** One job, polled until it finishes. */
export function JobView({ id }: { id: string }) {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const poll = () => {
      get<Job>(`/api/jobs/${encodeURIComponent(id)}`).then(
        (j) => {
          if (stopped) return;
          setJob(j);
          setError(null);
          if (!j.finished) timer = window.setTimeout(poll, POLL_MS);
        },
        (err: unknown) => {
          if (stopped) return;
          setError(errorText(err));
        },
      );
    };
    poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [id]);

  const columns = useMemo(
    () => [
      resultCol.accessor('machine', { header: 'Machine' }),
      resultCol.accessor('address', { header: 'Address', cell: (c) => <code>{c.getValue()}</code> }),
      resultCol.accessor('ok', { header: 'Result', cell: (c) => <OkBadge ok={c.getValue()} /> }),
      resultCol.accessor('state', { header: 'State', cell: (c) => <StateBadge state={c.getValue()} /> }),
      resultCol.accessor('method', { header: 'Method', cell: (c) => c.getValue() ?? '—' }),
      resultCol.accessor('code', { header: 'Code', cell: (c) => c.getValue() ?? '—' }),
      resultCol.accessor('message', { header: 'Message' }),
    ],
    [],
  );

  if (error) {
    return (
      <p className="error" role="alert">
        {error}
      </p>
    );
  }
  if (!job) return <p className="muted">Loading…</p>;
  const ok = job.results.filter((r) => r.ok).length;
  const failed = job.results.length - ok;
  return (
    <section>
      <p>
        <a href={href('/jobs')}>← Jobs</a>
      </p>
      <div className="page-head">
        <h1>
          Job: {job.operation}
          {job.detail ? <span className="muted"> · {job.detail}</span> : null}
        </h1>
      </div>
      <ProgressBar done={job.done} total={job.total} />
      <p className="job-status" data-testid="job-status" data-finished={job.finished ? 'true' : 'false'}>
        {job.finished ? `Finished: ${ok} ok, ${failed} failed` : `Running: ${job.done} of ${job.total} done`}
        <span className="muted">
          {' '}
          · started {formatTime(job.startedAt)} by {job.user}
          {job.finishedAt ? ` · finished ${formatTime(job.finishedAt)}` : ''}
        </span>
      </p>
      {job.error && (
        <p className="error" role="alert">
          {job.error.code}: {job.error.message}
        </p>
      )}
      <DataTable data={job.results} columns={columns} label="job results" empty="No result yet." />
    </section>
  );
}

export function JobList() {
  const { data, error, reload } = useGet<{ jobs: JobSummary[] }>('/api/jobs');
  const columns = useMemo(
    () => [
      jobCol.accessor('startedAt', {
        header: 'Started',
        cell: (c) => <a href={href(`/jobs/${c.row.original.id}`)}>{formatTime(c.getValue())}</a>,
      }),
      jobCol.accessor('operation', { header: 'Operation' }),
      jobCol.accessor('detail', { header: 'Detail', cell: (c) => c.getValue() ?? '—' }),
      jobCol.accessor('user', { header: 'By' }),
      jobCol.accessor((j) => `${j.done} / ${j.total}`, { id: 'progress', header: 'Done' }),
      jobCol.accessor('ok', { header: 'OK' }),
      jobCol.accessor('failed', { header: 'Failed' }),
      jobCol.accessor('finished', {
        header: 'Status',
        cell: (c) => (c.row.original.error ? c.row.original.error.code : c.getValue() ? 'finished' : 'running'),
      }),
    ],
    [],
  );
  return (
    <section>
      <div className="page-head">
        <h1>Jobs</h1>
        <button type="button" onClick={reload}>
          Reload
        </button>
      </div>
      <p className="muted">Bulk operations started from this console since it was started (one runs at a time).</p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <DataTable data={data?.jobs ?? []} columns={columns} label="jobs" empty="No job yet: start one on Machines." />
    </section>
  );
}
