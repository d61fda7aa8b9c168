/** One installation-ID file collected by this console (table proxy_requests). */
export interface ProxyRequestRecord {
  /** The file's `id` (what a confirmation file's request.id names). */
  readonly id: string;
  readonly createdAt: number;
  /** The console user who collected it (web UI), null from the CLI. */
  readonly createdBy: string | null;
  /** SHA-256 (hex) of the canonical file: a confirmation file's request.digest must be it. */
  readonly digest: string;
  /** The file as written (volact-iid-file/1). */
  readonly fileJson: string;
  readonly appliedAt: number | null;
}

/** What a list shows of a collected file (the file itself is not read). */
export interface ProxyRequestSummary {
  readonly id: string;
  readonly createdAt: number;
  readonly createdBy: string | null;
  /** How many machine entries the file holds. */
  readonly machines: number;
  readonly appliedAt: number | null;
}

/** The console store's part for installation-ID files collected for isolated networks (both engines; see ../store.ts). */
export interface ProxyFileStore {
  addRequest(record: Omit<ProxyRequestRecord, 'appliedAt'>): Promise<void>;
  getRequest(id: string): Promise<ProxyRequestRecord | undefined>;
  /** Newest first. */
  listRequests(): Promise<ProxyRequestSummary[]>;
  /** The last time a confirmation file for it was applied. */
  markApplied(id: string, at: number): Promise<void>;
}
