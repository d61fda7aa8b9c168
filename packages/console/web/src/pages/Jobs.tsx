import { createColumnHelper } from '@tanstack/react-table';
import { useEffect, useMemo, useState } from 'react';
import { errorText, get, post } from '../api';
import { DataTable } from '../components/DataTable';
import { Pager } from '../components/Pager';
import { ReasonButton, viewerReason } from '../components/ReasonButton';
import { OkBadge, StateBadge } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href, navigate } from '../router';
import type { Job, JobSummary, MachineResult, SessionInfo } from '../types';

const POLL_MS = 400;
const resultCol = createColumnHelper<MachineResult>();
const jobCol = createColumnHelper<JobSummary>();

type JobState = JobSummary['state'];
const STATE_TEXT: Record<JobState, string> = {
  running: 'running',
  finished: 'finished',
  failed: 'failed',
  interrupted: 'interrupted',
};

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

function JobStateBadge({ state }: { state: JobState }) {
  return (
    <span className={`badge job-${state}`} data-job-state={state}>
      {STATE_TEXT[state]}
    </span>
  );
}

/** The job's one line: what it did, or why it stopped. */
function statusLine(job: Job, counts: { ok: number; failed: number } | null): string {
  switch (job.state) {
    case 'running':
      return `Running: ${job.done} of ${job.total} done`;
    case 'finished':
      return counts ? `Finished: ${counts.ok} ok, ${counts.failed} failed` : `Finished: ${job.resultsTotal} results`;
    case 'failed':
      return `Failed${job.error ? `: ${job.error.code}: ${job.error.message}` : ''}`;
    case 'interrupted':
      // The server's outcome says it whole ("interrupted by a restart after 37 of 100 machines").
      return `Interrupted ${(job.outcome ?? `by a restart after ${job.done} of ${job.total} machines`).replace(/^interrupted\s*/i, '')}`;
  }
}

/** The counts of the results on the page (the whole job's when the page holds them all). */
function pageCounts(job: Job): { ok: number; failed: number } {
  const ok = job.results.filter((r) => r.ok).length;
  return { ok, failed: job.results.length - ok };
}

/** The machine's state as the job saw it: never its current one, never "never read" when the job read it. */
function ResultState({ result, discover }: { result: MachineResult; discover: boolean }) {
  if (result.state) return <StateBadge state={result.state} />;
  // discover's refused agents did answer (they refused the token); another failure had no status.
  const answered = result.ok || (discover && result.code !== 'AGENT_UNREACHABLE');
  return <span className="muted">{answered ? '—' : 'no answer'}</span>;
}

/** One job, polled until it finishes; its results a page at a time. */
export function JobView({ id, session }: { id: string; session: SessionInfo }) {
  const [job, setJob] = useState<Job | null>(null);
  const [counts, setCounts] = useState<{ ok: number; failed: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [page, setPage] = useState({ offset: 0, limit: 100 });

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const poll = () => {
      get<Job>(`/api/jobs/${encodeURIComponent(id)}?offset=${page.offset}&limit=${page.limit}`).then(
        (j) => {
          if (stopped) return;
          setJob(j);
          setError(null);
          if (!j.finished) {
            timer = window.setTimeout(poll, POLL_MS);
            return;
          }
          // The whole job's counts: the page alone may hold only part of its results.
          if (j.offset === 0 && j.results.length >= j.resultsTotal) {
            setCounts(pageCounts(j));
          } else {
            get<{ jobs: JobSummary[] }>('/api/jobs').then(
              ({ jobs }) => {
                const s = jobs.find((x) => x.id === j.id);
                if (!stopped) setCounts(s ? { ok: s.ok, failed: s.failed } : pageCounts(j));
              },
              () => !stopped && setCounts(pageCounts(j)),
            );
          }
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
  }, [id, page]);

  const discover = job?.operation === 'discover';
  const columns = useMemo(
    () => [
      resultCol.accessor((r) => r.displayName ?? r.machine, { enableSorting: false, id: 'machine', header: 'Machine' }),
      resultCol.accessor('address', {
        enableSorting: false,
        header: 'Address',
        cell: (c) => <code>{c.getValue()}</code>,
      }),
      resultCol.accessor('ok', {
        enableSorting: false,
        header: 'Result',
        cell: (c) =>
          discover ? (
            <span className={`badge ${c.getValue() ? 'result-ok' : 'result-failed'}`}>
              {c.getValue() ? 'found' : 'refused'}
            </span>
          ) : (
            <OkBadge ok={c.getValue()} />
          ),
      }),
      resultCol.accessor('state', {
        enableSorting: false,
        header: 'State then',
        cell: (c) => <ResultState result={c.row.original} discover={discover} />,
      }),
      resultCol.accessor('method', { enableSorting: false, header: 'Method', cell: (c) => c.getValue() ?? '—' }),
      resultCol.accessor((r) => r.lastSeenAt ?? null, {
        enableSorting: false,
        id: 'lastSeenAt',
        header: 'Last contact then',
        cell: (c) => formatTime(c.getValue()),
      }),
      resultCol.accessor('code', { enableSorting: false, header: 'Code', cell: (c) => c.getValue() ?? '—' }),
      resultCol.accessor('message', { enableSorting: false, header: 'Message' }),
    ],
    [discover],
  );

  if (error) {
    return (
      <p className="error" role="alert">
        {error}
      </p>
    );
  }
  if (!job) return <p className="muted">Loading…</p>;
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
        <JobStateBadge state={job.state} />
      </div>
      <ProgressBar done={job.done} total={job.total} />
      <p
        className="job-status"
        data-testid="job-status"
        // Finished once its line is whole (a finished job's counts may come from the job list).
        data-finished={job.finished && (job.state !== 'finished' || counts !== null) ? 'true' : 'false'}
        data-state={job.state}
      >
        {statusLine(job, counts)}
        <span className="muted">
          {' '}
          · started {formatTime(job.startedAt)} by {job.user}
          {job.finishedAt ? ` · finished ${formatTime(job.finishedAt)}` : ''}
        </span>
      </p>
      {job.outcome && job.state !== 'interrupted' && (
        <p className="job-outcome" data-testid="job-outcome">
          {job.outcome}
        </p>
      )}
      {job.error && job.state !== 'failed' && (
        <p className="error" role="alert">
          {job.error.code}: {job.error.message}
        </p>
      )}
      {job.proxyFileId && (
        <p className="card">
          The installation-ID file for the isolated network:{' '}
          <a
            className="button"
            href={`/api/proxy-files/${encodeURIComponent(job.proxyFileId)}`}
            download={`volact-iids-${job.proxyFileId}.json`}
          >
            Download volact-iids-{job.proxyFileId}.json
          </a>
          <br />
          <span className="muted small">
            Signed by this console&apos;s key <code data-testid="console-key-id">{session.consoleKeyId}</code>. Take it
            to a connected machine with that key ID apart from the file (volact authority confirm-file FILE --out CIDS
            --console-key-id {session.consoleKeyId}), then apply the confirmation file it gives back on Machines.
          </span>
        </p>
      )}
      <p className="muted small">
        Each row shows the machine as this job saw it: its state and last contact then, not now.
      </p>
      <DataTable
        data={job.results}
        columns={columns}
        label="job results"
        empty={!job.finished ? 'No result yet.' : 'No result.'}
      />
      {job.resultsTotal > page.limit || page.offset > 0 ? (
        <Pager
          label="results"
          offset={page.offset}
          limit={page.limit}
          total={job.resultsTotal}
          onChange={(offset, limit) => setPage({ offset, limit })}
        />
      ) : null}
    </section>
  );
}

export function JobList({ session }: { session: SessionInfo }) {
  const { data, error, reload } = useGet<{ jobs: JobSummary[] }>('/api/jobs');
  const [starting, setStarting] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
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
      jobCol.accessor('state', {
        header: 'State',
        cell: (c) => {
          const j = c.row.original;
          return (
            <span className="job-state-cell">
              <JobStateBadge state={j.state} />
              {j.outcome && <span className="small"> {j.outcome}</span>}
              {j.error && <span className="error-code"> {j.error.code}</span>}
            </span>
          );
        },
      }),
    ],
    [],
  );
  const refreshAll = () => {
    setStarting({ busy: true, error: null });
    post<{ job: Job }>('/api/jobs', { operation: 'refresh', machines: 'all' }).then(
      ({ job }) => navigate(`/jobs/${job.id}`),
      (err: unknown) => setStarting({ busy: false, error: errorText(err) }),
    );
  };
  const running = data?.jobs.some((j) => j.state === 'running') ?? false;
  return (
    <section>
      <div className="page-head">
        <h1>Jobs</h1>
        <div className="actions">
          <ReasonButton
            className="primary"
            onClick={refreshAll}
            busy={starting.busy}
            reason={viewerReason(session) ?? (running ? 'a job is running: one runs at a time' : null)}
          >
            Refresh every machine
          </ReasonButton>
          <button type="button" onClick={reload}>
            Reload
          </button>
        </div>
      </div>
      <p className="muted">
        Bulk operations started from this console, newest first; they are kept across restarts (one runs at a time).
        Start one on Machines.
      </p>
      {(error ?? starting.error) && (
        <p className="error" role="alert">
          {error ?? starting.error}
        </p>
      )}
      <DataTable data={data?.jobs ?? []} columns={columns} label="jobs" empty="No job yet: start one on Machines." />
    </section>
  );
}
