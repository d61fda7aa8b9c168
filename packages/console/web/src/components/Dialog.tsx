import { useEffect, useId, useRef, type ReactNode } from 'react';

/** A modal dialog (the browser's <dialog>: focus kept inside, Escape closes it). */
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <div className="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="close" aria-label="close" onClick={onClose}>
          ×
        </button>
      </div>
      {children}
    </dialog>
  );
}
