/** Server-side paging: "rows A–B of N", previous/next and the page size. */
export function Pager({
  offset,
  limit,
  total,
  onChange,
  label,
  sizes = [50, 100, 200, 500],
}: {
  offset: number;
  limit: number;
  total: number;
  onChange: (offset: number, limit: number) => void;
  /** What is paged ("results", "rows"): names the controls for assistive technology. */
  label: string;
  sizes?: readonly number[];
}) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <div className="pager" role="group" aria-label={`${label} pages`}>
      <span className="muted" data-testid={`${label}-range`}>
        {first}–{last} of {total}
      </span>
      <button type="button" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit), limit)}>
        ‹ Previous
      </button>
      <button type="button" disabled={last >= total} onClick={() => onChange(offset + limit, limit)}>
        Next ›
      </button>
      <select aria-label={`${label} per page`} value={limit} onChange={(e) => onChange(0, Number(e.target.value))}>
        {sizes.map((s) => (
          <option key={s} value={s}>
            {s} a page
          </option>
        ))}
      </select>
    </div>
  );
}
