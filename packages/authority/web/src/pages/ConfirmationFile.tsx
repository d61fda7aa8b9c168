import { useRef, useState, type ChangeEvent, type FormEvent } from 'react';
import { post } from '../api';
import { download } from '../csv';
import { Outcome } from '../components/Messages';
import { useAction } from '../hooks';

interface ConfirmationFileAnswer {
  readonly file: string;
  readonly request: { readonly id: string; readonly consoleKeyId: string; readonly digest: string };
  readonly confirmed: number;
  readonly refused: number;
}

/** An IID the authority refused, named by the machines the installation-ID file lists for it. */
interface Refusal {
  readonly machines: string;
  readonly installationId: string;
  readonly code: string;
  readonly message: string;
}

/** What the portal takes (the API's limit); larger files go through `volact authority confirm-file`. */
const MAX_FILE_BYTES = 24 * 1024 * 1024;
const KEY_ID = /^[0-9a-fA-F]{16}$/;

/**
 * The refused results of the confirmation file, each with the machine names the installation-ID
 * file gives its IID (the operator tells the caller which machines stay unlicensed, and why).
 */
function refusals(iidText: string, cidText: string): Refusal[] {
  const names = new Map<string, string[]>();
  try {
    const iids = JSON.parse(iidText) as { entries?: { machine?: unknown; installationId?: unknown }[] };
    for (const e of iids.entries ?? []) {
      if (typeof e.installationId !== 'string' || typeof e.machine !== 'string') continue;
      names.set(e.installationId, [...(names.get(e.installationId) ?? []), e.machine]);
    }
    const cids = JSON.parse(cidText) as {
      results?: { installationId: string; ok: boolean; code?: string; message?: string }[];
    };
    return (cids.results ?? [])
      .filter((r) => !r.ok)
      .map((r) => ({
        machines: (names.get(r.installationId) ?? []).join(', ') || r.installationId.slice(0, 13),
        installationId: r.installationId,
        code: r.code ?? 'REFUSED',
        message: r.message ?? '',
      }));
  } catch {
    return []; // the counts are still shown; the file holds every result
  }
}

/**
 * A customer's console on an isolated network sends its machines' installation IDs in a signed
 * file: the operator uploads it and downloads the confirmation file to send back. An edited
 * file is refused before any IID is confirmed; with the console's key ID, so is a file signed
 * by any other key (re-signed on the way).
 */
export function ConfirmationFile() {
  const [text, setText] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [keyId, setKeyId] = useState('');
  const [answer, setAnswer] = useState<(ConfirmationFileAnswer & { refusals: Refusal[]; name: string }) | null>(null);
  // The latest choice wins: a slower read of a file chosen before, or the answer about it, is dropped.
  const choice = useRef(0);
  const { busy, message, run, clear } = useAction();

  const choose = (event: ChangeEvent<HTMLInputElement>) => {
    const mine = ++choice.current;
    clear();
    setAnswer(null);
    setText(null);
    const file = event.target.files?.[0];
    if (!file) return;
    setName(file.name);
    const refuse = (why: string) => run(() => Promise.reject(new Error(why)));
    if (file.size > MAX_FILE_BYTES) {
      refuse(`${file.name} is larger than 24 MiB: confirm it with \`volact authority confirm-file\``);
      return;
    }
    if (file.size === 0) {
      refuse(`${file.name} is empty: choose the file the console wrote (\`volact console proxy-activate --collect\`)`);
      return;
    }
    file.text().then(
      (t) => mine === choice.current && setText(t),
      () => mine === choice.current && refuse(`${file.name} could not be read`),
    );
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (text === null) return;
    const pinned = keyId.trim();
    setAnswer(null);
    if (pinned !== '' && !KEY_ID.test(pinned)) {
      run(() =>
        Promise.reject(new Error('Console key ID: expected the 16 hex digits the console printed (or leave it empty)')),
      );
      return;
    }
    // The file input is disabled while this runs; should another file be chosen anyway, the
    // answer about this one is dropped (never shown or downloaded under the other's name).
    const mine = choice.current;
    const submitted = name;
    run(
      async () => {
        try {
          return await post<ConfirmationFileAnswer>('/v1/operator/confirmation-files', {
            file: text,
            ...(pinned === '' ? {} : { consoleKeyId: pinned }),
          });
        } catch (err) {
          if (mine !== choice.current) return null;
          throw err;
        }
      },
      (a) => {
        if (a === null || mine !== choice.current) return;
        setAnswer({ ...a, refusals: refusals(text, a.file), name: submitted });
        download(`volact-cids-${a.request.id}.json`, a.file, 'application/json');
        return `${a.confirmed} confirmed, ${a.refused} refused: the confirmation file was downloaded`;
      },
    );
  };

  return (
    <section aria-label="installation-ID file">
      <div className="page-head">
        <h2>Installation-ID file (isolated network)</h2>
      </div>
      <p className="muted">
        A console that reaches no authority writes its machines&apos; installation IDs to a signed file (
        <code>volact console proxy-activate --collect</code>). Upload it here, then send the confirmation file back to
        be applied there (<code>--apply</code>).
      </p>
      <form className="card" onSubmit={submit}>
        <label>
          Installation-ID file
          <input type="file" accept=".json,application/json" onChange={choose} disabled={busy} />
        </label>
        <label>
          Console key ID
          <input
            value={keyId}
            onChange={(e) => setKeyId(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            placeholder="16 hex digits"
            aria-describedby="console-key-id-hint"
          />
        </label>
        <p className="muted small" id="console-key-id-hint">
          As the customer read it out from the collecting console (its <code>--collect</code> output or web UI), not
          from the file: a file signed by any other key is then refused before anything is confirmed.
        </p>
        <div className="actions">
          <button
            type="submit"
            className="primary"
            disabled={busy || text === null}
            title={text === null ? 'choose a file first' : undefined}
          >
            Confirm and download
          </button>
        </div>
      </form>
      <Outcome message={message} />
      {answer && answer.refusals.length > 0 && (
        <ul className="card" aria-label="refused installation IDs">
          {answer.refusals.map((r) => (
            <li key={r.installationId}>
              <strong>{r.machines}</strong>: {r.code}: {r.message}
            </li>
          ))}
        </ul>
      )}
      {answer && (
        <p className="muted small" data-testid="confirmation-file">
          {answer.name}: request {answer.request.id} of console {answer.request.consoleKeyId}.{' '}
          <button
            type="button"
            onClick={() => download(`volact-cids-${answer.request.id}.json`, answer.file, 'application/json')}
          >
            Download again
          </button>
        </p>
      )}
    </section>
  );
}
