import { useState, type ChangeEvent, type FormEvent } from 'react';
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

/** What the portal takes (the API's limit); larger files go through `volact authority confirm-file`. */
const MAX_FILE_BYTES = 24 * 1024 * 1024;

/**
 * A customer's console on an isolated network sends its machines' installation IDs in a signed
 * file: the operator uploads it and downloads the confirmation file to send back. An edited
 * file is refused before any IID is confirmed.
 */
export function ConfirmationFile() {
  const [text, setText] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [answer, setAnswer] = useState<ConfirmationFileAnswer | null>(null);
  const { busy, message, run, clear } = useAction();

  const choose = (event: ChangeEvent<HTMLInputElement>) => {
    clear();
    setAnswer(null);
    setText(null);
    const file = event.target.files?.[0];
    if (!file) return;
    setName(file.name);
    if (file.size > MAX_FILE_BYTES) {
      run(() =>
        Promise.reject(
          new Error(`${file.name} is larger than 24 MiB: confirm it with \`volact authority confirm-file\``),
        ),
      );
      return;
    }
    file.text().then(setText, () => run(() => Promise.reject(new Error(`${file.name} could not be read`))));
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (text === null) return;
    run(
      () => post<ConfirmationFileAnswer>('/v1/operator/confirmation-files', { file: text }),
      (a) => {
        setAnswer(a);
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
          <input type="file" accept=".json,application/json" onChange={choose} />
        </label>
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
      {answer && (
        <p className="muted small" data-testid="confirmation-file">
          {name}: request {answer.request.id} of console {answer.request.consoleKeyId}.{' '}
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
