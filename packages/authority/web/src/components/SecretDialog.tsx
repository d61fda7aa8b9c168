import { useEffect, useRef, useState } from 'react';

/**
 * A secret shown once (a minted key, an API token, a webhook's signing secret): a modal
 * dialog with the text and a copy button. Closing it forgets the text.
 */
export function SecretDialog({
  title,
  secret,
  note,
  onClose,
}: {
  title: string;
  secret: string;
  note: string;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const copy = () => {
    navigator.clipboard?.writeText(secret).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <dialog ref={ref} className="card dialog" aria-labelledby="secret-title" onClose={onClose}>
      <h2 id="secret-title">{title}</h2>
      <p className="muted">{note}</p>
      <p>
        <code className="secret" aria-label="secret" data-testid="secret">
          {secret}
        </code>
      </p>
      <div className="actions">
        <button type="button" onClick={copy}>
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" className="primary" onClick={() => ref.current?.close()}>
          Done
        </button>
      </div>
    </dialog>
  );
}
