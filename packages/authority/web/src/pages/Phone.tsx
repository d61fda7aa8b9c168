import { useRef, useState, type ClipboardEvent, type FormEvent } from 'react';
import { post } from '../api';
import { Outcome } from '../components/Messages';
import { useAction } from '../hooks';
import { DIGITS_PER_GROUP, IID_GROUPS, groupProblem, splitGroups } from '../iid';
import { ConfirmationFile } from './ConfirmationFile';

interface Confirmation {
  readonly kind: 'installation' | 'kms-host' | 'activation-object';
  readonly confirmationId: string;
  readonly group?: string;
  readonly groups?: readonly string[];
  readonly used?: number;
  readonly limit?: number;
  readonly hostsUsed?: number;
  readonly hostLimit?: number;
  readonly again?: boolean;
}

/**
 * The phone operator's page: the caller reads the installation ID out in groups of six digits;
 * each group is checked as it is typed (its check digit), a wrong one is marked and named.
 * The confirmation ID comes back in groups for the operator to read out.
 */
export function Phone() {
  const [kind, setKind] = useState<keyof typeof IID_GROUPS>('installation');
  const count = IID_GROUPS[kind];
  const [groups, setGroups] = useState<string[]>(() => Array.from({ length: count }, () => ''));
  const [checked, setChecked] = useState<boolean[]>(() => Array.from({ length: count }, () => false));
  const [answer, setAnswer] = useState<Confirmation | null>(null);
  const inputs = useRef<(HTMLInputElement | null)[]>([]);
  const { busy, message, run, clear } = useAction();

  const reset = (n: number) => {
    setGroups(Array.from({ length: n }, () => ''));
    setChecked(Array.from({ length: n }, () => false));
    setAnswer(null);
    clear();
  };
  const problems = groups.map((g, i) => groupProblem(i + 1, g));
  const shown = (i: number) => (checked[i] ? problems[i] : null);

  const setGroup = (i: number, value: string) => {
    const digits = value.replace(/\D/g, '').slice(0, DIGITS_PER_GROUP);
    setGroups((gs) => gs.map((g, j) => (j === i ? digits : g)));
    if (digits.length === DIGITS_PER_GROUP) {
      setChecked((cs) => cs.map((c, j) => (j === i ? true : c)));
      inputs.current[i + 1]?.focus();
    }
  };
  const paste = (i: number, event: ClipboardEvent<HTMLInputElement>) => {
    const parts = splitGroups(event.clipboardData.getData('text'));
    if (parts.length <= 1) return;
    event.preventDefault();
    const whole = parts.length === IID_GROUPS['kms-host'] && kind === 'installation' && i === 0;
    const n = whole ? IID_GROUPS['kms-host'] : count;
    if (whole) setKind('kms-host');
    const next = Array.from({ length: n }, (_, j) => (whole ? '' : (groups[j] ?? '')));
    parts.forEach((p, k) => {
      if (i + k < n) next[i + k] = p;
    });
    setGroups(next);
    setChecked(next.map((g, j) => (j >= i && j < i + parts.length) || g.length === DIGITS_PER_GROUP));
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setChecked(groups.map(() => true));
    const first = problems.findIndex((p) => p !== null);
    if (first >= 0) {
      inputs.current[first]?.focus();
      return;
    }
    setAnswer(null);
    run(
      () => post<Confirmation>('/v1/operator/confirmations', { installationId: groups.join('-') }),
      (c) => {
        setAnswer(c);
      },
    );
  };
  const wrong = groups.map((_, i) => shown(i)).filter((p): p is string => p !== null);

  return (
    <section>
      <div className="page-head">
        <h1>Phone activation</h1>
      </div>
      <p className="muted">
        Type the installation ID the caller reads out, six digits a box. A group whose check digit does not match is
        marked at once: ask the caller to read it again.
      </p>
      <form className="card" onSubmit={submit} aria-label="installation ID">
        <fieldset className="kind">
          <legend>What is being activated</legend>
          <label className="check">
            <input
              type="radio"
              name="kind"
              checked={kind === 'installation'}
              onChange={() => {
                setKind('installation');
                reset(IID_GROUPS.installation);
              }}
            />
            A machine (13 groups)
          </label>
          <label className="check">
            <input
              type="radio"
              name="kind"
              checked={kind === 'kms-host'}
              onChange={() => {
                setKind('kms-host');
                reset(IID_GROUPS['kms-host']);
              }}
            />
            A KMS host or activation object (20 groups)
          </label>
        </fieldset>
        <div className="digit-groups" role="group" aria-label="installation ID groups">
          {groups.map((g, i) => (
            <input
              key={i}
              ref={(el) => {
                inputs.current[i] = el;
              }}
              className="digit-group"
              inputMode="numeric"
              autoComplete="off"
              maxLength={DIGITS_PER_GROUP}
              aria-label={`Group ${i + 1}`}
              aria-invalid={shown(i) ? true : undefined}
              aria-describedby={shown(i) ? `iid-error-${i}` : undefined}
              value={g}
              onChange={(e) => setGroup(i, e.target.value)}
              onBlur={() => g !== '' && setChecked((cs) => cs.map((c, j) => (j === i ? true : c)))}
              onPaste={(e) => paste(i, e)}
            />
          ))}
        </div>
        {wrong.length > 0 && (
          <ul className="error group-errors" role="alert">
            {groups.map((_, i) =>
              shown(i) ? (
                <li key={i} id={`iid-error-${i}`}>
                  {shown(i)}
                </li>
              ) : null,
            )}
          </ul>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            Get confirmation ID
          </button>
          <button type="button" onClick={() => reset(count)}>
            Clear
          </button>
        </div>
      </form>
      <Outcome message={message} />
      {answer && (
        <div className="card confirmation" aria-label="confirmation ID">
          <h2>Confirmation ID</h2>
          <p className="muted">Read it out group by group.</p>
          <ol className="cid-groups" data-testid="confirmation-id">
            {answer.confirmationId.split('-').map((part, i) => (
              <li key={i}>
                <span className="muted small">{String.fromCharCode(65 + i)}</span> <code>{part}</code>
              </li>
            ))}
          </ol>
          <p className="muted small">
            {answer.kind === 'installation'
              ? `${answer.group ?? ''}: ${answer.used ?? '?'} of ${answer.limit ?? '?'} activations used${answer.again ? ' (this machine was activated before)' : ''}.`
              : `${answer.hostsUsed ?? '?'} of ${answer.hostLimit ?? '?'} hosts used.`}
          </p>
        </div>
      )}
      <ConfirmationFile />
    </section>
  );
}
