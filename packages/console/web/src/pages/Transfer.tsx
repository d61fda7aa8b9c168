import { useCallback, useId, useState, type ChangeEvent, type FormEvent } from 'react';
import { ApiError, errorText, post, postDownload } from '../api';
import { Dialog } from '../components/Dialog';
import { ReasonButton, viewerReason } from '../components/ReasonButton';
import { formatTime } from '../hooks';
import { MIN_PASSPHRASE_LENGTH, type ImportSummary, type SessionInfo } from '../types';

const EXPORT_NAME = 'volact-console-export.json';
const KINDS = [
  ['machines', 'Machines'],
  ['statusHistory', 'Status history'],
  ['keys', 'Product keys'],
  ['confirmationIds', 'Confirmation IDs'],
  ['operations', 'Operations log'],
] as const;
const PASSPHRASE_CODES = new Set(['PASSPHRASE_REQUIRED', 'PASSPHRASE_WRONG']);

/** The passphrase asked for an export with secrets (twice) or an import of one (once). */
function PassphraseDialog({
  title,
  confirm,
  about,
  action,
  error,
  busy,
  onSubmit,
  onClose,
}: {
  title: string;
  /** Ask twice (a new passphrase). */
  confirm: boolean;
  about: string;
  action: string;
  /** An error about the passphrase (PASSPHRASE_REQUIRED, PASSPHRASE_WRONG): shown at the field. */
  error: string | null;
  busy: boolean;
  onSubmit: (passphrase: string) => void;
  onClose: () => void;
}) {
  const [passphrase, setPassphrase] = useState('');
  const [again, setAgain] = useState('');
  const ids = { about: useId(), error: useId() };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSubmit(passphrase);
  };
  const reason =
    passphrase.length < MIN_PASSPHRASE_LENGTH
      ? `the passphrase needs ${MIN_PASSPHRASE_LENGTH} characters or more`
      : confirm && again !== passphrase
        ? 'the two passphrases differ'
        : null;
  return (
    <Dialog title={title} onClose={onClose}>
      <form className="stack" onSubmit={submit}>
        <p id={ids.about} className="muted">
          {about}
        </p>
        <label>
          Passphrase
          <input
            type="password"
            value={passphrase}
            onChange={(e) => setPassphrase(e.target.value)}
            autoComplete={confirm ? 'new-password' : 'off'}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${ids.about} ${ids.error}` : ids.about}
          />
        </label>
        {error && (
          <span id={ids.error} className="field-error" role="alert">
            {error}
          </span>
        )}
        {confirm && (
          <label>
            Passphrase again
            <input type="password" value={again} onChange={(e) => setAgain(e.target.value)} autoComplete="off" />
          </label>
        )}
        <div className="actions">
          <ReasonButton type="submit" className="primary" reason={reason} busy={busy}>
            {action}
          </ReasonButton>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ExportCard({ session }: { session: SessionInfo }) {
  const [secrets, setSecrets] = useState(false);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [passError, setPassError] = useState<string | null>(null);
  const run = (passphrase?: string) => {
    setBusy(true);
    setMessage(null);
    setPassError(null);
    postDownload('/api/export', passphrase === undefined ? {} : { passphrase }, EXPORT_NAME).then(
      () => {
        setBusy(false);
        setAsking(false);
        setMessage({
          ok: true,
          text:
            passphrase === undefined
              ? `Saved ${EXPORT_NAME}, without secrets (keys and agent tokens left out).`
              : `Saved ${EXPORT_NAME}, with its secrets sealed under the passphrase.`,
        });
      },
      (err: unknown) => {
        setBusy(false);
        if (err instanceof ApiError && PASSPHRASE_CODES.has(err.code)) setPassError(`${err.code}: ${err.message}`);
        else {
          setAsking(false);
          setMessage({ ok: false, text: errorText(err) });
        }
      },
    );
  };
  const close = useCallback(() => setAsking(false), []);
  return (
    <div className="card stack" aria-labelledby="export-title">
      <h2 id="export-title">Export</h2>
      <p className="muted">
        Everything this console holds (machines, their status history, keys, confirmation IDs, the operations log) in
        one JSON file, to move it to another console or keep a copy.
      </p>
      <label className="check">
        <input type="checkbox" checked={secrets} onChange={(e) => setSecrets(e.target.checked)} />
        With secrets (the product keys and the agents’ tokens), sealed under a passphrase
      </label>
      <div>
        <ReasonButton
          className="primary"
          busy={busy}
          reason={viewerReason(session)}
          onClick={() => (secrets ? setAsking(true) : run())}
        >
          {secrets ? 'Export with secrets…' : 'Export'}
        </ReasonButton>
      </div>
      {message && (
        <p className={message.ok ? 'success' : 'error'} role={message.ok ? 'status' : 'alert'}>
          {message.text}
        </p>
      )}
      {asking && (
        <PassphraseDialog
          title="Passphrase for the export’s secrets"
          confirm
          about={`The product keys and agent tokens in the file are sealed (AES-256-GCM) under a key made from this passphrase, never under this console’s key file: whoever has the file and the passphrase has the keys. The import asks for it. At least ${MIN_PASSPHRASE_LENGTH} characters; keep it apart from the file.`}
          action="Export"
          error={passError}
          busy={busy}
          onSubmit={run}
          onClose={close}
        />
      )}
    </div>
  );
}

function Summary({ summary }: { summary: ImportSummary }) {
  return (
    <div className="stack" data-testid="import-summary">
      <p className="success" role="status">
        Imported the export of {formatTime(summary.exportedAt)}
        {summary.secrets ? ', with its secrets' : ', without secrets'}.
      </p>
      <div className="table-wrap">
        <table className="data" aria-label="import summary">
          <thead>
            <tr>
              <th>What</th>
              <th>Added</th>
              <th>Updated</th>
              <th>Unchanged</th>
            </tr>
          </thead>
          <tbody>
            {KINDS.map(([kind, label]) => (
              <tr key={kind}>
                <td>{label}</td>
                <td>{summary[kind].added}</td>
                <td>{summary[kind].updated}</td>
                <td>{summary[kind].unchanged}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {(summary.secretsMissing.keys > 0 || summary.secretsMissing.machines > 0) && (
        <p className="notice">
          Secrets missing: {summary.secretsMissing.keys} key{summary.secretsMissing.keys === 1 ? '' : 's'} and{' '}
          {summary.secretsMissing.machines} machine token{summary.secretsMissing.machines === 1 ? '' : 's'} came without
          their secret (the file had none for them): add those keys again, and enrol those machines again.
        </p>
      )}
    </div>
  );
}

function ImportCard({ session }: { session: SessionInfo }) {
  const [file, setFile] = useState<{ name: string; text: string; secrets: boolean } | null>(null);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [passError, setPassError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [summary, setSummary] = useState<ImportSummary | null>(null);
  const pick = (event: ChangeEvent<HTMLInputElement>) => {
    setError(null);
    setSummary(null);
    const f = event.target.files?.[0];
    if (!f) return setFile(null);
    f.text().then(
      (text) => {
        let secrets = false;
        try {
          const parsed = JSON.parse(text) as { secrets?: unknown } | null;
          secrets = typeof parsed === 'object' && parsed !== null && parsed.secrets != null;
        } catch {
          // Not JSON: the server says what is wrong with it.
        }
        setFile({ name: f.name, text, secrets });
      },
      (err: unknown) => setError(errorText(err)),
    );
  };
  const run = (passphrase?: string) => {
    if (!file) return;
    setBusy(true);
    setError(null);
    setPassError(null);
    post<ImportSummary>('/api/import', { file: file.text, ...(passphrase === undefined ? {} : { passphrase }) }).then(
      (s) => {
        setBusy(false);
        setAsking(false);
        setSummary(s);
      },
      (err: unknown) => {
        setBusy(false);
        if (err instanceof ApiError && PASSPHRASE_CODES.has(err.code)) {
          setAsking(true);
          setPassError(`${err.code}: ${err.message}`);
        } else {
          setAsking(false);
          setError(errorText(err));
        }
      },
    );
  };
  const close = useCallback(() => setAsking(false), []);
  return (
    <div className="card stack" aria-labelledby="import-title">
      <h2 id="import-title">Import</h2>
      <p className="muted">
        Merges an export into this console: new machines, keys and history are added, newer ones update what is here,
        nothing is removed.
      </p>
      <label>
        Export file
        <input type="file" accept=".json,application/json" onChange={pick} />
      </label>
      {file && (
        <p className="muted small">
          {file.name}: {file.secrets ? 'holds secrets (the passphrase will be asked)' : 'no secrets'}
        </p>
      )}
      <div>
        <ReasonButton
          className="primary"
          busy={busy}
          reason={viewerReason(session) ?? (file ? null : 'choose an export file first')}
          onClick={() => (file?.secrets ? setAsking(true) : run())}
        >
          {file?.secrets ? 'Import…' : 'Import'}
        </ReasonButton>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {summary && <Summary summary={summary} />}
      {asking && (
        <PassphraseDialog
          title="Passphrase of the export"
          confirm={false}
          about="The file’s secrets (product keys, agent tokens) are sealed under the passphrase it was exported with; they are sealed again under this console’s key file once opened."
          action="Import"
          error={passError}
          busy={busy}
          onSubmit={run}
          onClose={close}
        />
      )}
    </div>
  );
}

/** Export / import of the whole data set (the CLI's `console export` and `console import`). */
export function Transfer({ session }: { session: SessionInfo }) {
  return (
    <section>
      <div className="page-head">
        <h1>Export / import</h1>
      </div>
      <div className="two-cols">
        <ExportCard session={session} />
        <ImportCard session={session} />
      </div>
    </section>
  );
}
