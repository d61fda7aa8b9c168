import { seg } from '../api';
import { LoadError } from '../components/Messages';
import { Table } from '../components/Table';
import { useGet } from '../hooks';

/** The product configs of the organisation's keys' groups, to download for its clients and hosts. */
export function Configs({ orgId }: { orgId: string }) {
  const { data, error } = useGet<{ items: { group: string; kind: string }[] }>(
    `/v1/orgs/${seg(orgId)}/product-configs`,
  );
  return (
    <section>
      <div className="page-head">
        <h1>Product configs</h1>
      </div>
      <p className="muted">
        A product config tells volact clients and KMS hosts which authority and roots to trust. Install it with{' '}
        <code>volact client set-product</code>.
      </p>
      <LoadError error={error} />
      <Table
        label="product configs"
        rows={data?.items ?? []}
        rowKey={(c) => c.group}
        empty="No key yet, so no product config."
        columns={[
          { header: 'Group', cell: (c) => c.group },
          { header: 'Kind', cell: (c) => c.kind },
          {
            header: 'Download',
            cell: (c) => (
              <a
                className="button"
                href={`/v1/orgs/${seg(orgId)}/product-configs/${seg(c.group)}`}
                download={`${c.group}.product.json`}
              >
                Download <span className="sr-only">{c.group}</span>
              </a>
            ),
          },
        ]}
      />
    </section>
  );
}
