import { useState } from 'react';
import { query, seg } from '../api';
import { LoadError } from '../components/Messages';
import { Table } from '../components/Table';
import { UsageChart } from '../components/UsageChart';
import { useGet } from '../hooks';
import { href } from '../router';
import { tail, type MakUsage, type UsagePoint } from '../types';
import { typeName } from './Keys';

/** An organisation's MAK usage (used / limit per key) and new activations per day. */
export function Usage({ orgId }: { orgId: string }) {
  const [days, setDays] = useState(30);
  const usage = useGet<{ items: MakUsage[] }>(`/v1/orgs/${seg(orgId)}/usage`);
  const history = useGet<{ items: UsagePoint[] }>(`/v1/orgs/${seg(orgId)}/usage/history${query({ days })}`);
  return (
    <section aria-label="usage">
      <h2>Usage</h2>
      <LoadError error={usage.error} />
      <Table
        label="usage"
        rows={usage.data?.items ?? []}
        rowKey={(u) => u.keyId}
        empty="No MAK yet."
        columns={[
          {
            header: 'Key',
            cell: (u) => (
              <a href={href('orgs', orgId, 'keys', u.keyId)}>
                <code>{tail(u.last5)}</code>
              </a>
            ),
          },
          { header: 'Type', cell: (u) => typeName(u.type) },
          { header: 'Groups', cell: (u) => u.groups.join(', ') },
          { header: 'Used', cell: (u) => u.used },
          { header: 'Limit', cell: (u) => u.limit },
          { header: 'Remaining', cell: (u) => u.remaining },
          {
            header: 'Share used',
            cell: (u) => (
              <span
                className="meter"
                role="meter"
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={u.percent}
                aria-label={`${tail(u.last5)} used`}
              >
                <span className="meter-fill" style={{ width: `${Math.min(u.percent, 100)}%` }} />
                <span className="meter-text">{u.percent} %</span>
              </span>
            ),
          },
        ]}
      />
      <div className="filters">
        <label>
          Period
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={7}>7 days</option>
            <option value={30}>30 days</option>
            <option value={90}>90 days</option>
            <option value={365}>365 days</option>
          </select>
        </label>
      </div>
      <LoadError error={history.error} />
      {history.data && <UsageChart points={history.data.items} label="new activations per day" />}
    </section>
  );
}
