import type { UsagePoint } from '../types';

/** New activations per day as SVG bars (no chart library); an empty state when there is none. */
export function UsageChart({ points, label }: { points: readonly UsagePoint[]; label: string }) {
  const total = points.reduce((n, p) => n + p.activations, 0);
  if (points.length === 0 || total === 0) {
    return (
      <p className="empty-state" data-testid="usage-empty">
        No activations in this period yet.
      </p>
    );
  }
  const max = Math.max(...points.map((p) => p.activations));
  const width = 640;
  const height = 160;
  const bar = width / points.length;
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${width} ${height + 20}`}
        role="img"
        aria-label={`${label}: ${total} activations over ${points.length} days`}
      >
        {points.map((p, i) => {
          const h = max === 0 ? 0 : Math.round((p.activations / max) * height);
          return (
            <g key={p.day}>
              <rect x={i * bar + 1} y={height - h} width={Math.max(bar - 2, 1)} height={h} className="bar">
                <title>{`${p.day}: ${p.activations}`}</title>
              </rect>
            </g>
          );
        })}
        <text x={0} y={height + 15} className="axis">
          {points[0]?.day}
        </text>
        <text x={width} y={height + 15} textAnchor="end" className="axis">
          {points[points.length - 1]?.day}
        </text>
      </svg>
      <figcaption className="muted small">
        {total} activations, at most {max} a day
      </figcaption>
    </figure>
  );
}
