import { useRef, type ClipboardEvent } from 'react';
import { DIGITS_PER_GROUP, groupProblem } from './digit-check';

export { CONFIRMATION_ID_GROUPS, DIGITS_PER_GROUP, groupNamed, groupProblem } from './digit-check';

/**
 * One input per group of six digits, each checked as it is typed (when its six digits are in,
 * or when it loses focus): a wrong group is marked and named below. Pasting the whole number
 * into any box fills the boxes from there.
 */
export function DigitGroups({
  groups,
  checked,
  onChange,
  label,
  serverWrong,
  disabled,
}: {
  groups: readonly string[];
  /** Which groups to check now (typed whole or left). */
  checked: readonly boolean[];
  onChange: (groups: string[], checked: boolean[]) => void;
  label: string;
  /** A group the server named wrong (from 1). */
  serverWrong?: number | null;
  disabled?: boolean;
}) {
  const inputs = useRef<(HTMLInputElement | null)[]>([]);
  const problems = groups.map((g, i) => (checked[i] ? groupProblem(i + 1, g) : null));
  const set = (i: number, value: string) => {
    const digits = value.replace(/\D/g, '').slice(0, DIGITS_PER_GROUP);
    const full = digits.length === DIGITS_PER_GROUP;
    onChange(
      groups.map((g, j) => (j === i ? digits : g)),
      checked.map((c, j) => (j === i ? full || (c && digits.length > 0) : c)),
    );
    if (full) inputs.current[i + 1]?.focus();
  };
  const paste = (i: number, event: ClipboardEvent<HTMLInputElement>) => {
    const digits = event.clipboardData.getData('text').replace(/\D/g, '');
    if (digits.length <= DIGITS_PER_GROUP) return;
    event.preventDefault();
    const next = [...groups];
    const nextChecked = [...checked];
    for (let k = 0; k * DIGITS_PER_GROUP < digits.length && i + k < groups.length; k++) {
      next[i + k] = digits.slice(k * DIGITS_PER_GROUP, (k + 1) * DIGITS_PER_GROUP);
      nextChecked[i + k] = true;
    }
    onChange(next, nextChecked);
  };
  const wrong = groups
    .map((_, i) => problems[i] ?? (serverWrong === i + 1 ? `group ${i + 1} is wrong (the server says)` : null))
    .map((p, i) => [i, p] as const)
    .filter((e): e is readonly [number, string] => e[1] !== null);
  return (
    <>
      <div className="digit-groups" role="group" aria-label={label}>
        {groups.map((g, i) => {
          const bad = problems[i] !== null || serverWrong === i + 1;
          return (
            <span className="digit-group-box" key={i}>
              <span className="digit-group-letter" aria-hidden="true">
                {String.fromCharCode(65 + (i % 26))}
              </span>
              <input
                ref={(el) => {
                  inputs.current[i] = el;
                }}
                className="digit-group"
                inputMode="numeric"
                autoComplete="off"
                maxLength={DIGITS_PER_GROUP}
                aria-label={`Group ${i + 1}`}
                aria-invalid={bad ? true : undefined}
                data-ok={checked[i] && !bad && g.length === DIGITS_PER_GROUP ? 'true' : undefined}
                value={g}
                disabled={disabled}
                onChange={(e) => set(i, e.target.value)}
                onBlur={() => {
                  if (g !== '' && !checked[i])
                    onChange(
                      [...groups],
                      checked.map((c, j) => (j === i ? true : c)),
                    );
                }}
                onPaste={(e) => paste(i, e)}
              />
            </span>
          );
        })}
      </div>
      {wrong.length > 0 && (
        <ul className="error group-errors" role="alert" aria-label="wrong groups">
          {wrong.map(([i, p]) => (
            <li key={i}>{p}</li>
          ))}
        </ul>
      )}
    </>
  );
}
